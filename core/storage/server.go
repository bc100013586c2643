package storage

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Config configures a storage node. The zero value of each field means
// the documented default.
type Config struct {
	// DocRoot is the directory holding the devN directories. Required.
	DocRoot string
	// UsageInterval is how often usage files are rewritten (default 10 s).
	UsageInterval time.Duration
	// WriteNetworks, when set, are the only client networks allowed to PUT
	// and DELETE (the trackers and the uploading clients); GET and HEAD
	// stay open. Empty: everyone (the original's behaviour).
	WriteNetworks []*net.IPNet
	// MaxSideConns caps the side-channel connections held at once
	// (default 256: the trackers' monitors and fsck use a few each).
	MaxSideConns int
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
}

// DefaultUsageInterval is how often each device's usage file is rewritten.
const DefaultUsageInterval = 10 * time.Second

// Stats are the node's counters, safe to read at any time.
type Stats struct {
	Gets, Heads, Puts, Deletes atomic.Int64
	BytesIn, BytesOut          atomic.Int64
	Errors                     atomic.Int64
}

// Server is a storage node. Its ServeHTTP is the HTTP side; ServeSide
// serves the side channel; RunUsage keeps usage files fresh.
type Server struct {
	cfg   Config
	log   *slog.Logger
	stats Stats
	fsck  *deviceGates
}

// New returns a storage node serving cfg.DocRoot.
func New(cfg Config) (*Server, error) {
	if cfg.DocRoot == "" {
		return nil, errors.New("mogstored: no docroot configured")
	}
	st, err := os.Stat(cfg.DocRoot)
	if err != nil {
		return nil, fmt.Errorf("mogstored: docroot: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mogstored: docroot %s is not a directory", cfg.DocRoot)
	}
	if cfg.UsageInterval <= 0 {
		cfg.UsageInterval = DefaultUsageInterval
	}
	if cfg.MaxSideConns <= 0 {
		cfg.MaxSideConns = 256
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, fsck: newDeviceGates()}, nil
}

// Stats returns the node's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// httpError writes the original's small HTML error page.
func httpError(w http.ResponseWriter, code int, msg string) {
	body := fmt.Sprintf("<h1>%d - %s</h1>\n", code, http.StatusText(code))
	if msg != "" {
		body += msg
	}
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// openRoot opens the directory a request's first component names, as an
// os.Root so that nothing below can lead out of it.
func (s *Server) openRoot(first string) (*os.Root, error) {
	if first == "" {
		return os.OpenRoot(s.cfg.DocRoot)
	}
	return os.OpenRoot(s.cfg.DocRoot + "/" + first)
}

// ServeHTTP dispatches on the method like the original's web server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r)
	case http.MethodPut, http.MethodDelete:
		if !s.writeAllowed(r) {
			httpError(w, http.StatusForbidden, "Writes are not allowed from this address (see --write-networks)")
			return
		}
		if r.Method == http.MethodPut {
			s.servePut(w, r)
		} else {
			s.serveDelete(w, r)
		}
	default:
		httpError(w, http.StatusBadRequest, "")
	}
}

// writeAllowed checks WriteNetworks; on refusal it answers 403 and logs.
func (s *Server) writeAllowed(r *http.Request) bool {
	if len(s.cfg.WriteNetworks) == 0 {
		return true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip != nil && core.InNetworks(s.cfg.WriteNetworks, ip) {
		return true
	}
	s.log.Warn("mogstored: refused a write from a client outside the write networks", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	return false
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		s.stats.Heads.Add(1)
	} else {
		s.stats.Gets.Add(1)
	}
	first, rest, err := splitPath(r.URL.Path)
	if err != nil {
		httpError(w, http.StatusForbidden, "Bogus URL")
		return
	}
	root, err := s.openRoot(first)
	if err != nil {
		if isNotDir(err) {
			// A plain file directly in the docroot.
			root, err = s.openRoot("")
			rest = first
		}
		if err != nil {
			httpError(w, http.StatusNotFound, "")
			return
		}
	}
	defer root.Close()
	name := rest
	if name == "" {
		name = "."
	}
	f, err := root.Open(strings.TrimSuffix(name, "/"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
			httpError(w, http.StatusNotFound, "")
		} else {
			s.stats.Errors.Add(1)
			httpError(w, http.StatusForbidden, "")
		}
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if st.IsDir() {
		w.Header().Set("Content-Type", "text/html")
		body := "<h1>200 - OK</h1>\nDirectory listing disabled"
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method != http.MethodHead {
			io.WriteString(w, body)
		}
		return
	}
	if !st.Mode().IsRegular() {
		httpError(w, http.StatusForbidden, "")
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", st.ModTime(), f)
	s.stats.BytesOut.Add(cw.n)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html", ".htm":
		return "text/html"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	}
	return "text/plain"
}

// countingWriter counts body bytes while keeping ServeContent's sendfile
// path: ReadFrom is forwarded to the underlying writer.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
	c.n += n
	return n, err
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// putTarget validates a PUT/DELETE path and opens its device root.
// On failure it has written the response and returns nil.
func (s *Server) writeTarget(w http.ResponseWriter, p string) (*os.Root, string) {
	if !validWritePath(p) {
		httpError(w, http.StatusBadRequest, "Invalid filename")
		return nil, ""
	}
	first, rest, _ := splitPath(p)
	if rest == "" {
		httpError(w, http.StatusBadRequest, "Does not meet minimum directory requirement")
		return nil, ""
	}
	root, err := s.openRoot(first)
	if err != nil {
		httpError(w, http.StatusNotFound, "Base directory does not exist")
		return nil, ""
	}
	return root, rest
}

func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	s.stats.Puts.Add(1)
	root, rel := s.writeTarget(w, r.URL.Path)
	if root == nil {
		return
	}
	defer root.Close()
	if r.ContentLength < -1 {
		httpError(w, http.StatusBadRequest, "Negative Content-Length")
		return
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		s.putRange(w, r, root, rel, cr)
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
	dir := path.Dir(rel)
	if dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			s.fail(w, r, "mkdir", err)
			return
		}
	}
	var sum hash.Hash
	if wantMD5 != nil {
		sum = md5.New()
	}
	n, err := writeDurably(root, rel, r.Body, r.ContentLength, sum, func() error {
		if sum != nil {
			if got := sum.Sum(nil); string(got) != string(wantMD5) {
				return &md5Mismatch{want: wantMD5, got: got}
			}
		}
		return nil
	})
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

// fail answers a request that failed on the node's side and logs why.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.stats.Errors.Add(1)
	s.log.Warn("mogstored: request failed", "op", op, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errShortBody), errors.Is(err, io.ErrUnexpectedEOF):
		code = http.StatusBadRequest
	case errors.Is(err, fs.ErrNotExist):
		code = http.StatusNotFound
	case errors.Is(err, errNoSpace):
		code = http.StatusInsufficientStorage
	}
	httpError(w, code, err.Error())
}

var errShortBody = errors.New("request body shorter than Content-Length")

// writeDurably streams body into rel under root so that rel either keeps
// its old content or gets the complete new one: it writes a temporary file
// in the same directory, syncs it, checks the length (and check, when
// given), renames it into place and syncs the directory. It returns the
// number of body bytes read.
func writeDurably(root *os.Root, rel string, body io.Reader, length int64, sum hash.Hash, check func() error) (n int64, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			root.Remove(tmp)
		}
	}()
	var dst io.Writer = f
	if sum != nil {
		dst = io.MultiWriter(f, sum)
	}
	buf := copyBufs.Get().(*[]byte)
	n, err = io.CopyBuffer(dst, body, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return n, mapNoSpace(err)
	}
	if length >= 0 && n != length {
		return n, fmt.Errorf("%w: got %d of %d bytes", errShortBody, n, length)
	}
	if err := check(); err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, mapNoSpace(err)
	}
	if err := f.Close(); err != nil {
		return n, mapNoSpace(err)
	}
	if err := root.Rename(tmp, rel); err != nil {
		return n, err
	}
	ok = true
	if d, err := root.Open(path.Dir(rel)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// putRange writes a Content-Range PUT ("bytes start-end/total") in place,
// for clients in the original's "largefile" mode.
func (s *Server) putRange(w http.ResponseWriter, r *http.Request, root *os.Root, rel, cr string) {
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
	if !ok {
		httpError(w, http.StatusBadRequest, "Invalid Content-Range")
		return
	}
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			s.fail(w, r, "mkdir", err)
			return
		}
	}
	f, err := root.OpenFile(rel, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		s.fail(w, r, "put range", err)
		return
	}
	defer f.Close()
	want := end - start + 1
	n, err := io.Copy(io.NewOffsetWriter(f, start), io.LimitReader(r.Body, want))
	s.stats.BytesIn.Add(n)
	if err == nil && n != want {
		err = fmt.Errorf("%w: got %d of %d bytes", errShortBody, n, want)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		s.fail(w, r, "put range", mapNoSpace(err))
		return
	}
	httpError(w, http.StatusOK, "")
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	s.stats.Deletes.Add(1)
	root, rel := s.writeTarget(w, r.URL.Path)
	if root == nil {
		return
	}
	defer root.Close()
	if st, err := root.Lstat(rel); err == nil && st.IsDir() {
		httpError(w, http.StatusBadRequest, "Is a directory")
		return
	}
	err := root.Remove(rel)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, fs.ErrNotExist):
		httpError(w, http.StatusNotFound, "")
	default:
		httpError(w, http.StatusBadRequest, err.Error())
	}
}

// NewHTTPServer wraps s in an http.Server with the timeouts a storage node
// needs: headers must arrive promptly; bodies may stream for as long as
// they keep moving.
func (s *Server) NewHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}
