package storage

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// reservedWrite reports whether rel (relative to a device directory)
// belongs to the node and the trackers rather than to clients: the usage
// file the trackers read a device's space from, and the test-write
// directory itself (the trackers' write probes go inside it). A client
// writing them could make a healthy device look dead or full.
func reservedWrite(method, rel string) bool {
	switch {
	case rel == "usage", rel == "test-write":
		return true
	case strings.HasPrefix(rel, "test-write/"):
		return method == http.MethodDelete || method == methodMove
	}
	return strings.HasPrefix(path.Base(rel), ".") // temporary files of PUTs in progress
}

func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	s.stats.Puts.Add(1)
	dev, rel := s.writeTarget(w, r)
	if dev == nil {
		return
	}
	defer s.dirs.release(dev)
	root := dev.root
	if r.ContentLength < -1 {
		httpError(w, http.StatusBadRequest, "Negative Content-Length")
		return
	}
	body := s.bodyReader(w, r)
	ref := s.file(root, rel, r)
	defer ref.release()
	if cr := r.Header.Get("Content-Range"); cr != "" {
		s.putRange(w, r, root, ref, rel, cr, body)
		return
	}
	var wantMD5 []byte
	if h := r.Header.Get("Content-MD5"); h != "" {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(h), "="))
		if err != nil || len(b) != md5.Size {
			httpError(w, http.StatusBadRequest, "Invalid Content-MD5 header")
			return
		}
		wantMD5 = b
	}
	name := path.Base(rel)
	var sum hash.Hash
	if wantMD5 != nil {
		sum = md5.New()
	}
	var n int64
	fill := func(f *os.File) error {
		var dst io.Writer = f
		if sum != nil {
			dst = io.MultiWriter(f, sum)
		}
		buf := copyBufs.Get().(*[]byte)
		var err error
		n, err = io.CopyBuffer(dst, body, *buf)
		copyBufs.Put(buf)
		if err != nil {
			return mapNoSpace(err)
		}
		if r.ContentLength >= 0 && n != r.ContentLength {
			return fmt.Errorf("%w: got %d of %d bytes", errShortBody, n, r.ContentLength)
		}
		if sum != nil {
			if got := sum.Sum(nil); string(got) != string(wantMD5) {
				return &md5Mismatch{want: wantMD5, got: got}
			}
		}
		return nil
	}
	// The directory is open from the cache; one removed behind the node's
	// back takes no new file (errDirGone, before any byte is read): it is
	// made again.
	var err error
	for try := 0; ; try++ {
		var dir *cachedDir
		if dir, err = s.dirs.subdir(dev, path.Dir(rel), true); err != nil {
			s.fail(w, r, "mkdir", err)
			return
		}
		err = s.replaceDurably(r.Context(), ref, dir.root, name, fill)
		s.dirs.release(dir)
		if try > 0 || !errors.Is(err, errDirGone) {
			break
		}
		s.dirs.drop(dir)
	}
	s.stats.BytesIn.Add(n)
	var mm *md5Mismatch
	switch {
	case errors.As(err, &mm):
		httpError(w, http.StatusBadRequest, fmt.Sprintf("Content-MD5 mismatch, expected: %s actual: %s",
			base64.StdEncoding.EncodeToString(mm.want), base64.StdEncoding.EncodeToString(mm.got)))
	case err != nil:
		s.fail(w, r, "put", err)
	case wantMD5 != nil:
		httpError(w, http.StatusCreated, "")
	default:
		httpError(w, http.StatusOK, "")
	}
}

type md5Mismatch struct{ want, got []byte }

func (m *md5Mismatch) Error() string {
	return "Content-MD5 mismatch: want " + hex.EncodeToString(m.want) + ", got " + hex.EncodeToString(m.got)
}

// fail answers a request that failed and logs why: the client's fault
// (a short or malformed body) is a 400, the node's a 5xx.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errShortBody), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errClientBody):
		code = http.StatusBadRequest
	case errors.Is(err, errRangeStart):
		code = http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, fs.ErrNotExist):
		code = http.StatusNotFound
	case errors.Is(err, errNoSpace):
		code = http.StatusInsufficientStorage
	case errors.Is(err, errDeletedMeanwhile), errors.Is(err, errDeletedLately), errors.Is(err, errSentBeforeDelete):
		code = http.StatusConflict
	}
	if code >= 500 {
		s.stats.Errors.Add(1)
		s.log.Warn("mogstored: request failed", "op", op, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	} else {
		s.log.Debug("mogstored: bad request", "op", op, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	}
	httpError(w, code, err.Error())
}

var (
	errShortBody = errors.New("request body shorter than Content-Length")
	// errClientBody: reading the request body failed (a malformed chunk,
	// a connection cut or stalled past BodyTimeout): the client's fault.
	errClientBody = errors.New("reading the request body failed")
	// errRangeStart: a ranged PUT starting past the end of the file.
	errRangeStart = errors.New("ranged PUT starts past the end of the file")
	// errDeletedMeanwhile: the file was deleted while a write of it was
	// in progress; the write is not put in place.
	errDeletedMeanwhile = errors.New("the file was deleted while it was being written")
	// errSentBeforeDelete: a write of a fid's file sent before the
	// file's last DELETE (core.SentHeader).
	errSentBeforeDelete = errors.New("the write was sent before the file's last DELETE")
	// errDeletedLately: a write of a fid's file deleted lately (a write
	// sent before the DELETE and served after it).
	errDeletedLately = errors.New("the fid's file was deleted lately; fids are not reused")
	// errDirGone: the directory a new file was to be made in is gone.
	errDirGone = errors.New("the file's directory is gone")
)

// bodyReader returns r's body, failing a read that waits longer than
// BodyTimeout for the client's next bytes and marking read errors as the
// client's.
func (s *Server) bodyReader(w http.ResponseWriter, r *http.Request) io.Reader {
	return &clientBody{body: r.Body, rc: http.NewResponseController(w), timeout: s.cfg.BodyTimeout}
}

type clientBody struct {
	body    io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errClientBody, err)
	}
	return n, err
}

// tempName is where a new version of rel is built: a dot file beside it
// (the sweep recognises the pattern and removes ones left by a crash).
func tempName(rel string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return path.Join(path.Dir(rel), "."+path.Base(rel)+"."+hex.EncodeToString(rnd[:])+".tmp")
}

// tempNameRE matches the names tempName makes.
var tempNameRE = regexp.MustCompile(`^\..+\.[0-9a-f]{16}\.tmp$`)

// replaceDurably builds a new version of the file name in dir with fill
// and puts it in place so that it either keeps its old content or gets
// the complete new one: fill writes a temporary file in the same
// directory, which is synced, renamed over name, and the directory
// synced. On any error the temporary file is removed. name is one path
// component, so that each step is one system call on dir's descriptor
// rather than a walk from the device's root (a walk opens and closes
// every directory on the way: most of a small PUT's system calls).
//
// A client that has gone away by then (it timed out, or was a tracker
// that gave up on a stalled node) got no answer and will not count on
// the file: nothing is put in place for it. Nor is anything put in place
// once the file has been deleted since ref was taken.
func (s *Server) replaceDurably(ctx context.Context, ref *fileRef, dir *os.Root, name string, fill func(f *os.File) error) error {
	tmp := tempName(name)
	f, err := dir.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if isMiss(err) {
		return fmt.Errorf("%w: %w", errDirGone, err)
	}
	if err != nil {
		return mapNoSpace(err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			dir.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := s.syncFile(f); err != nil {
		return mapNoSpace(err)
	}
	if err := f.Close(); err != nil {
		return mapNoSpace(err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: the client went away before the file was in place", errClientBody)
	}
	if err := ref.putInPlace(func() error { return dir.Rename(tmp, name) }); err != nil {
		dir.Remove(tmp)
		ok = true
		return err
	}
	ok = true
	return s.syncDir(dir, ".")
}

// syncFile makes f's bytes durable, unless the node acknowledges writes
// before that (Config.NoSync).
func (s *Server) syncFile(f *os.File) error {
	if s.cfg.NoSync {
		return nil
	}
	s.stats.Syncs.Add(1)
	return f.Sync()
}

// syncDir makes the entries of dir durable, unless the node acknowledges
// writes before that (Config.NoSync).
func (s *Server) syncDir(root *os.Root, dir string) error {
	if s.cfg.NoSync {
		return nil
	}
	s.stats.Syncs.Add(1)
	return syncDir(root, dir)
}

// syncDir makes the entries of dir durable.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	return err
}

// openDir opens dir under root as a root of its own, making it and its
// missing parents durably first when it does not exist yet.
func openDir(root *os.Root, dir string) (*os.Root, error) {
	d, err := root.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := mkdirDurable(root, dir); err != nil {
			return nil, err
		}
		d, err = root.OpenRoot(dir)
	}
	return d, err
}

// mkdirDurable makes dir and its missing parents, syncing the parent of
// each one it creates, so that a file renamed into dir after a crash is
// not lost with a directory entry that never reached the disk.
func mkdirDurable(root *os.Root, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	if st, err := root.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: %w", dir, fs.ErrExist)
		}
		return nil
	}
	if err := mkdirDurable(root, path.Dir(dir)); err != nil {
		return err
	}
	if err := root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return mapNoSpace(err)
	}
	return syncDir(root, path.Dir(dir))
}

// files holds what the requests writing one file share, for as long as
// any of them is in progress.
var files = struct {
	sync.Mutex
	m map[string]*fileState
}{m: map[string]*fileState{}}

type fileState struct {
	// build is held by the writes that build on the current version
	// (ranged PUTs, MOVE and COPY onto the file): two at once would lose one's
	// bytes.
	build sync.Mutex
	// place is held while a new version is put in place and while the
	// file is removed, so that a version built before a DELETE cannot
	// land after it.
	place   sync.Mutex
	deletes uint64 // DELETEs of the file so far; guarded by place
	refs    int    // requests holding this state; guarded by files
}

// fileRef is one request's hold on a file's state.
type fileRef struct {
	st      *fileState
	deletes uint64 // st.deletes when the request began
	key     string
	fid     bool  // the file is a fid's (name ends in .fid)
	sent    int64 // when the sender made the request (core.SentHeader); 0: not said
	s       *Server
}

// tombstone is what a node remembers of the DELETEs of a fid's file.
type tombstone struct {
	at         time.Time // the last one, on the node's clock
	fidDeleted bool      // one said the fid is deleted: every write is refused
	sent       int64     // the latest sender time of one (core.SentHeader)
}

// file returns the state of rel in the device directory root for the
// request r, held until release. A write takes it before it reads its
// body.
func (s *Server) file(root *os.Root, rel string, r *http.Request) *fileRef {
	key := s.cfg.DocRoot + "\x00" + root.Name() + "\x00" + rel
	files.Lock()
	st := files.m[key]
	if st == nil {
		st = &fileState{}
		files.m[key] = st
	}
	st.refs++
	files.Unlock()
	st.place.Lock()
	n := st.deletes
	st.place.Unlock()
	sent, _ := strconv.ParseInt(r.Header.Get(core.SentHeader), 10, 64)
	return &fileRef{st: st, deletes: n, key: key, fid: strings.HasSuffix(rel, ".fid"), sent: max(sent, 0), s: s}
}

func (f *fileRef) release() {
	files.Lock()
	if f.st.refs--; f.st.refs == 0 {
		delete(files.m, f.key)
	}
	files.Unlock()
}

// lockBuild serialises the writes that build on the current version.
func (f *fileRef) lockBuild() (unlock func()) {
	f.st.build.Lock()
	return f.st.build.Unlock
}

// putInPlace runs place (a rename onto the file) unless the file was
// deleted since the request began (a DELETE ends the writes in
// progress) or, a fid's file, lately (Config.RecentDeletes): its fid
// deleted, or by a DELETE sent after this write was.
func (f *fileRef) putInPlace(place func() error) error {
	f.st.place.Lock()
	defer f.st.place.Unlock()
	if f.st.deletes != f.deletes {
		return errDeletedMeanwhile
	}
	if f.fid {
		if ts, ok := f.s.deleted.Get(f.key); ok && time.Since(ts.at) < f.s.cfg.TempMaxAge {
			switch {
			case ts.fidDeleted:
				return errDeletedLately
			case f.sent > 0 && f.sent < ts.sent:
				return errSentBeforeDelete
			}
		}
	}
	return place()
}

// remove removes the file, ending the writes of it in progress. A fid's
// file's DELETE is remembered: one that says the fid is deleted
// (core.FidDeletedHeader) refuses every later write of it, one that says
// when it was sent refuses the writes sent before it.
func (f *fileRef) remove(fidDeleted bool, remove func() error) error {
	f.st.place.Lock()
	defer f.st.place.Unlock()
	f.st.deletes++
	if f.fid && (fidDeleted || f.sent > 0) {
		ts, ok := f.s.deleted.Get(f.key)
		if !ok || time.Since(ts.at) >= f.s.cfg.TempMaxAge {
			ts = tombstone{}
		}
		ts.at, ts.fidDeleted, ts.sent = time.Now(), ts.fidDeleted || fidDeleted, max(ts.sent, f.sent)
		f.s.deleted.Add(f.key, ts)
	}
	return remove()
}

// putRange applies a Content-Range PUT ("bytes start-end/total"), as
// clients in the original's "largefile" mode and MogileFS::Client's
// edit_file send them. The new version is built aside from the current
// one and renamed in: readers never see a mix, a PUT cut off leaves the
// file as it was. A range must start at or before the current end.
func (s *Server) putRange(w http.ResponseWriter, r *http.Request, root *os.Root, ref *fileRef, rel, cr string, body io.Reader) {
	var start, end int64
	spec, ok := strings.CutPrefix(cr, "bytes ")
	if ok {
		rng, _, _ := strings.Cut(spec, "/")
		a, b, ok2 := strings.Cut(rng, "-")
		var e1, e2 error
		start, e1 = strconv.ParseInt(a, 10, 64)
		end, e2 = strconv.ParseInt(b, 10, 64)
		ok = ok2 && e1 == nil && e2 == nil && start >= 0 && end >= start
	}
	want := end - start + 1
	if !ok || (r.ContentLength >= 0 && r.ContentLength != want) {
		httpError(w, http.StatusBadRequest, "Invalid Content-Range")
		return
	}
	dir, err := openDir(root, path.Dir(rel))
	if err != nil {
		s.fail(w, r, "mkdir", err)
		return
	}
	defer dir.Close()
	name := path.Base(rel)
	unlock := ref.lockBuild()
	defer unlock()
	var n int64
	err = s.replaceDurably(r.Context(), ref, dir, name, func(f *os.File) error {
		var size int64
		old, err := dir.Open(name)
		switch {
		case err == nil:
			defer old.Close()
			st, err := old.Stat()
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file: %w", rel, fs.ErrExist)
			}
			size = st.Size()
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if start > size {
			return fmt.Errorf("%w: starts at %d, the file has %d bytes", errRangeStart, start, size)
		}
		if old != nil {
			if _, err := io.Copy(f, old); err != nil { // copy_file_range where the kernel has it
				return mapNoSpace(err)
			}
		}
		n, err = io.Copy(io.NewOffsetWriter(f, start), io.LimitReader(body, want))
		if err != nil {
			return mapNoSpace(err)
		}
		if n != want {
			return fmt.Errorf("%w: got %d of %d bytes", errShortBody, n, want)
		}
		return nil
	})
	s.stats.BytesIn.Add(n)
	if err != nil {
		s.fail(w, r, "put range", err)
		return
	}
	httpError(w, http.StatusOK, "")
}
