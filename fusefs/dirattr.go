package fusefs

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A directory's mtime and mode are stored as metadata of its marker key
// ("<dir>/", which mkdir makes): utimes and chmod on a directory (cp -a,
// tar, rsync -a) persist, and a second rsync -a finds nothing to do. A
// directory without a marker (its keys stored by another client) shows
// the newest mtime among its first files by name, which stays put while
// they do.

// dirAttr returns a directory's attributes as its marker has them: mtime,
// mode (0: the mount's default) and owner.
func (d *dirNode) dirAttr(ctx context.Context) (fileAttr, error) {
	dom, prefix := d.where()
	if d.isTop() || prefix == "" {
		return fileAttr{mtime: d.fs.start}, nil // the mount's top and the domains: no key to keep them
	}
	a, err := d.fs.stat(ctx, dom, prefix)
	if err != nil {
		return fileAttr{}, err
	}
	if a.exists && !a.mtime.IsZero() {
		return a, nil
	}
	if d.fs.noMeta.Load() {
		a.mtime = d.fs.start
		return a, nil
	}
	// The newest of the first entries by name: the same whether the
	// directory is listed already or not, and without reading a large
	// one whole for a stat.
	var ents []dirEnt
	l, err := d.probe(ctx)
	if err != nil {
		return fileAttr{}, err
	}
	if l != nil {
		ents = l.entries()
	} else {
		p, err := d.fs.cl.ListDir(ctx, dom, prefix, "", smallDirLimit)
		if err != nil {
			return fileAttr{}, err
		}
		ents = d.pageEntries(p, d.fs.removed.Len() > 0)
	}
	slices.SortFunc(ents, func(a, b dirEnt) int { return strings.Compare(a.name, b.name) })
	var newest time.Time
	for _, e := range ents[:min(len(ents), smallDirLimit)] {
		if !e.isDir && e.detailed && e.attr.mtime.After(newest) {
			newest = e.attr.mtime
		}
	}
	if newest.IsZero() {
		newest = d.fs.start
	}
	a.mtime = newest
	return a, nil
}

// setattr stores a directory's new mode, mtime and/or owner (for caller)
// on its marker, making the marker when there is none. On a tracker
// without the metadata extension they are accepted and not kept.
func (d *dirNode) setattr(ctx context.Context, mode os.FileMode, mtime time.Time, caller uint32, uid, gid *uint32) error {
	dom, prefix := d.where()
	if (mode == 0 && mtime.IsZero() && uid == nil && gid == nil) || d.isTop() || prefix == "" {
		return nil
	}
	if d.fs.cfg.ReadOnly {
		return syscall.EROFS
	}
	ok, err := d.fs.hasMeta(ctx, dom)
	if err != nil || !ok {
		return err
	}
	a, err := d.fs.stat(ctx, dom, prefix)
	if err != nil {
		return err
	}
	meta := metaOf(mtime, mode)
	a.set(mode, mtime)
	if uid != nil || gid != nil {
		if err := chownAllowed(caller, a.own, d.fs.defaultOwner(), uid, gid); err != nil {
			return err
		}
		a.own = applyOwner(a.own, d.fs.defaultOwner(), uid, gid)
		a.own.addTo(meta)
	}
	return d.saveMarker(ctx, a, meta)
}

// saveMarker merges meta into the directory's marker, or makes the marker
// (with an mtime) when there is none, and caches a as its attributes.
func (d *dirNode) saveMarker(ctx context.Context, a fileAttr, meta map[string]string) error {
	dom, prefix := d.where()
	var err error
	if a.exists {
		err = d.fs.cl.SetMeta(ctx, dom, prefix, meta)
	} else {
		if a.mtime.IsZero() {
			a.mtime = time.Now()
		}
		if meta["mtime"] == "" {
			meta["mtime"] = strconv.FormatInt(a.mtime.UnixNano(), 10)
		}
		a.exists = true
		a.fid, err = d.fs.store(ctx, dom, prefix, nil, 0, meta)
	}
	if err != nil {
		return err
	}
	d.fs.attrs.Add(ck(dom, prefix), a)
	return nil
}
