package fusefs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// fileAttr is what the mount knows of a key.
type fileAttr struct {
	exists bool
	fid    int64
	size   int64
	mtime  time.Time // zero: unknown
	mode   os.FileMode
	link   bool              // a symbolic link: its target is the content
	own    owner             // stored owner; unset: --uid/--gid
	xattrs map[string]string // the file's own user.* attributes (shared: copy to change)
	// saved: the version this mount committed (attributes cached since,
	// for at most CacheTTL): an open trusts it is current without asking
	// the tracker for its copies.
	saved bool
}

// metaOf encodes mtime and mode as file metadata (each when set).
func metaOf(mtime time.Time, mode os.FileMode) map[string]string {
	m := map[string]string{}
	if !mtime.IsZero() {
		m["mtime"] = strconv.FormatInt(mtime.UnixNano(), 10)
	}
	if mode != 0 {
		m["mode"] = strconv.FormatUint(uint64(modeBits(mode)), 8)
	}
	return m
}

// set changes the mode and/or the mtime (zero values: unchanged).
func (a *fileAttr) set(mode os.FileMode, mtime time.Time) {
	if mode != 0 {
		a.mode = mode
	}
	if !mtime.IsZero() {
		a.mtime = mtime
	}
}

func applyMeta(a *fileAttr, meta map[string]string) {
	if v, err := strconv.ParseInt(meta["mtime"], 10, 64); err == nil {
		a.mtime = time.Unix(0, v)
	} else if v, err := strconv.ParseInt(meta[protocol.MetaCreated], 10, 64); err == nil {
		a.mtime = time.Unix(0, v) // stored by another client, with no mtime of its own
	}
	if v, err := strconv.ParseUint(meta["mode"], 8, 32); err == nil {
		a.mode = fromModeBits(uint32(v))
	}
	a.own = ownerOf(meta)
	a.xattrs = xattrsOf(meta)
	a.link = meta[metaType] == typeSymlink
}

func attrFromEntry(e client.Entry) fileAttr {
	a := fileAttr{exists: true, fid: e.FID, size: e.Size}
	applyMeta(&a, e.Meta)
	return a
}

// stat returns the attributes of a key, cached; a missing key is cached
// too (exists == false).
func (f *FS) stat(ctx context.Context, dom, key string) (fileAttr, error) {
	return f.attrs.Load(ctx, ck(dom, key), func(ctx context.Context) (fileAttr, error) {
		fi, err := f.cl.FileInfo(ctx, dom, key)
		if core.Is(core.NotFound, err) {
			return fileAttr{}, nil
		}
		if err != nil {
			return fileAttr{}, err
		}
		a := fileAttr{exists: true, fid: fi.FID, size: fi.Length}
		applyMeta(&a, fi.Meta)
		f.overlay(dom, key, &a)
		if a.mtime.IsZero() {
			a.mtime = f.nodeMtime(ctx, dom, key, fi.FID)
		}
		return a, nil
	})
}

// overlay applies what this mount set on a version and the tracker
// could not store (a tracker without the metadata extension).
func (f *FS) overlay(dom, key string, a *fileAttr) {
	if f.noMeta.Load() {
		f.applyLocalMeta(dom, key, a)
	}
}

// nodeMtime asks a storage node when a file was written (for files
// stored without metadata); the mount's start time when it cannot tell.
func (f *FS) nodeMtime(ctx context.Context, dom, key string, fid int64) time.Time {
	paths, err := f.readPaths(ctx, dom, key, fid)
	if err == nil && len(paths) > 0 {
		if t, err := f.cl.Modified(ctx, paths[0]); err == nil {
			return t
		}
	}
	return f.start
}

// errStale: the key now names another version than the one being read.
var errStale = fuse.Errno(syscall.ESTALE)

// readPaths returns the read URLs of one file version, cached by fid.
// A reader is pinned to its version: when the key has moved on to a new
// fid, it gets ESTALE, never bytes of two versions mixed.
func (f *FS) readPaths(ctx context.Context, dom, key string, fid int64) ([]string, error) {
	return f.paths.Load(ctx, ck(dom, key)+"\x00"+strconv.FormatInt(fid, 10), func(ctx context.Context) ([]string, error) {
		return f.versionPaths(ctx, dom, key, fid, true)
	})
}

// versionPaths asks the tracker for a key's paths and keeps those of fid.
func (f *FS) versionPaths(ctx context.Context, dom, key string, fid int64, noverify bool) ([]string, error) {
	paths, err := f.cl.GetPaths(ctx, dom, key, noverify)
	if err != nil {
		if core.Is(core.NotFound, err) {
			return nil, errStale
		}
		return nil, err
	}
	var out []string
	for _, p := range paths {
		if fidOfURL(p) == fid {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errStale
	}
	return out, nil
}

// fidOfURL reads the fid from a storage URL (".../0000000123.fid").
func fidOfURL(u string) int64 {
	i := strings.LastIndexByte(u, '/')
	name := strings.TrimSuffix(u[i+1:], ".fid")
	n, err := strconv.ParseInt(name, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// fileNode is one file: a name in a domain, and what is open on it.
type fileNode struct {
	fs  *FS
	ino uint64 // fixed for the node's life, through renames and rewrites

	// opMu is held while the file's name changes hands in the cluster:
	// a commit, a rename, an unlink. A rename or unlink waits for a
	// commit in flight, and a commit never lands under a name that was
	// renamed or unlinked meanwhile.
	opMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	dom     string
	key     string
	writer  *writeHandle          // the handle whose view Attr shows
	writers map[*writeHandle]bool // open for writing
	mode    os.FileMode           // mode given at create, until committed
	own     owner                 // the creator, when not --uid/--gid
	// keptFID is the version whose pages the kernel may keep from one
	// open to the next (0: none). A fid's bytes never change, so while
	// the key still names the same fid a new open keeps the page cache.
	keptFID  int64
	unlinked bool // the name was removed (or replaced) while open
	// target is the link target read for the version linkFID.
	target  string
	linkFID int64
}

var (
	_ fs.Node              = (*fileNode)(nil)
	_ fs.NodeOpener        = (*fileNode)(nil)
	_ fs.NodeReadlinker    = (*fileNode)(nil)
	_ fs.NodeSetattrer     = (*fileNode)(nil)
	_ fs.NodeFsyncer       = (*fileNode)(nil)
	_ fs.NodeForgetter     = (*fileNode)(nil)
	_ fs.NodeGetxattrer    = (*fileNode)(nil)
	_ fs.NodeListxattrer   = (*fileNode)(nil)
	_ fs.NodeSetxattrer    = (*fileNode)(nil)
	_ fs.NodeRemovexattrer = (*fileNode)(nil)
)

// where returns the node's domain and key.
func (n *fileNode) where() (string, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dom, n.key
}

// view returns the handle whose changes Attr shows, if any.
func (n *fileNode) view() *writeHandle {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.writer
}

// addWriter records a handle open for writing.
func (n *fileNode) addWriter(h *writeHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keptFID = 0 // the next read open drops pages this handle may change
	if n.writers == nil {
		n.writers = map[*writeHandle]bool{}
	}
	n.writers[h] = true
	if n.writer == nil {
		n.writer = h
	}
}

// markWriter makes h the handle whose view Attr shows (it just wrote).
func (n *fileNode) markWriter(h *writeHandle) {
	n.mu.Lock()
	n.writer = h
	n.mu.Unlock()
}

// removeWriter forgets a released handle.
func (n *fileNode) removeWriter(h *writeHandle) {
	n.mu.Lock()
	delete(n.writers, h)
	if n.writer == h {
		n.writer = nil
		for o := range n.writers {
			n.writer = o
			break
		}
	}
	last := len(n.writers) == 0
	n.mu.Unlock()
	if last {
		n.clearPending() // a file whose first commit failed is gone
	}
}

// isPending reports whether the node was created here and not yet
// committed.
func (n *fileNode) isPending() bool {
	dom, key := n.where()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	return n.fs.pending[ck(dom, key)] == n
}

// clearPending records the node's first commit.
func (n *fileNode) clearPending() {
	dom, key := n.where()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	if n.fs.pending[ck(dom, key)] == n {
		delete(n.fs.pending, ck(dom, key))
	}
}

func (n *fileNode) isUnlinked() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unlinked
}

// Forget drops the node from the table.
func (n *fileNode) Forget() {
	dom, key := n.where()
	n.fs.forget("f\x00"+ck(dom, key), n)
}

// attr returns the file's attributes: an open writer's view, else the
// tracker's answer (cached).
func (n *fileNode) attr(ctx context.Context) (fileAttr, error) {
	if w := n.view(); w != nil && w.hasChanges() {
		return w.attr(), nil
	}
	dom, key := n.where()
	fa, err := n.fs.stat(ctx, dom, key)
	if err != nil {
		return fa, err
	}
	if !fa.exists {
		n.mu.Lock()
		mode := n.mode
		n.mu.Unlock()
		if mode == 0 || !n.isPending() {
			return fa, syscall.ENOENT
		}
		fa = fileAttr{exists: true, mode: mode} // created, being written by another handle
	}
	return fa, nil
}

// Attr describes the file.
func (n *fileNode) Attr(ctx context.Context, a *fuse.Attr) error {
	fa, err := n.attr(ctx)
	if err != nil {
		return errno(err)
	}
	n.fs.fillAttr(a, n, fa)
	return nil
}

// fillAttr fills a kernel attribute record of a file.
func (f *FS) fillAttr(a *fuse.Attr, n *fileNode, fa fileAttr) {
	a.Inode = n.ino
	a.Size = uint64(fa.size)
	a.Blocks = (a.Size + 511) / 512
	a.BlockSize = 1 << 20
	a.Mode = fa.mode
	if a.Mode == 0 {
		a.Mode = f.cfg.FileMode
	}
	if fa.link {
		a.Mode = os.ModeSymlink | 0o777
	}
	a.Mtime = fa.mtime
	if a.Mtime.IsZero() {
		a.Mtime = f.start
	}
	a.Ctime, a.Atime = a.Mtime, a.Mtime
	a.Nlink = 1
	if n.isUnlinked() {
		a.Nlink = 0
	}
	a.Uid, a.Gid = f.cfg.UID, f.cfg.GID
	if fa.own.set {
		a.Uid, a.Gid = fa.own.uid, fa.own.gid
	}
	a.Valid = f.cfg.KernelTTL
}

// openRead returns a read handle of the file's current version.
func (n *fileNode) openRead(ctx context.Context) (*readHandle, bool, error) {
	dom, key := n.where()
	for try := 0; ; try++ {
		a, err := n.fs.stat(ctx, dom, key)
		if err != nil {
			return nil, false, err
		}
		if !a.exists {
			if n.isPending() {
				// Created here and not committed yet: until its writer
				// closes it, the file is empty to readers (close-to-open).
				return newReadHandle(n, fileAttr{exists: true}), false, nil
			}
			return nil, false, syscall.ENOENT
		}
		// Resolve the copies now, so that a version replaced since
		// the attributes were cached is noticed before reading (one this
		// mount saved lately is taken as current: rsync and git open
		// each file they write again).
		if !a.saved {
			_, err = n.fs.readPaths(ctx, dom, key, a.fid)
		}
		if err == errStale && try == 0 {
			n.fs.attrs.Remove(ck(dom, key))
			continue
		}
		if err != nil {
			return nil, false, err
		}
		n.mu.Lock()
		keep := a.fid != 0 && a.fid == n.keptFID
		n.keptFID = a.fid
		n.mu.Unlock()
		return newReadHandle(n, a), keep, nil
	}
}

// Open returns a read handle, or a write handle for O_WRONLY/O_RDWR.
func (n *fileNode) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if req.Flags.IsReadOnly() {
		h, keep, err := n.openRead(ctx)
		if err != nil {
			return nil, errno(err)
		}
		if keep {
			resp.Flags |= fuse.OpenKeepCache
		}
		return h, nil
	}
	if n.fs.cfg.ReadOnly {
		return nil, fuse.Errno(syscall.EROFS)
	}
	h, err := newWriteHandle(ctx, n, req.Flags&fuse.OpenTruncate != 0)
	if err != nil {
		return nil, errno(err)
	}
	return h, nil
}

// setattr applies a truncate, chmod or utimes: the size through a write
// handle, mode and mtime as metadata (with the content when a writer
// has changes to commit).
func (n *fileNode) setattr(ctx context.Context, size *int64, mode os.FileMode, mtime time.Time) error {
	if size != nil {
		if w := n.view(); w != nil {
			if err := w.truncate(ctx, *size); err != nil {
				return err
			}
		} else {
			// truncate(2) on a file nobody has open for writing.
			n.fs.log.Debug("fusefs: truncate without a writer", "key", n.name(), "size", *size)
			h, err := newWriteHandle(ctx, n, *size == 0)
			if err != nil {
				return err
			}
			err = h.truncate(ctx, *size)
			if err == nil {
				err = h.commit(ctx)
			}
			h.release()
			if err != nil {
				return err
			}
		}
	}
	if mode == 0 && mtime.IsZero() {
		return nil
	}
	if w := n.view(); w != nil && w.setMeta(mode, mtime) {
		return nil // saved with the content when the writer commits
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	dom, key := n.where()
	return n.fs.setMeta(ctx, dom, key, mode, mtime)
}

// Setattr: size truncates; mode, mtime and owners are stored as
// metadata.
func (n *fileNode) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	if n.fs.cfg.ReadOnly && req.Valid&(fuse.SetattrSize|fuse.SetattrMode|fuse.SetattrMtime) != 0 {
		return fuse.Errno(syscall.EROFS)
	}
	var size *int64
	if req.Valid.Size() {
		s := int64(req.Size)
		size = &s
	}
	var mode os.FileMode
	var mtime time.Time
	if req.Valid.Mode() {
		mode = req.Mode & modeMask
		if err := n.fs.checkMode(mode); err != nil {
			return errno(err)
		}
	}
	if req.Valid.Mtime() {
		mtime = req.Mtime
	}
	if err := n.setattr(ctx, size, mode, mtime); err != nil {
		return errno(err)
	}
	if req.Valid.Uid() || req.Valid.Gid() {
		if n.fs.cfg.ReadOnly {
			return fuse.Errno(syscall.EROFS)
		}
		if err := n.chown(ctx, req.Header.Uid, optUint(req.Valid.Uid(), req.Uid), optUint(req.Valid.Gid(), req.Gid)); err != nil {
			return errno(err)
		}
	}
	return n.Attr(ctx, &resp.Attr)
}

// setMeta stores new mode and/or mtime of a committed file.
func (f *FS) setMeta(ctx context.Context, dom, key string, mode os.FileMode, mtime time.Time) error {
	a, err := f.stat(ctx, dom, key)
	if err != nil {
		return err
	}
	if !a.exists {
		return syscall.ENOENT
	}
	a.set(mode, mtime)
	if err := f.storeMeta(ctx, dom, key, metaOf(mtime, mode)); err != nil {
		return err
	}
	f.noteAttr(dom, key, a)
	return nil
}

// storeMeta merges meta into a committed file's metadata; on a tracker
// without the extension it is kept by this mount only (see overlay).
func (f *FS) storeMeta(ctx context.Context, dom, key string, meta map[string]string) error {
	if f.noMeta.Load() {
		return nil
	}
	err := f.cl.SetMeta(ctx, dom, key, meta)
	switch {
	case core.Is(core.Unsupported, err):
		f.noMeta.Store(true)
		f.log.Warn("fusefs: the tracker cannot store mtime, mode and owners; they are kept only while mounted")
	case err != nil:
		return err
	}
	return nil
}

// chown changes the file's owner and/or group for caller: with the
// content when a writer has changes to commit, else as metadata.
func (n *fileNode) chown(ctx context.Context, caller uint32, uid, gid *uint32) error {
	if w := n.view(); w != nil {
		if ok, err := w.setOwner(caller, uid, gid); ok || err != nil {
			return err
		}
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	dom, key := n.where()
	return n.fs.chown(ctx, dom, key, caller, uid, gid)
}

// optUint is &v when set, else nil.
func optUint(set bool, v uint32) *uint32 {
	if !set {
		return nil
	}
	return &v
}

// Fsync commits unsaved changes and waits for the tracker to take them;
// an earlier failure to save is reported here too. Then the renames,
// deletions and metadata changes made so far are made durable (as ext4's
// fsync of a file takes its metadata along).
func (n *fileNode) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	if err := n.fsync(ctx); err != nil {
		return errno(err)
	}
	return errno(n.fs.cl.Sync(ctx))
}

func (n *fileNode) fsync(ctx context.Context) error {
	n.mu.Lock()
	hs := make([]*writeHandle, 0, len(n.writers))
	for h := range n.writers {
		hs = append(hs, h)
	}
	n.mu.Unlock()
	for _, h := range hs {
		if err := h.commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// The extended attributes a file shows.
const (
	xattrClass    = "user.mogilefs.class"
	xattrChecksum = "user.mogilefs.checksum"
	xattrFID      = "user.mogilefs.fid"
	xattrDevcount = "user.mogilefs.devcount"
)

// Listxattr lists the file's own attributes. The user.mogilefs.* ones
// are read by name and not listed: copying tools (rsync -X, cp
// --preserve=xattr) would copy them or try to remove them.
func (n *fileNode) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	a, err := n.attr(ctx)
	if err != nil {
		return errno(err)
	}
	for _, name := range sortedNames(a.xattrs) {
		resp.Append("user." + name)
	}
	return nil
}

// Getxattr reads class, checksum, fid or devcount from file_info, and the
// file's own user.* attributes from its metadata.
func (n *fileNode) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	dom, key := n.where()
	name, user := userXattr(req.Name)
	if user {
		a, err := n.attr(ctx)
		if err != nil {
			return errno(err)
		}
		return getXattr(a.xattrs, name, resp)
	}
	if !strings.HasPrefix(req.Name, "user.mogilefs.") {
		return fuse.ErrNoXattr
	}
	fi, err := n.fs.cl.FileInfo(ctx, dom, key)
	if err != nil {
		return errno(err)
	}
	var v string
	switch req.Name {
	case xattrClass:
		v = fi.Class
	case xattrChecksum:
		v = fi.Checksum
		if v == "" {
			v = "NONE"
		}
	case xattrFID:
		v = strconv.FormatInt(fi.FID, 10)
	case xattrDevcount:
		v = strconv.Itoa(fi.DevCount)
	default:
		return fuse.ErrNoXattr
	}
	resp.Xattr = []byte(v)
	return nil
}

// Setxattr sets the class (user.mogilefs.class) or one of the file's own
// user.* attributes; other namespaces are not supported.
func (n *fileNode) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	if n.fs.cfg.ReadOnly {
		return fuse.Errno(syscall.EROFS)
	}
	dom, key := n.where()
	if req.Name == xattrClass {
		return errno(n.fs.cl.UpdateClass(ctx, dom, key, string(req.Xattr)))
	}
	name, user := userXattr(req.Name)
	if !user {
		return fuse.Errno(syscall.ENOTSUP)
	}
	return errno(n.setXattr(ctx, name, string(req.Xattr), req.Flags, false))
}

// Removexattr removes one of the file's own user.* attributes.
func (n *fileNode) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	if n.fs.cfg.ReadOnly {
		return fuse.Errno(syscall.EROFS)
	}
	name, user := userXattr(req.Name)
	if !user {
		return fuse.Errno(syscall.ENOTSUP)
	}
	return errno(n.setXattr(ctx, name, "", 0, true))
}

// lockNames takes the operation locks of the nodes known for keys (in
// key order, so that two renames cannot deadlock) and returns the nodes,
// nil where none is known, in the order of keys, with the function that
// releases the locks.
func (f *FS) lockNames(dom string, keys ...string) ([]*fileNode, func()) {
	ns := make([]*fileNode, len(keys))
	for i, k := range keys {
		ns[i] = f.knownFile(dom, k)
	}
	order := make([]*fileNode, 0, len(ns))
	for _, n := range ns {
		if n != nil && !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	slices.SortFunc(order, func(a, b *fileNode) int { return strings.Compare(a.name(), b.name()) })
	for _, n := range order {
		n.opMu.Lock()
	}
	return ns, func() {
		for _, n := range order {
			n.opMu.Unlock()
		}
	}
}

// unlink removes a file's name. POSIX: the name is gone at once; handles
// open on it keep working, and nothing is committed under the name
// afterwards.
func (f *FS) unlink(ctx context.Context, dom, key string) error {
	ns, unlock := f.lockNames(dom, key)
	defer unlock()
	n := ns[0]
	err := f.cl.Delete(ctx, dom, key)
	if core.Is(core.NotFound, err) && n != nil && n.isPending() {
		err = nil // created here and never committed
	}
	if err != nil {
		return err
	}
	if n != nil {
		f.detach(n)
	}
	f.noteRemoved(dom, key)
	f.touchDir(dom, parentOf(key))
	return nil
}

// replacedPrefix starts the names of files moved aside while a rename
// replaces them on a tracker that cannot rename over a key; listings
// never show them.
const replacedPrefix = ".mogmount-replaced-"

// renameFile renames a key; an existing target is replaced (POSIX). The
// target's open handles see an unlinked file. On a tracker that refuses
// to rename over a key, the target is first moved aside to a hidden
// key, then the source takes its name, then the moved-aside one is
// deleted (or moved back if the second step fails).
func (f *FS) renameFile(ctx context.Context, dom, from, to string) error {
	ns, unlock := f.lockNames(dom, from, to)
	defer unlock()
	src, dst := ns[0], ns[1]
	if src != nil && src.isPending() {
		// Not committed yet: it will be saved under the new name; what
		// the name held is replaced then.
		if dst != nil && dst != src {
			f.detach(dst)
		}
		f.mu.Lock()
		delete(f.pending, ck(dom, from))
		f.pending[ck(dom, to)] = src
		f.mu.Unlock()
		f.renameNodes(dom, from, to, false)
		f.noteRemoved(dom, from)
		f.invalidateName(dom, to)
		return nil
	}
	err := f.cl.Rename(ctx, dom, from, to)
	if core.Is(core.Exists, err) {
		var rnd [6]byte
		rand.Read(rnd[:])
		tomb := parentOf(to) + replacedPrefix + hex.EncodeToString(rnd[:])
		if err = f.cl.Rename(ctx, dom, to, tomb); err != nil {
			return err
		}
		if err = f.cl.Rename(ctx, dom, from, to); err != nil {
			if rerr := f.cl.Rename(context.WithoutCancel(ctx), dom, tomb, to); rerr != nil {
				f.log.Error("fusefs: rename failed and the replaced file could not be put back", "domain", dom, "key", to, "saved_as", tomb, "err", rerr)
			}
			return err
		}
		// Until now a power cut could leave the target hidden under
		// the aside name (renames are durable only once synced): the
		// two renames are made durable before the aside one goes. A
		// sync that fails is tried again by the client.
		if serr := f.cl.Sync(ctx); serr != nil {
			f.log.Warn("fusefs: a rename over a file is not durable yet", "domain", dom, "key", to, "err", serr)
		}
		if derr := f.cl.Delete(context.WithoutCancel(ctx), dom, tomb); derr != nil {
			f.log.Warn("fusefs: could not delete a replaced file", "domain", dom, "key", tomb, "err", derr)
		}
	}
	if err != nil {
		return err
	}
	if dst != nil && dst != src {
		f.detach(dst)
	}
	a, known := f.attrs.Get(ck(dom, from))
	f.renameNodes(dom, from, to, false)
	f.noteRemoved(dom, from)
	if known && a.exists {
		f.noteAttr(dom, to, a)
		f.localMeta.Remove(ck(dom, from))
	} else {
		f.invalidateName(dom, to)
	}
	return nil
}

// renameDir renames every key below from to below to.
func (f *FS) renameDir(ctx context.Context, dom, from, to string) error {
	if strings.HasPrefix(to, from) {
		return syscall.EINVAL // into itself
	}
	var keys []string
	after := ""
	for {
		ks, next, err := f.cl.ListKeys(ctx, dom, from, after, 1000)
		if err != nil {
			return err
		}
		keys = append(keys, ks...)
		if len(keys) > f.cfg.RenameDirLimit {
			return syscall.EXDEV
		}
		if len(ks) < 1000 {
			break
		}
		after = next
	}
	// The target may exist only if empty.
	page, err := f.cl.ListDir(ctx, dom, to, "", 2)
	if err != nil {
		return err
	}
	for _, e := range page.Entries {
		if e.Name != to {
			return syscall.ENOTEMPTY
		}
		if err := f.cl.Delete(ctx, dom, to); err != nil && !core.Is(core.NotFound, err) {
			return err
		}
	}
	for _, k := range keys {
		nk := to + k[len(from):]
		if err := f.cl.Rename(ctx, dom, k, nk); err != nil {
			return err
		}
		f.attrs.Remove(ck(dom, k))
		f.attrs.Remove(ck(dom, nk))
	}
	f.dirs.RemovePrefix(ck(dom, from))
	f.dirs.RemovePrefix(ck(dom, to))
	f.invalidateDir(dom, parentOf(from))
	f.invalidateDir(dom, parentOf(to))
	f.renameNodes(dom, from, to, true)
	return nil
}

// name returns the node's key (for logs).
func (n *fileNode) name() string {
	_, key := n.where()
	return key
}
