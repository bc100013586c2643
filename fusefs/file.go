package fusefs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// fileAttr is what the mount knows of a key.
type fileAttr struct {
	exists bool
	fid    int64
	size   int64
	mtime  time.Time // zero: unknown
	mode   os.FileMode
}

// metaFromAttr encodes mtime and mode as file metadata.
func metaOf(mtime time.Time, mode os.FileMode) map[string]string {
	m := map[string]string{"mtime": strconv.FormatInt(mtime.UnixNano(), 10)}
	if mode != 0 {
		m["mode"] = strconv.FormatUint(uint64(mode.Perm()), 8)
	}
	return m
}

func applyMeta(a *fileAttr, meta map[string]string) {
	if v, err := strconv.ParseInt(meta["mtime"], 10, 64); err == nil {
		a.mtime = time.Unix(0, v)
	}
	if v, err := strconv.ParseUint(meta["mode"], 8, 32); err == nil {
		a.mode = os.FileMode(v).Perm()
	}
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
		fi, err := f.cl.Tracker.FileInfo(ctx, dom, key)
		if client.IsCode(err, "unknown_key") {
			return fileAttr{}, nil
		}
		if err != nil {
			return fileAttr{}, err
		}
		a := fileAttr{exists: true, fid: fi.FID, size: fi.Length}
		applyMeta(&a, fi.Meta)
		if a.mtime.IsZero() {
			a.mtime = f.nodeMtime(ctx, dom, key, fi.FID)
		}
		return a, nil
	})
}

// nodeMtime asks a storage node when a file was written (for files
// stored without metadata); the mount's start time when it cannot tell.
func (f *FS) nodeMtime(ctx context.Context, dom, key string, fid int64) time.Time {
	paths, err := f.readPaths(ctx, dom, key, fid)
	if err == nil && len(paths) > 0 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, paths[0], nil)
		if resp, err := f.cl.HTTP.Do(req); err == nil {
			resp.Body.Close()
			if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
				return t
			}
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
	paths, err := f.cl.Tracker.GetPaths(ctx, dom, key, noverify)
	if err != nil {
		if client.IsCode(err, "unknown_key") {
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

// fileNode is one key.
type fileNode struct {
	fs *FS

	mu     sync.Mutex // guards the fields below
	dom    string
	key    string
	writer *writeHandle // the open handle with unsaved changes, if any
	mode   os.FileMode  // mode given at create, until committed
	// keptFID is the version whose pages the kernel may keep from one
	// open to the next (0: none). A fid's bytes never change, so while
	// the key still names the same fid a new open keeps the page cache.
	keptFID int64
}

var (
	_ fs.Node              = (*fileNode)(nil)
	_ fs.NodeOpener        = (*fileNode)(nil)
	_ fs.NodeSetattrer     = (*fileNode)(nil)
	_ fs.NodeFsyncer       = (*fileNode)(nil)
	_ fs.NodeForgetter     = (*fileNode)(nil)
	_ fs.NodeGetxattrer    = (*fileNode)(nil)
	_ fs.NodeListxattrer   = (*fileNode)(nil)
	_ fs.NodeSetxattrer    = (*fileNode)(nil)
	_ fs.NodeRemovexattrer = (*fileNode)(nil)
)

func (n *fileNode) where() (string, string, *writeHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dom, n.key, n.writer
}

// Forget drops the node from the table.
func (n *fileNode) Forget() {
	dom, key, _ := n.where()
	n.fs.forget("f\x00"+ck(dom, key), n)
}

// Attr describes the file: from an open writer, else from the tracker.
func (n *fileNode) Attr(ctx context.Context, a *fuse.Attr) error {
	dom, key, w := n.where()
	var fa fileAttr
	if w != nil {
		fa = w.attr()
	} else {
		var err error
		if fa, err = n.fs.stat(ctx, dom, key); err != nil {
			return errno(err)
		}
		if !fa.exists {
			n.mu.Lock()
			mode := n.mode
			n.mu.Unlock()
			if mode == 0 {
				return fuse.ENOENT
			}
			fa = fileAttr{mode: mode} // created, being written by another handle
		}
	}
	a.Inode = uint64(fa.fid)
	if a.Inode == 0 {
		a.Inode = dirInode(dom, key) &^ (1 << 63)
	}
	a.Size = uint64(fa.size)
	a.Blocks = (a.Size + 511) / 512
	a.BlockSize = 1 << 20
	a.Mode = fa.mode
	if a.Mode == 0 {
		a.Mode = n.fs.cfg.FileMode
	}
	a.Mtime = fa.mtime
	if a.Mtime.IsZero() {
		a.Mtime = n.fs.start
	}
	a.Ctime, a.Atime = a.Mtime, a.Mtime
	a.Nlink = 1
	a.Uid, a.Gid = n.fs.cfg.UID, n.fs.cfg.GID
	a.Valid = n.fs.cfg.KernelTTL
	return nil
}

// Open returns a read handle, or a write handle for O_WRONLY/O_RDWR.
func (n *fileNode) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if req.Flags.IsReadOnly() {
		dom, key, _ := n.where()
		for try := 0; ; try++ {
			a, err := n.fs.stat(ctx, dom, key)
			if err != nil {
				return nil, errno(err)
			}
			if !a.exists {
				return nil, fuse.ENOENT
			}
			// Resolve the copies now, so that a version replaced since
			// the attributes were cached is noticed before reading.
			_, err = n.fs.readPaths(ctx, dom, key, a.fid)
			if err == errStale && try == 0 {
				n.fs.attrs.Remove(ck(dom, key))
				continue
			}
			if err != nil {
				return nil, errno(err)
			}
			n.mu.Lock()
			if a.fid != 0 && a.fid == n.keptFID {
				resp.Flags |= fuse.OpenKeepCache
			}
			n.keptFID = a.fid
			n.mu.Unlock()
			return newReadHandle(n, a), nil
		}
	}
	if n.fs.cfg.ReadOnly {
		return nil, fuse.Errno(syscall.EROFS)
	}
	return newWriteHandle(n, req.Flags&fuse.OpenTruncate != 0), nil
}

// Setattr: size truncates; mode and mtime are stored as metadata;
// owners are accepted and not stored.
func (n *fileNode) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	dom, key, w := n.where()
	if n.fs.cfg.ReadOnly && req.Valid&(fuse.SetattrSize|fuse.SetattrMode|fuse.SetattrMtime) != 0 {
		return fuse.Errno(syscall.EROFS)
	}
	if req.Valid.Size() {
		if w == nil {
			// truncate(2) on a file nobody has open for writing.
			h := newWriteHandle(n, req.Size == 0)
			err := h.truncate(ctx, int64(req.Size))
			if err == nil {
				err = h.commit(ctx)
			}
			h.release()
			if err != nil {
				return errno(err)
			}
		} else if err := w.truncate(ctx, int64(req.Size)); err != nil {
			return errno(err)
		}
	}
	if req.Valid.Mode() || req.Valid.Mtime() {
		var mode os.FileMode
		var mtime time.Time
		if req.Valid.Mode() {
			mode = req.Mode.Perm()
		}
		if req.Valid.Mtime() {
			mtime = req.Mtime
		}
		if _, _, w = n.where(); w != nil && w.setMeta(mode, mtime) {
			// Saved with the content when the writer commits.
		} else if err := n.fs.setMeta(ctx, dom, key, mode, mtime); err != nil {
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
		return fuse.ENOENT
	}
	if mode != 0 {
		a.mode = mode
	}
	if !mtime.IsZero() {
		a.mtime = mtime
	}
	meta := map[string]string{}
	if mode != 0 {
		meta["mode"] = strconv.FormatUint(uint64(mode), 8)
	}
	if !mtime.IsZero() {
		meta["mtime"] = strconv.FormatInt(mtime.UnixNano(), 10)
	}
	if !f.noMeta.Load() {
		err := f.cl.Tracker.SetMeta(ctx, dom, key, meta)
		switch {
		case client.IsCode(err, "unknown_command"):
			f.noMeta.Store(true)
			f.log.Warn("fusefs: the tracker cannot store mtime and mode; they are kept only while mounted")
		case err != nil:
			return err
		}
	}
	f.attrs.Add(ck(dom, key), a)
	return nil
}

// Fsync commits unsaved changes and waits for the tracker to take them.
func (n *fileNode) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	if _, _, w := n.where(); w != nil {
		return errno(w.commit(ctx))
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

// Listxattr lists the MogileFS attributes.
func (n *fileNode) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	resp.Append(xattrClass, xattrChecksum, xattrFID, xattrDevcount)
	return nil
}

// Getxattr reads class, checksum, fid or devcount from file_info.
func (n *fileNode) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	dom, key, _ := n.where()
	if !strings.HasPrefix(req.Name, "user.mogilefs.") {
		return fuse.ErrNoXattr
	}
	fi, err := n.fs.cl.Tracker.FileInfo(ctx, dom, key)
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

// Setxattr changes the class (updateclass); other names are not stored.
func (n *fileNode) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	if req.Name != xattrClass {
		return fuse.Errno(syscall.ENOTSUP)
	}
	if n.fs.cfg.ReadOnly {
		return fuse.Errno(syscall.EROFS)
	}
	dom, key, _ := n.where()
	return errno(n.fs.cl.Tracker.UpdateClass(ctx, dom, key, string(req.Xattr)))
}

// Removexattr is not supported.
func (n *fileNode) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	return fuse.Errno(syscall.ENOTSUP)
}

// renameFile renames a key; an existing target is replaced: it is first
// moved aside to a tombstone key, then the source takes its name, then
// the tombstone is deleted (or moved back if the second step fails).
func (f *FS) renameFile(ctx context.Context, dom, from, to string) error {
	f.mu.Lock()
	p, pending := f.pending[ck(dom, from)]
	f.mu.Unlock()
	if pending {
		// Not committed yet: it will be saved under the new name.
		f.mu.Lock()
		delete(f.pending, ck(dom, from))
		f.pending[ck(dom, to)] = p
		f.mu.Unlock()
		f.renameNodes(dom, from, to, false)
		return nil
	}
	err := f.cl.Tracker.Rename(ctx, dom, from, to)
	if client.IsCode(err, "key_exists") {
		var rnd [6]byte
		rand.Read(rnd[:])
		tomb := parentOf(to) + ".mogmount-replaced-" + hex.EncodeToString(rnd[:])
		if err = f.cl.Tracker.Rename(ctx, dom, to, tomb); err != nil {
			return errno(err)
		}
		if err = f.cl.Tracker.Rename(ctx, dom, from, to); err != nil {
			if rerr := f.cl.Tracker.Rename(context.WithoutCancel(ctx), dom, tomb, to); rerr != nil {
				f.log.Error("fusefs: rename failed and the replaced file could not be put back", "domain", dom, "key", to, "saved_as", tomb, "err", rerr)
			}
			return errno(err)
		}
		if derr := f.cl.Tracker.Delete(context.WithoutCancel(ctx), dom, tomb); derr != nil {
			f.log.Warn("fusefs: could not delete a replaced file", "domain", dom, "key", tomb, "err", derr)
		}
	}
	if err != nil {
		return errno(err)
	}
	f.renameNodes(dom, from, to, false)
	return nil
}

// renameDir renames every key below from to below to.
func (f *FS) renameDir(ctx context.Context, dom, from, to string) error {
	if strings.HasPrefix(to, from) {
		return fuse.Errno(syscall.EINVAL) // into itself
	}
	var keys []string
	after := ""
	for {
		ks, next, err := f.cl.Tracker.ListKeys(ctx, dom, from, after, 1000)
		if err != nil {
			return errno(err)
		}
		keys = append(keys, ks...)
		if len(keys) > f.cfg.RenameDirLimit {
			return fuse.Errno(syscall.EXDEV)
		}
		if len(ks) < 1000 {
			break
		}
		after = next
	}
	// The target may exist only if empty.
	page, err := f.cl.Tracker.ListDir(ctx, dom, to, "", 2)
	if err != nil {
		return errno(err)
	}
	for _, e := range page.Entries {
		if e.Name != to {
			return fuse.Errno(syscall.ENOTEMPTY)
		}
		if err := f.cl.Tracker.Delete(ctx, dom, to); err != nil && !client.IsCode(err, "unknown_key") {
			return errno(err)
		}
	}
	for _, k := range keys {
		nk := to + k[len(from):]
		if err := f.cl.Tracker.Rename(ctx, dom, k, nk); err != nil {
			return errno(err)
		}
		f.attrs.Remove(ck(dom, k))
		f.attrs.Remove(ck(dom, nk))
	}
	f.dirs.RemovePrefix(ck(dom, from))
	f.dirs.RemovePrefix(ck(dom, to))
	f.renameNodes(dom, from, to, true)
	return nil
}
