package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// maxFidListLimit bounds one page of a device's fid listing.
const maxFidListLimit = 10000

// fidDirRE and fidFileRE are the names in a device's fid tree:
// <d0>/<d1-3>/<d4-6>/<fid>.fid (core.FIDPath).
var (
	fidDirRE  = regexp.MustCompile(`^[0-9]+$`)
	fidFileRE = regexp.MustCompile(`^[0-9]+\.fid$`)
)

// fidEntry is one fid file of a device's listing.
type fidEntry struct {
	fid   int64
	mtime int64
	size  int64
	path  string // below the device directory
}

// serveFidList answers GET /devN/?list_fids=1&after=PATH&limit=N (see
// core.FidListHeader): the tracker's sweep for files no row references.
func (s *Server) serveFidList(w http.ResponseWriter, r *http.Request, dev *os.Root) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 1000
	}
	limit = min(limit, maxFidListLimit)
	list, err := listFids(dev, q.Get("after"), limit)
	if err != nil {
		s.stats.Errors.Add(1)
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var b strings.Builder
	for _, e := range list {
		fmt.Fprintf(&b, "%d %d %d %s\n", e.fid, e.mtime, e.size, e.path)
	}
	w.Header().Set(core.FidListHeader, "1")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method != http.MethodHead {
		io.WriteString(w, b.String())
	}
}

// listFids returns up to limit fid files of the device tree dev whose
// path is after the given one, in path order. Directories wholly before
// it are not read.
func listFids(dev *os.Root, after string, limit int) ([]fidEntry, error) {
	var out []fidEntry
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		f, err := dev.Open(dir)
		if err != nil {
			if dir != "." && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listed
			}
			return err
		}
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return err
		}
		slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		for _, e := range entries {
			if len(out) >= limit {
				return nil
			}
			p := e.Name()
			if dir != "." {
				p = dir + "/" + p
			}
			if depth < 3 {
				if !e.IsDir() || !fidDirRE.MatchString(e.Name()) {
					continue
				}
				if after != "" && p < after && !strings.HasPrefix(after, p+"/") {
					continue // all of it is before the page
				}
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			}
			if !e.Type().IsRegular() || !fidFileRE.MatchString(e.Name()) || p <= after {
				continue
			}
			fid, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".fid"), 10, 64)
			if err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // removed while listed
			}
			out = append(out, fidEntry{fid: fid, mtime: info.ModTime().Unix(), size: info.Size(), path: p})
		}
		return nil
	}
	return out, walk(".", 0)
}
