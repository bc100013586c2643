// Package fusefs shows a MogileFS cluster as a file tree through FUSE
// (bazil.org/fuse): /<domain>/<key>, with "/" in keys making
// subdirectories. Bytes stream straight between the kernel and the
// storage nodes; the tracker is asked only for metadata, whose answers
// are cached (package cache).
//
// Semantics: close-to-open. A file written through the mount becomes
// visible to others when it is closed (create_close runs in the first
// flush); until then readers see the previous version. Sequential writes
// of new or truncated files stream to a storage node as they are
// written; anything else (overwrites in place, appends, out-of-order
// writes, truncates to a size) goes through a bounded local spool file
// that is uploaded whole on close.
package fusefs

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/cache"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Defaults for Config fields left zero.
const (
	DefaultKernelTTL      = time.Second
	DefaultCacheTTL       = 5 * time.Second
	DefaultCacheSize      = 200000
	DefaultSpoolLimit     = 10 << 30
	DefaultRenameDirLimit = 1000
	// DefaultGCPercent is the garbage collector target mogmount runs
	// with: bazil.org/fuse allocates two buffers per read request, so
	// with Go's default (100) streaming spends a tenth of its CPU
	// collecting them; 400 costs about 40 MiB more memory.
	DefaultGCPercent = 400
	// DefaultReadWindow bounds the bytes a read handle stashes for
	// requests the kernel sends out of order, and how far ahead a read
	// may skip without starting a new stream.
	DefaultReadWindow = 4 << 20
)

// Config configures a mount. Zero values mean the defaults.
type Config struct {
	// Client talks to the trackers and storage nodes. Required.
	Client *client.Client
	// Class is the class of new files ("" = the domain's default).
	Class string
	// ReadOnly refuses every change with EROFS.
	ReadOnly bool
	// UID and GID own every file; FileMode and DirMode are the default
	// permissions (0644 and 0755).
	UID, GID          uint32
	FileMode, DirMode os.FileMode
	// KernelTTL is how long the kernel may cache entries and attributes
	// (default 1 s).
	KernelTTL time.Duration
	// CacheTTL is how long tracker answers are cached (default 5 s);
	// changes made through this mount are seen at once.
	CacheTTL time.Duration
	// CacheSize bounds each cache (entries; default 200000).
	CacheSize int
	// SpoolDir holds spool files (default $TMPDIR/mogmount-spool);
	// SpoolLimit bounds their total size (default 10 GiB).
	SpoolDir   string
	SpoolLimit int64
	// RenameDirLimit is the most keys a directory rename moves; larger
	// trees answer EXDEV so that mv copies instead (default 1000).
	RenameDirLimit int
	// Logger receives the mount's logs; nil discards.
	Logger *slog.Logger
}

// Stats are the mount's counters.
type Stats struct {
	Lookups, Reads, Writes, Commits, CommitErrors atomic.Int64
	BytesRead, BytesWritten, Spooled              atomic.Int64
}

// FS is a mounted view of a cluster.
type FS struct {
	cfg   Config
	cl    *client.Client
	log   *slog.Logger
	start time.Time

	attrs   *cache.TTL[fileAttr] // "dom\x00key" -> file attributes
	dirs    *cache.TTL[*listing] // "dom\x00prefix" -> listing
	bigDirs *cache.TTL[bool]     // "dom\x00prefix" of directories too big to probe
	paths   *cache.TTL[[]string] // "dom\x00key\x00fid" -> read URLs
	domains *cache.TTL[[]string] // "" -> domain names
	statfs  *cache.TTL[fuse.StatfsResponse]

	mu      sync.Mutex           // guards nodes and pending
	nodes   map[string]fs.Node   // node id -> node, so one path is one node
	pending map[string]*fileNode // "dom\x00key" -> file created, not yet committed

	spoolUsed atomic.Int64
	noMeta    atomic.Bool // the tracker lacks plugin_meta_set

	Stats Stats
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.FSStatfser = (*FS)(nil)
)

// New returns a file system over cfg.Client.
func New(cfg Config) (*FS, error) {
	if cfg.Client == nil {
		return nil, errors.New("fusefs: no client")
	}
	if cfg.FileMode == 0 {
		cfg.FileMode = 0o644
	}
	if cfg.DirMode == 0 {
		cfg.DirMode = 0o755
	}
	if cfg.KernelTTL <= 0 {
		cfg.KernelTTL = DefaultKernelTTL
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = filepath.Join(os.TempDir(), "mogmount-spool")
	}
	if cfg.SpoolLimit <= 0 {
		cfg.SpoolLimit = DefaultSpoolLimit
	}
	if cfg.RenameDirLimit <= 0 {
		cfg.RenameDirLimit = DefaultRenameDirLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, err
	}
	return &FS{
		cfg: cfg, cl: cfg.Client, log: cfg.Logger, start: time.Now(),
		attrs:   cache.New[fileAttr](cfg.CacheSize, cfg.CacheTTL),
		dirs:    cache.New[*listing](cfg.CacheSize/10+16, cfg.CacheTTL),
		bigDirs: cache.New[bool](cfg.CacheSize/10+16, cfg.CacheTTL),
		paths:   cache.New[[]string](cfg.CacheSize, 30*time.Second),
		domains: cache.New[[]string](1, cfg.CacheTTL),
		statfs:  cache.New[fuse.StatfsResponse](1, 10*time.Second),
		nodes:   map[string]fs.Node{},
		pending: map[string]*fileNode{},
	}, nil
}

// Root returns the top directory: one subdirectory per domain.
func (f *FS) Root() (fs.Node, error) { return f.dirNode("", ""), nil }

// CacheStats returns hit and miss counts of the attribute and listing caches.
func (f *FS) CacheStats() (attrHits, attrMisses, dirHits, dirMisses int64) {
	a, b := f.attrs.Stats()
	c, d := f.dirs.Stats()
	return a, b, c, d
}

func ck(dom, key string) string { return dom + "\x00" + key }

// dirNode returns the node of a directory, the same one each time.
func (f *FS) dirNode(dom, prefix string) *dirNode {
	id := "d\x00" + ck(dom, prefix)
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.nodes[id].(*dirNode); ok {
		return n
	}
	n := &dirNode{fs: f, dom: dom, prefix: prefix}
	f.nodes[id] = n
	return n
}

// fileNode returns the node of a file, the same one each time.
func (f *FS) fileNode(dom, key string) *fileNode {
	id := "f\x00" + ck(dom, key)
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.pending[ck(dom, key)]; ok {
		return n
	}
	if n, ok := f.nodes[id].(*fileNode); ok {
		return n
	}
	n := &fileNode{fs: f, dom: dom, key: key}
	f.nodes[id] = n
	return n
}

// forget drops a node from the table when the kernel forgets it.
func (f *FS) forget(id string, n fs.Node) {
	f.mu.Lock()
	if f.nodes[id] == n {
		delete(f.nodes, id)
	}
	f.mu.Unlock()
}

// renameNodes moves the table entries of a renamed file or subtree.
func (f *FS) renameNodes(dom, oldKey, newKey string, dir bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	moved := map[string]fs.Node{}
	for id, n := range f.nodes {
		switch x := n.(type) {
		case *fileNode:
			x.mu.Lock()
			if x.dom == dom && (x.key == oldKey || dir && len(x.key) > len(oldKey) && x.key[:len(oldKey)] == oldKey) {
				delete(f.nodes, id)
				x.key = newKey + x.key[len(oldKey):]
				moved["f\x00"+ck(dom, x.key)] = x
			}
			x.mu.Unlock()
		case *dirNode:
			if dir && x.dom == dom && len(x.prefix) >= len(oldKey) && x.prefix[:len(oldKey)] == oldKey {
				delete(f.nodes, id)
				x.prefix = newKey + x.prefix[len(oldKey):]
				moved["d\x00"+ck(dom, x.prefix)] = x
			}
		}
	}
	for id, n := range moved {
		f.nodes[id] = n
	}
}

// inode numbers: files use their fid; directories a hash with the top
// bit set, so the two never collide.
func dirInode(dom, prefix string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(dom + "\x00" + prefix))
	return h.Sum64() | 1<<63
}

// noteCommitted records a file this mount committed in its directory's
// cached listing, which stays valid (a later lookup of the next new name
// in the directory is answered from it).
func (f *FS) noteCommitted(dom, key string, a fileAttr) {
	parent := parentOf(key)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.putFile(key[len(parent):], a)
	}
}

// invalidateDir forgets the cached listing of a directory.
func (f *FS) invalidateDir(dom, prefix string) { f.dirs.Remove(ck(dom, prefix)) }

// parentOf returns the directory prefix of a key ("a/b/c" -> "a/b/").
func parentOf(key string) string {
	for i := len(key) - 2; i >= 0; i-- {
		if key[i] == '/' {
			return key[:i+1]
		}
	}
	return ""
}

// Statfs reports the cluster's space: the sum over devices not dead.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	r, err := f.statfs.Load(ctx, "", func(ctx context.Context) (fuse.StatfsResponse, error) {
		reply, err := f.cl.Tracker.Do(ctx, "get_devices", nil)
		if err != nil {
			return fuse.StatfsResponse{}, err
		}
		var total, used int64
		for _, d := range client.Records(reply, "devices", "dev") {
			if d["status"] == "dead" {
				continue
			}
			t, _ := strconv.ParseInt(d["mb_total"], 10, 64)
			u, _ := strconv.ParseInt(d["mb_used"], 10, 64)
			total, used = total+t, used+u
		}
		const bsize = 4096
		return fuse.StatfsResponse{
			Blocks: uint64(total) * (1 << 20 / bsize), Bfree: uint64(total-used) * (1 << 20 / bsize),
			Bavail: uint64(total-used) * (1 << 20 / bsize), Files: 1 << 40, Ffree: 1 << 40,
			Bsize: bsize, Frsize: bsize, Namelen: 255,
		}, nil
	})
	if err != nil {
		return errno(err)
	}
	*resp = r
	return nil
}

// errno maps an error to the errno the kernel returns (one table).
func errno(err error) error {
	if err == nil {
		return nil
	}
	var en fuse.Errno
	if errors.As(err, &en) {
		return en
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return fuse.Errno(se)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fuse.Errno(syscall.EINTR)
	case errors.Is(err, context.DeadlineExceeded):
		return fuse.Errno(syscall.ETIMEDOUT)
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "unknown_key", "unreg_domain", "domain_not_found":
			return fuse.ENOENT
		case "key_exists":
			return fuse.EEXIST
		case "no_devices":
			return fuse.Errno(syscall.ENOSPC)
		case "invalid_key":
			return fuse.Errno(syscall.ENAMETOOLONG)
		case "unreg_class", "class_not_found":
			return fuse.Errno(syscall.EINVAL)
		}
	}
	return fuse.EIO
}
