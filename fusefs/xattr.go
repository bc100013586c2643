package fusefs

import (
	"context"
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"golang.org/x/sys/unix"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// A file's own extended attributes in the user namespace (rsync -X, cp
// --preserve=xattr) are stored as its metadata: "x.<name>" holding the
// value in base64 (values are bytes; metadata values are text), an empty
// value marking one removed. They travel with the file through renames
// and rewrites. The limits are the metadata's: names of up to
// maxXattrName bytes, values of up to maxXattrValue; beyond them ERANGE.

const xattrMetaPrefix = "x."

var (
	maxXattrName  = protocol.MaxMetaNameLen - len(xattrMetaPrefix)
	maxXattrValue = protocol.MaxMetaValueLen / 4 * 3 // whole base64 groups within a metadata value
)

// userXattr returns the name of a user.* attribute that the file keeps
// itself (not user.mogilefs.*, which the mount answers).
func userXattr(full string) (string, bool) {
	name, ok := strings.CutPrefix(full, "user.")
	if !ok || name == "" || strings.HasPrefix(full, "user.mogilefs.") {
		return "", false
	}
	return name, true
}

// xattrsOf reads the file's attributes from its metadata.
func xattrsOf(meta map[string]string) map[string]string {
	var out map[string]string
	for k, v := range meta {
		name, ok := strings.CutPrefix(k, xattrMetaPrefix)
		if !ok || v == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(b)
	}
	return out
}

// addXattrs adds attributes to file metadata.
func addXattrs(meta map[string]string, xs map[string]string) {
	for name, v := range xs {
		meta[xattrMetaPrefix+name] = base64.StdEncoding.EncodeToString([]byte(v))
	}
}

func sortedNames(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// xattrChange is one setxattr or removexattr.
type xattrChange struct {
	name, value string
	flags       uint32 // XATTR_CREATE, XATTR_REPLACE
	remove      bool
}

// apply returns xs changed (a copy), with setxattr(2)'s XATTR_CREATE and
// XATTR_REPLACE rules and removexattr's ENODATA.
func (c xattrChange) apply(xs map[string]string) (map[string]string, error) {
	_, exists := xs[c.name]
	switch {
	case c.remove && !exists, c.flags&unix.XATTR_REPLACE != 0 && !exists:
		return nil, fuse.ErrNoXattr
	case c.flags&unix.XATTR_CREATE != 0 && exists:
		return nil, syscall.EEXIST
	}
	out := maps.Clone(xs)
	if out == nil {
		out = map[string]string{}
	}
	if c.remove {
		delete(out, c.name)
	} else {
		out[c.name] = c.value
	}
	return out, nil
}

// meta is the metadata that stores the change (an empty value: removed).
func (c xattrChange) meta() map[string]string {
	meta := map[string]string{xattrMetaPrefix + c.name: ""}
	if !c.remove {
		addXattrs(meta, map[string]string{c.name: c.value})
	}
	return meta
}

// canSetXattr refuses an attribute past the metadata's limits (ERANGE)
// or one that a tracker without the metadata extension cannot keep.
func (f *FS) canSetXattr(ctx context.Context, dom, name, value string) error {
	if len(name) > maxXattrName || len(value) > maxXattrValue {
		return syscall.ERANGE
	}
	ok, err := f.hasMeta(ctx, dom)
	if err == nil && !ok {
		err = syscall.ENOTSUP
	}
	return err
}

// getXattr answers a getxattr of name from xs.
func getXattr(xs map[string]string, name string, resp *fuse.GetxattrResponse) error {
	v, ok := xs[name]
	if !ok {
		return fuse.ErrNoXattr
	}
	resp.Xattr = []byte(v)
	return nil
}

// setXattr sets (or with remove, removes) one of the file's attributes.
func (n *fileNode) setXattr(ctx context.Context, name, value string, flags uint32, remove bool) error {
	dom, key := n.where()
	if err := n.fs.canSetXattr(ctx, dom, name, value); err != nil {
		return err
	}
	ch := xattrChange{name: name, value: value, flags: flags, remove: remove}
	if w := n.view(); w != nil {
		if done, err := w.setXattrs(ch.apply); done || err != nil {
			return err
		}
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	a, err := n.fs.stat(ctx, dom, key)
	if err != nil {
		return err
	}
	if !a.exists {
		return syscall.ENOENT
	}
	xs, err := ch.apply(a.xattrs)
	if err != nil {
		return err
	}
	if err := n.fs.storeMeta(ctx, dom, key, ch.meta()); err != nil {
		return err
	}
	a.xattrs = xs
	n.fs.noteAttr(dom, key, a)
	return nil
}

// A directory's own user.* attributes live on its marker key, like its
// times (see dirattr.go).

var (
	_ fs.NodeGetxattrer    = (*dirNode)(nil)
	_ fs.NodeListxattrer   = (*dirNode)(nil)
	_ fs.NodeSetxattrer    = (*dirNode)(nil)
	_ fs.NodeRemovexattrer = (*dirNode)(nil)
)

// Listxattr lists the directory's own attributes.
func (d *dirNode) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	a, err := d.dirAttr(ctx)
	if err != nil {
		return errno(err)
	}
	for _, name := range sortedNames(a.xattrs) {
		resp.Append("user." + name)
	}
	return nil
}

// Getxattr reads one of the directory's own attributes.
func (d *dirNode) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	name, user := userXattr(req.Name)
	if !user {
		return fuse.ErrNoXattr
	}
	a, err := d.dirAttr(ctx)
	if err != nil {
		return errno(err)
	}
	return getXattr(a.xattrs, name, resp)
}

// Setxattr sets one of the directory's own user.* attributes.
func (d *dirNode) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	name, user := userXattr(req.Name)
	if !user {
		return fuse.Errno(syscall.ENOTSUP)
	}
	return errno(d.setXattr(ctx, name, string(req.Xattr), req.Flags, false))
}

// Removexattr removes one of the directory's own user.* attributes.
func (d *dirNode) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	name, user := userXattr(req.Name)
	if !user {
		return fuse.Errno(syscall.ENOTSUP)
	}
	return errno(d.setXattr(ctx, name, "", 0, true))
}

// setXattr sets or removes a directory attribute on its marker, making
// the marker when there is none.
func (d *dirNode) setXattr(ctx context.Context, name, value string, flags uint32, remove bool) error {
	dom, prefix := d.where()
	switch {
	case d.fs.cfg.ReadOnly:
		return syscall.EROFS
	case d.isTop() || prefix == "":
		return syscall.ENOTSUP // the mount's top and the domains have no key
	}
	if err := d.fs.canSetXattr(ctx, dom, name, value); err != nil {
		return err
	}
	a, err := d.fs.stat(ctx, dom, prefix)
	if err != nil {
		return err
	}
	ch := xattrChange{name: name, value: value, flags: flags, remove: remove}
	xs, err := ch.apply(a.xattrs)
	if err != nil {
		return err
	}
	a.xattrs = xs
	return d.saveMarker(ctx, a, ch.meta())
}
