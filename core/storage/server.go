package storage

import (
	"errors"
	"fmt"
	lru "github.com/hashicorp/golang-lru/v2"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/listener"
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
	// MaxWriters caps the PUTs in progress at once; more are answered
	// 503 at once (default 3/4 of listener.DefaultMaxConns(2): the rest
	// of the connections stay for readers).
	MaxWriters int
	// BodyTimeout fails an upload whose client sends nothing for this
	// long (default 5 min).
	BodyTimeout time.Duration
	// TempMaxAge is the age (since the last write) past which a temporary
	// file left by an interrupted PUT is removed (default 1 h); the sweep
	// runs at start and every SweepInterval (default 1 h).
	TempMaxAge, SweepInterval time.Duration
	// RecentDeletes is how many DELETEs of fid files the node remembers
	// (default 100,000), each for TempMaxAge. A PUT, MOVE or COPY onto
	// a file whose DELETE said the fid is deleted (core.FidDeletedHeader)
	// is refused (409): fids are never reused, so such a write is one
	// sent before the DELETE and served after it (a node stopped or cut
	// off with both waiting), which would put the deleted file back with
	// nothing left to remove it. After any other DELETE, a write sent
	// (core.SentHeader) before the DELETE's is refused the same way.
	RecentDeletes int
	// MaxSideConns caps the side-channel connections held at once
	// (default 256: the trackers' monitors and fsck use a few each).
	MaxSideConns int
	// NoSync acknowledges a write once its bytes are written and renamed
	// into place, without fsync of the file or its directory (MooseFS's
	// chunkservers' default, HDD_FSYNC_BEFORE_CLOSE = 0): a crash of
	// mogstored loses nothing, a crash of the machine or a power cut can
	// lose or truncate the files of the last seconds, which the trackers
	// still list until fsck finds them. Default false: every write is
	// fsynced (file and directory) before it is acknowledged.
	NoSync bool
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
}

// DefaultUsageInterval is how often each device's usage file is rewritten.
const DefaultUsageInterval = 10 * time.Second

// Stats are the node's counters, safe to read at any time.
type Stats struct {
	Gets, Heads, Puts atomic.Int64
	// Deletes counts the files deleted, by DELETE or in a batch
	// (serveDeleteFids); DeleteBatches the batches.
	Deletes, DeleteBatches atomic.Int64
	BytesIn, BytesOut      atomic.Int64
	Errors                 atomic.Int64
	// Syncs counts the fsyncs of files and directories written.
	Syncs atomic.Int64
}

// Server is a storage node. Its ServeHTTP is the HTTP side; ServeSide
// serves the side channel; RunUsage keeps usage files fresh.
type Server struct {
	cfg   Config
	log   *slog.Logger
	stats Stats
	fsck  *deviceGates
	// writers holds a token for each PUT in progress.
	writers chan struct{}
	// deleted: the recent DELETEs of fid files, by file key.
	deleted *lru.Cache[string, tombstone]
	// dirs: the docroot's directories kept open between requests.
	dirs *dirCache
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
	if cfg.MaxWriters <= 0 {
		cfg.MaxWriters = max(1, listener.DefaultMaxConns(2)*3/4)
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 5 * time.Minute
	}
	if cfg.TempMaxAge <= 0 {
		cfg.TempMaxAge = time.Hour
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Hour
	}
	if cfg.TempMaxAge <= cfg.BodyTimeout {
		return nil, fmt.Errorf("storage: the temporary-file age (%s) must be longer than the body timeout (%s): the temporary file of an upload still in progress would be removed", cfg.TempMaxAge, cfg.BodyTimeout)
	}
	if cfg.RecentDeletes <= 0 {
		cfg.RecentDeletes = 100_000
	}
	deleted, err := lru.New[string, tombstone](cfg.RecentDeletes)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, fsck: newDeviceGates(), writers: make(chan struct{}, cfg.MaxWriters), deleted: deleted, dirs: newDirCache(cfg.DocRoot)}, nil
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
func (s *Server) openRoot(first string) (*cachedDir, error) {
	if first == "" {
		root, err := os.OpenRoot(s.cfg.DocRoot)
		if err != nil {
			return nil, err
		}
		return &cachedDir{root: root, refs: 1, retired: true}, nil
	}
	return s.dirs.device(first)
}

// beneath runs op on the directory that holds rel beneath dev, open from
// the cache, and rel's last component. A miss there (the directory may
// have been removed and made again behind the node's back) is confirmed
// by running op on dev and the whole of rel, a fresh walk.
func (s *Server) beneath(dev *cachedDir, rel string, op func(dir *os.Root, name string) error) error {
	dir, name := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || name == "" {
		return op(dev.root, rel)
	}
	if sub, err := s.dirs.subdir(dev, dir, false); err == nil {
		err = op(sub.root, name)
		s.dirs.release(sub)
		if !isMiss(err) {
			return err
		}
		s.dirs.drop(sub)
	}
	return op(dev.root, rel)
}

// ServeHTTP dispatches on the method like the original's web server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r)
	case http.MethodPost:
		if !s.writeAllowed(r) {
			httpError(w, http.StatusForbidden, "Writes are not allowed from this address (see --write-networks)")
			return
		}
		s.serveDeleteFids(w, r)
	case http.MethodPut, http.MethodDelete, methodMove, methodCopy:
		if !s.writeAllowed(r) {
			httpError(w, http.StatusForbidden, "Writes are not allowed from this address (see --write-networks)")
			return
		}
		if r.Method == http.MethodPut || r.Method == methodCopy {
			// Writers may hold only part of the connections, so that
			// slow uploads cannot keep every reader out.
			select {
			case s.writers <- struct{}{}:
				defer func() { <-s.writers }()
			default:
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", "1")
				httpError(w, http.StatusServiceUnavailable, "Too many uploads in progress on this node")
				return
			}
		}
		switch r.Method {
		case http.MethodPut:
			s.servePut(w, r)
		case http.MethodDelete:
			s.serveDelete(w, r)
		default:
			s.serveMoveCopy(w, r)
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
	first, rest, err := splitPath(collapseSlashes(r.URL.Path))
	if err != nil {
		httpError(w, http.StatusForbidden, "Bogus URL")
		return
	}
	dev, err := s.openRoot(first)
	if err != nil {
		if isNotDir(err) {
			// A plain file directly in the docroot.
			dev, err = s.openRoot("")
			rest = first
		}
		if err != nil {
			httpError(w, http.StatusNotFound, "")
			return
		}
	}
	defer s.dirs.release(dev)
	root := dev.root
	name := rest
	if name == "" {
		name = "."
	}
	var f *os.File
	err = s.beneath(dev, strings.TrimSuffix(name, "/"), func(dir *os.Root, name string) (err error) {
		f, err = dir.Open(name)
		return err
	})
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
		if rest == "" && devDirRE.MatchString(first) && r.URL.Query().Get("list_fids") == "1" {
			s.serveFidList(w, r, root)
			return
		}
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
	if rest == "usage" && devDirRE.MatchString(first) {
		if id := filesystemID(filepath.Join(s.cfg.DocRoot, first)); id != "" {
			w.Header().Set(FilesystemHeader, id)
		}
	}
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

// writeTarget validates a PUT/DELETE path and opens its device root.
// On failure it has written the response and returns nil.
func (s *Server) writeTarget(w http.ResponseWriter, r *http.Request) (*cachedDir, string) {
	p := r.URL.Path
	if !validWritePath(p) {
		httpError(w, http.StatusBadRequest, "Invalid filename")
		return nil, ""
	}
	first, rest, _ := splitPath(p)
	if rest == "" {
		httpError(w, http.StatusBadRequest, "Does not meet minimum directory requirement")
		return nil, ""
	}
	if reservedWrite(r.Method, rest) {
		s.log.Warn("mogstored: refused a write to a file of the node's own", "method", r.Method, "path", p, "remote", r.RemoteAddr)
		httpError(w, http.StatusForbidden, "This file belongs to the storage node")
		return nil, ""
	}
	root, err := s.openRoot(first)
	if err != nil {
		httpError(w, http.StatusNotFound, "Base directory does not exist")
		return nil, ""
	}
	return root, rest
}

// removeFile removes the file rel of root, as the DELETE r asks
// (fidDeleted: with core.FidDeletedHeader), and returns the status that
// answers it: 204, 404 (there was none) or 400 with the error.
func (s *Server) removeFile(dev *cachedDir, rel string, r *http.Request, fidDeleted bool) (int, error) {
	s.stats.Deletes.Add(1)
	ref := s.file(dev.root, rel, r)
	err := ref.remove(fidDeleted, func() error {
		return s.beneath(dev, rel, func(dir *os.Root, name string) error { return dir.Remove(name) })
	})
	ref.release()
	switch {
	case err == nil:
		return http.StatusNoContent, nil
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound, err
	}
	return http.StatusBadRequest, err
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	dev, rel := s.writeTarget(w, r)
	if dev == nil {
		return
	}
	defer s.dirs.release(dev)
	var st fs.FileInfo
	if err := s.beneath(dev, rel, func(dir *os.Root, name string) (err error) {
		st, err = dir.Lstat(name)
		return err
	}); err == nil && st.IsDir() {
		httpError(w, http.StatusBadRequest, "Is a directory")
		return
	}
	switch status, err := s.removeFile(dev, rel, r, r.Header.Get(core.FidDeletedHeader) == "1"); status {
	case http.StatusNoContent:
		w.WriteHeader(status)
	case http.StatusNotFound:
		httpError(w, status, "")
	default:
		httpError(w, status, err.Error())
	}
}

// NewHTTPServer wraps s in an http.Server with the timeouts a storage node
// needs: headers must arrive promptly; bodies may stream for as long as
// they keep moving.
func (s *Server) NewHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}
