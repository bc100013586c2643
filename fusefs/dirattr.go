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

// dirAttr returns a directory's attributes: mtime, mode (0: the mount's
// default) and owner as its marker has them, and the time this mount last
// changed its entries when that is newer (see dirtimes.go).
func (d *dirNode) dirAttr(ctx context.Context) (fileAttr, error) {
	a, err := d.storedAttr(ctx)
	if err != nil {
		return a, err
	}
	dom, prefix := d.where()
	if t, ok := d.fs.changedAt(dom, prefix); ok && t.After(a.mtime) {
		a.mtime = t
	}
	return a, nil
}

// storedAttr returns a directory's attributes as its marker has them.
func (d *dirNode) storedAttr(ctx context.Context) (fileAttr, error) {
	dom, prefix := d.where()
	if d.isTop() || prefix == "" {
		a := fileAttr{mtime: d.fs.start} // the mount's top and the domains: no key to keep them
		d.fs.applyLocalMeta(dom, prefix, &a)
		return a, nil
	}
	a, err := d.fs.stat(ctx, dom, prefix)
	if err != nil {
		return fileAttr{}, err
	}
	if d.fs.noMeta.Load() {
		if a.mtime.IsZero() {
			a.mtime = d.fs.start
		}
		d.fs.applyLocalMeta(dom, prefix, &a)
		return a, nil
	}
	if a.exists && !a.mtime.IsZero() {
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
// on its marker, making the marker when there is none. The mount's top,
// the domains (which have no key) and every directory on a tracker without
// the metadata extension keep them while mounted, as files do there.
func (d *dirNode) setattr(ctx context.Context, mode os.FileMode, mtime time.Time, caller uint32, uid, gid *uint32) error {
	dom, prefix := d.where()
	if mode == 0 && mtime.IsZero() && uid == nil && gid == nil {
		return nil
	}
	if d.fs.cfg.ReadOnly {
		return syscall.EROFS
	}
	if !mtime.IsZero() {
		// utimes replaces the time of changes not yet written.
		d.fs.dirTimes.flushMu.Lock()
		defer d.fs.dirTimes.flushMu.Unlock()
		d.fs.dropDirChange(dom, prefix)
	}
	keep := d.isTop() || prefix == ""
	if !keep {
		ok, err := d.fs.hasMeta(ctx, dom)
		if err != nil {
			return err
		}
		keep = !ok
	}
	a, err := d.storedAttr(ctx)
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
	if keep {
		d.fs.localMeta.Add(ck(dom, prefix), localMeta{fid: a.fid, mtime: a.mtime, mode: a.mode, own: a.own})
		return nil
	}
	return d.saveMarker(ctx, a, meta)
}

// applyLocalMeta applies what this mount set on a file or directory
// version and could not store (see localMeta).
func (f *FS) applyLocalMeta(dom, prefix string, a *fileAttr) {
	if m, ok := f.localMeta.Get(ck(dom, prefix)); ok && m.fid == a.fid {
		if !m.mtime.IsZero() {
			a.mtime = m.mtime
		}
		if m.mode != 0 {
			a.mode = m.mode
		}
		if m.own.set {
			a.own = m.own
		}
	}
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
		a.fid, err = d.fs.store(ctx, dom, prefix, nil, 0, meta, nil)
	}
	if err != nil {
		return err
	}
	d.fs.noteMarker(dom, prefix, a)
	return nil
}
