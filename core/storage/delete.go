package storage

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// maxDeleteFids bounds the fids of one POST /devN/?delete_fids=1.
const maxDeleteFids = 1000

// serveDeleteFids answers POST /devN/?delete_fids=1 (see
// core.FidDeleteHeader): the tracker's delete job removing many deleted
// fids' files of a device in one request. Each fid is removed as a DELETE
// of its file with core.FidDeletedHeader would remove it, and answered
// with that DELETE's status.
func (s *Server) serveDeleteFids(w http.ResponseWriter, r *http.Request) {
	first, rest, _ := splitPath(r.URL.Path)
	if rest != "" || !devDirRE.MatchString(first) || r.URL.Query().Get("delete_fids") != "1" {
		httpError(w, http.StatusBadRequest, "")
		return
	}
	devid, _ := strconv.Atoi(strings.TrimPrefix(first, "dev"))
	var fids []int64
	sc := bufio.NewScanner(io.LimitReader(r.Body, maxDeleteFids*24))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fid, err := strconv.ParseInt(line, 10, 64)
		if err != nil || fid <= 0 {
			httpError(w, http.StatusBadRequest, "Bad fid: "+line)
			return
		}
		if len(fids) == maxDeleteFids {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("More than %d fids", maxDeleteFids))
			return
		}
		fids = append(fids, fid)
	}
	if err := sc.Err(); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	dev, err := s.openRoot(first)
	if err != nil {
		httpError(w, http.StatusNotFound, "Base directory does not exist")
		return
	}
	defer s.dirs.release(dev)
	s.stats.DeleteBatches.Add(1)
	prefix := "/" + first + "/"
	var b strings.Builder
	for _, fid := range fids {
		rel := strings.TrimPrefix(core.FIDPath(devid, fid), prefix)
		status, err := s.removeFile(dev, rel, r, true)
		if status == http.StatusBadRequest {
			s.log.Warn("mogstored: cannot delete", "path", prefix+rel, "err", err)
		}
		fmt.Fprintf(&b, "%d %d\n", fid, status)
	}
	w.Header().Set(core.FidDeleteHeader, "1")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	io.WriteString(w, b.String())
}
