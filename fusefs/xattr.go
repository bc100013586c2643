package fusefs

import (
	"context"
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"syscall"

	"bazil.org/fuse"
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

// setXattr sets (or with remove, removes) one of the file's attributes,
// with setxattr(2)'s XATTR_CREATE and XATTR_REPLACE rules.
func (n *fileNode) setXattr(ctx context.Context, name, value string, flags uint32, remove bool) error {
	if len(name) > maxXattrName || len(value) > maxXattrValue {
		return syscall.ERANGE
	}
	dom, key := n.where()
	ok, err := n.fs.hasMeta(ctx, dom)
	if err != nil {
		return err
	}
	if !ok {
		return syscall.ENOTSUP
	}
	apply := func(xs map[string]string) (map[string]string, error) {
		_, exists := xs[name]
		switch {
		case remove && !exists, flags&unix.XATTR_REPLACE != 0 && !exists:
			return nil, fuse.ErrNoXattr
		case flags&unix.XATTR_CREATE != 0 && exists:
			return nil, syscall.EEXIST
		}
		out := maps.Clone(xs)
		if out == nil {
			out = map[string]string{}
		}
		if remove {
			delete(out, name)
		} else {
			out[name] = value
		}
		return out, nil
	}
	if w := n.view(); w != nil {
		if done, err := w.setXattrs(apply); done || err != nil {
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
	xs, err := apply(a.xattrs)
	if err != nil {
		return err
	}
	meta := map[string]string{xattrMetaPrefix + name: ""}
	if !remove {
		addXattrs(meta, map[string]string{name: value})
	}
	if err := n.fs.storeMeta(ctx, dom, key, meta); err != nil {
		return err
	}
	a.xattrs = xs
	n.fs.noteAttr(dom, key, a)
	return nil
}
