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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/cache"
	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// Defaults for Config fields left zero.
const (
	DefaultKernelTTL      = time.Second
	DefaultCacheTTL       = 5 * time.Second
	DefaultCacheSize      = 200000
	DefaultSpoolLimit     = 10 << 30
	DefaultPatchMinSize   = 4 << 20
	DefaultSmallFileMax   = 1 << 20
	DefaultMemSpoolLimit  = 64 << 20
	DefaultRenameDirLimit = 1000
	DefaultStallTimeout   = 60 * time.Second
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
	// Client talks to the trackers and storage nodes; required unless
	// Cluster is set.
	Client *client.Client
	// Cluster, when set, is used instead of Client (tests set an
	// in-memory one).
	Cluster Cluster
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
	// MaxKeyBytes is the longest key the tracker stores (ask it with
	// client.Tracker.KeyLimit); longer names answer ENAMETOOLONG. Default
	// client.MaxKeyBytes, the original's 255.
	MaxKeyBytes int
	// StallTimeout is how long an upload may wait for a storage node to
	// take bytes (or to answer after the last) before it fails (default
	// 60 s); the bytes still in the spool are then saved elsewhere.
	StallTimeout time.Duration
	// PatchMinSize is the smallest committed file that a change without
	// O_TRUNC saves by patching it in place where the cluster can
	// (edit_file): only the written ranges are sent, the storage node
	// copies the rest. Smaller files, and every file on a cluster that
	// cannot, are uploaded whole. Default 4 MiB; -1 never patches.
	PatchMinSize int64
	// SmallFileMax is the largest new file kept whole until close (in
	// memory while MemSpoolLimit allows) and then written to all its
	// copies at once, where the tracker takes copies written by the
	// client (ours); a new file growing past it streams to one node as it
	// is written, and the tracker makes its other copies. Default 1 MiB;
	// -1 streams every file.
	SmallFileMax int64
	// MemSpoolLimit bounds the memory that holds small files' bytes until
	// they are saved (default 64 MiB); past it they go to spool files.
	MemSpoolLimit int64
	// Logger receives the mount's logs; nil discards.
	Logger *slog.Logger
}

// Stats are the mount's counters.
type Stats struct {
	Lookups, Reads, Writes, Commits, CommitErrors atomic.Int64
	BytesRead, BytesWritten, Spooled              atomic.Int64
	// Patched counts files saved by patching them in place.
	Patched atomic.Int64
}

// FS is a mounted view of a cluster.
type FS struct {
	cfg   Config
	cl    Cluster
	log   *slog.Logger
	start time.Time

	attrs   *cache.TTL[fileAttr] // "dom\x00key" -> file attributes
	dirs    *cache.TTL[*listing] // "dom\x00prefix" -> listing
	bigDirs *cache.TTL[*bigDir]  // "dom\x00prefix" of directories too big to probe
	paths   *cache.TTL[[]string] // "dom\x00key\x00fid" -> read URLs
	domains *cache.TTL[[]string] // "" -> domain names
	statfs  *cache.TTL[fuse.StatfsResponse]
	// removed holds the keys this mount removed lately: a listing read
	// from a lagging tracker or replica does not bring them back.
	removed *cache.TTL[bool]
	// localMeta keeps mtime and mode set on versions a tracker without
	// the metadata extension could not store, while mounted.
	localMeta *cache.TTL[localMeta]
	// failedDests holds devices uploads failed on lately.
	failedDests *cache.TTL[bool]
	// dirTimes are the directory times this mount changed.
	dirTimes dirTimes

	mu      sync.Mutex           // guards nodes and pending
	nodes   map[string]fs.Node   // node id -> node, so one path is one node
	pending map[string]*fileNode // "dom\x00key" -> file created, not yet committed

	// kernel, once mounted, drops what the kernel caches of a node.
	kernel kernel

	spoolUsed atomic.Int64
	memUsed   atomic.Int64 // bytes of spools held in memory
	noMeta    atomic.Bool  // the tracker lacks plugin_meta_set
	noEdit    atomic.Bool  // the tracker or its nodes cannot edit_file
	metaOK    atomic.Bool  // the tracker has it (probed by hasMeta)

	Stats Stats
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.FSStatfser = (*FS)(nil)
)

// New returns a file system over cfg.Client.
func New(cfg Config) (*FS, error) {
	if cfg.Cluster == nil {
		if cfg.Client == nil {
			return nil, errors.New("fusefs: no client")
		}
		cfg.Cluster = ClientCluster{C: cfg.Client}
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
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
	if cfg.PatchMinSize == 0 {
		cfg.PatchMinSize = DefaultPatchMinSize
	}
	if cfg.SmallFileMax == 0 {
		cfg.SmallFileMax = DefaultSmallFileMax
	}
	if cfg.MemSpoolLimit <= 0 {
		cfg.MemSpoolLimit = DefaultMemSpoolLimit
	}
	if cfg.SpoolLimit <= 0 {
		cfg.SpoolLimit = DefaultSpoolLimit
	}
	if cfg.RenameDirLimit <= 0 {
		cfg.RenameDirLimit = DefaultRenameDirLimit
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = client.MaxKeyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, err
	}
	return &FS{
		cfg: cfg, cl: cfg.Cluster, log: cfg.Logger, start: time.Now(),
		attrs:   cache.New[fileAttr](cfg.CacheSize, cfg.CacheTTL),
		dirs:    cache.New[*listing](cfg.CacheSize/10+16, cfg.CacheTTL),
		bigDirs: cache.New[*bigDir](cfg.CacheSize/10+16, cfg.CacheTTL),
		paths:   cache.New[[]string](cfg.CacheSize, 30*time.Second),
		domains: cache.New[[]string](1, cfg.CacheTTL),
		statfs:  cache.New[fuse.StatfsResponse](1, 10*time.Second),
		removed: cache.New[bool](cfg.CacheSize, cfg.CacheTTL),
		// Entries live as long as the mount, bounded by size.
		localMeta:   cache.New[localMeta](cfg.CacheSize, 0),
		failedDests: cache.New[bool](1024, 30*time.Second),
		nodes:       map[string]fs.Node{},
		pending:     map[string]*fileNode{},
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
	n := &fileNode{fs: f, dom: dom, key: key, ino: fileInode(dom, key)}
	f.nodes[id] = n
	return n
}

// knownFile returns the node of a file if there is one.
func (f *FS) knownFile(dom, key string) *fileNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.pending[ck(dom, key)]; ok {
		return n
	}
	n, _ := f.nodes["f\x00"+ck(dom, key)].(*fileNode)
	return n
}

// detach separates a node from its name, which was unlinked or replaced:
// its open handles keep working and commit nothing; a new file of the
// same name gets a new node.
func (f *FS) detach(n *fileNode) {
	n.mu.Lock()
	n.unlinked = true
	dom, key := n.dom, n.key
	n.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending[ck(dom, key)] == n {
		delete(f.pending, ck(dom, key))
	}
	if f.nodes["f\x00"+ck(dom, key)] == n {
		delete(f.nodes, "f\x00"+ck(dom, key))
	}
}

// forget drops a node from the table when the kernel forgets it.
func (f *FS) forget(id string, n fs.Node) {
	f.mu.Lock()
	if f.nodes[id] == n {
		delete(f.nodes, id)
	}
	f.mu.Unlock()
}

// renameNodes moves the table entries of a renamed file or subtree. A
// file's node is found by its name (the table's key is always its
// node's current name); a subtree's nodes are looked for among all.
func (f *FS) renameNodes(dom, oldKey, newKey string, dir bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !dir {
		id := "f\x00" + ck(dom, oldKey)
		x, ok := f.nodes[id].(*fileNode)
		if !ok {
			return
		}
		delete(f.nodes, id)
		x.mu.Lock()
		x.key = newKey
		x.mu.Unlock()
		f.nodes["f\x00"+ck(dom, newKey)] = x
		return
	}
	moved := map[string]fs.Node{}
	for id, n := range f.nodes {
		switch x := n.(type) {
		case *fileNode:
			x.mu.Lock()
			if x.dom == dom && len(x.key) > len(oldKey) && x.key[:len(oldKey)] == oldKey {
				delete(f.nodes, id)
				x.key = newKey + x.key[len(oldKey):]
				moved["f\x00"+ck(dom, x.key)] = x
			}
			x.mu.Unlock()
		case *dirNode:
			if x.dom == dom && len(x.prefix) >= len(oldKey) && x.prefix[:len(oldKey)] == oldKey {
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

// Inode numbers are hashes of names: a file's is its domain and key's
// with the top bit clear, taken when its node is made and kept through
// renames and rewrites (a fid changes on every rewrite); a directory's
// has the top bit set, so the two never collide.
func fileInode(dom, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(dom + "\x00" + key))
	if n := h.Sum64() &^ (1 << 63); n > 1 {
		return n
	}
	return 2
}

func dirInode(dom, prefix string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(dom + "\x00" + prefix))
	return h.Sum64() | 1<<63
}

// localMeta is mtime and mode set on one version through this mount.
type localMeta struct {
	fid   int64
	mtime time.Time
	mode  os.FileMode
	own   owner
}

// kernel is what the mount tells the kernel: to drop the attributes and
// pages it caches of a node (bazil's fs.Server).
type kernel interface {
	InvalidateNodeAttr(fs.Node) error
	InvalidateNodeData(fs.Node) error
}

// forgetKernel makes the kernel ask again for n's attributes and pages:
// what it cached (for KernelTTL) may be a view that is no longer true,
// such as the empty file of an O_TRUNC whose save failed. Asynchronous:
// the kernel may be waiting on the request that calls it.
func (f *FS) forgetKernel(n fs.Node) {
	if f.kernel == nil {
		return
	}
	go func() {
		f.kernel.InvalidateNodeAttr(n)
		f.kernel.InvalidateNodeData(n)
	}()
}

// committed records a version this mount just saved.
func (f *FS) committed(dom, key string, a fileAttr) {
	f.removed.Remove(ck(dom, key))
	f.noteAttr(dom, key, a)
}

// noteAttr records new attributes of a file in the attribute cache and
// in its directory's cached listing, which stays valid (a later lookup
// of the next new name in the directory is answered from it). A fill of
// either that is in flight is not cached: it may predate the change.
func (f *FS) noteAttr(dom, key string, a fileAttr) {
	if f.noMeta.Load() && a.fid != 0 {
		f.localMeta.Add(ck(dom, key), localMeta{fid: a.fid, mtime: a.mtime, mode: a.mode, own: a.own})
	}
	f.attrs.Add(ck(dom, key), a)
	parent := parentOf(key)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.putFile(key[len(parent):], a)
	} else {
		f.dirs.Remove(ck(dom, parent))
	}
}

// noteMadeDir records a directory this mount just made (its marker
// key): it is known empty, and its parent's cached listing gains it in
// place, so that unpacking a tree lists none of the directories it makes.
func (f *FS) noteMadeDir(dom, marker string) {
	f.bigDirs.Remove(ck(dom, marker))
	f.dirs.Add(ck(dom, marker), newListing(nil, true))
	parent := parentOf(marker)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.putDir(marker[len(parent) : len(marker)-1])
	} else {
		f.dirs.Remove(ck(dom, parent))
	}
}

// noteRemoved records that a key was removed by this mount.
func (f *FS) noteRemoved(dom, key string) {
	f.removed.Add(ck(dom, key), true)
	f.attrs.Add(ck(dom, key), fileAttr{})
	parent := parentOf(key)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.removeFile(key[len(parent):])
	} else {
		f.dirs.Remove(ck(dom, parent))
	}
}

// noteMarker records new attributes of a directory's marker in the
// attribute cache and in its parent's cached listing, from which lookups
// of the directory take them (see noteAttr).
func (f *FS) noteMarker(dom, marker string, a fileAttr) {
	f.attrs.Add(ck(dom, marker), a)
	parent := parentOf(marker)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.putDirAttr(marker[len(parent):len(marker)-1], a)
	} else {
		f.dirs.Remove(ck(dom, parent))
	}
}

// cachedMarker returns what the mount holds of a directory's marker: its
// cached attributes, or those its parent's cached listing came with.
func (f *FS) cachedMarker(dom, marker string) (fileAttr, bool) {
	if a, ok := f.attrs.Get(ck(dom, marker)); ok {
		return a, true
	}
	parent := parentOf(marker)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		for _, e := range l.named(marker[len(parent) : len(marker)-1]) {
			if e.isDir && e.detailed {
				return e.attr, true
			}
		}
	}
	return fileAttr{}, false
}

// noteRemovedDir records that this mount removed the directory sub (its
// marker, the last key below it): its parent's cached listing loses it
// in place, as noteRemoved does for a file (rm -rf would list the parent
// again after every rmdir), and its changed time is no longer written.
func (f *FS) noteRemovedDir(dom, sub string) {
	f.invalidateDir(dom, sub)
	f.attrs.Add(ck(dom, sub), fileAttr{})
	f.dropDirChange(dom, sub)
	parent := parentOf(sub)
	if l, ok := f.dirs.Get(ck(dom, parent)); ok {
		l.removeDir(sub[len(parent) : len(sub)-1])
	}
}

// invalidateName forgets what is cached of a key and its directory.
func (f *FS) invalidateName(dom, key string) {
	f.removed.Remove(ck(dom, key))
	f.attrs.Remove(ck(dom, key))
	f.invalidateDir(dom, parentOf(key))
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
		total, used, err := f.cl.Space(ctx)
		if err != nil {
			return fuse.StatfsResponse{}, err
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

// kindErrno is the errno of each kind of error; kinds not listed are EIO.
var kindErrno = map[core.Kind]syscall.Errno{
	core.NotFound:    syscall.ENOENT,
	core.Exists:      syscall.EEXIST,
	core.NoSpace:     syscall.ENOSPC,
	core.TooLong:     syscall.ENAMETOOLONG,
	core.Invalid:     syscall.EINVAL,
	core.Permission:  syscall.EACCES,
	core.Timeout:     syscall.ETIMEDOUT,
	core.Unsupported: syscall.ENOTSUP,
}

// errno maps an error to the errno the kernel returns: the mount's own
// errnos as they are, a cancel as EINTR, any other error by its kind.
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
	if e, ok := kindErrno[core.KindOf(err)]; ok {
		return fuse.Errno(e)
	}
	return fuse.Errno(syscall.EIO)
}
