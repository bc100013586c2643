package fusefs

import (
	"context"
	"io"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// A symbolic link is a key whose content is the link's target and whose
// metadata says type=symlink, so that every mount of the cluster sees the
// same link. It needs the tracker's metadata extension: on a tracker
// without it, symlink(2) is ENOTSUP (the link would come back as a plain
// file holding its target).

// Metadata that marks a key as a symbolic link.
const (
	metaType    = "type"
	typeSymlink = "symlink"
)

// maxLinkTarget is the longest target stored (PATH_MAX less its NUL).
const maxLinkTarget = 4095

// metaProbeKey is the key plugin_meta_set is tried on, to learn whether
// the tracker has the metadata extension: ours answers that the key does
// not exist, a 2.73 tracker that it does not know the command.
const metaProbeKey = ".mogmount-meta-probe"

// hasMeta reports whether the tracker stores file metadata.
func (f *FS) hasMeta(ctx context.Context, dom string) (bool, error) {
	if f.noMeta.Load() {
		return false, nil
	}
	if f.metaOK.Load() {
		return true, nil
	}
	err := f.cl.SetMeta(ctx, dom, metaProbeKey, map[string]string{"probe": "1"})
	switch {
	case core.Is(core.Unsupported, err):
		f.noMeta.Store(true)
		return false, nil
	case err == nil, core.Is(core.NotFound, err):
		f.metaOK.Store(true)
		return true, nil
	}
	return false, err
}

// symlink stores a link name -> target in the directory.
func (d *dirNode) symlink(ctx context.Context, name, target string, own owner) (*fileNode, error) {
	dom, prefix := d.where()
	if err := d.fs.checkName(prefix, name); err != nil {
		return nil, err
	}
	switch {
	case target == "":
		return nil, syscall.ENOENT
	case len(target) > maxLinkTarget:
		return nil, syscall.ENAMETOOLONG
	}
	ok, err := d.fs.hasMeta(ctx, dom)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, syscall.ENOTSUP
	}
	key := prefix + name
	if n, _, err := d.lookup(ctx, name); err == nil || n != nil {
		return nil, syscall.EEXIST
	} else if err != syscall.ENOENT {
		return nil, err
	}
	mtime := time.Now()
	meta := metaOf(mtime, 0o777)
	meta[metaType] = typeSymlink
	own.addTo(meta)
	fid, err := d.fs.store(ctx, dom, key, strings.NewReader(target), int64(len(target)), meta, nil)
	if err != nil {
		return nil, err
	}
	d.fs.committed(dom, key, fileAttr{exists: true, fid: fid, size: int64(len(target)), mtime: mtime, mode: 0o777, link: true, own: own})
	d.fs.touchDir(dom, prefix)
	n := d.fs.fileNode(dom, key)
	n.mu.Lock()
	n.target, n.linkFID = target, fid
	n.mu.Unlock()
	return n, nil
}

// readlink returns the target of a link: kept from the last read of the
// same version, or read from a storage node.
func (n *fileNode) readlink(ctx context.Context) (string, error) {
	a, err := n.attr(ctx)
	if err != nil {
		return "", err
	}
	if !a.link {
		return "", syscall.EINVAL
	}
	n.mu.Lock()
	if n.linkFID == a.fid && n.target != "" {
		t := n.target
		n.mu.Unlock()
		return t, nil
	}
	n.mu.Unlock()
	if a.size <= 0 || a.size > maxLinkTarget {
		return "", syscall.EIO
	}
	dom, key := n.where()
	paths, err := n.fs.readPaths(ctx, dom, key, a.fid)
	if err != nil {
		return "", err
	}
	r := n.fs.cl.OpenRange(ctx, paths, 0, a.size, func(ctx context.Context) ([]string, error) {
		return n.fs.versionPaths(ctx, dom, key, a.fid, false)
	})
	defer r.Close()
	buf := make([]byte, a.size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.target, n.linkFID = string(buf), a.fid
	n.mu.Unlock()
	return string(buf), nil
}

// Readlink returns a link's target.
func (n *fileNode) Readlink(ctx context.Context, req *fuse.ReadlinkRequest) (string, error) {
	t, err := n.readlink(ctx)
	if err != nil {
		return "", errno(err)
	}
	return t, nil
}
