package fusefs

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A directory's mtime and mode are stored as metadata of its marker key
// ("<dir>/", which mkdir makes): utimes and chmod on a directory (cp -a,
// tar, rsync -a) persist, and a second rsync -a finds nothing to do. A
// directory without a marker (its keys stored by another client) shows
// the newest mtime among its files, which stays put while they do.

// dirAttr returns a directory's mtime and mode (0: the mount's default).
func (d *dirNode) dirAttr(ctx context.Context) (time.Time, os.FileMode, error) {
	dom, prefix := d.where()
	if d.isTop() || prefix == "" {
		return d.fs.start, 0, nil // the mount's top and the domains: no key to keep them
	}
	a, err := d.fs.stat(ctx, dom, prefix)
	if err != nil {
		return time.Time{}, 0, err
	}
	if a.exists && !a.mtime.IsZero() {
		return a.mtime, a.mode, nil
	}
	if d.fs.noMeta.Load() {
		return d.fs.start, a.mode, nil
	}
	ents, err := d.list(ctx)
	if err != nil {
		return time.Time{}, 0, err
	}
	var newest time.Time
	for _, e := range ents {
		if !e.isDir && e.detailed && e.attr.mtime.After(newest) {
			newest = e.attr.mtime
		}
	}
	if newest.IsZero() {
		newest = d.fs.start
	}
	return newest, a.mode, nil
}

// setattr stores a directory's new mode and/or mtime on its marker,
// making the marker when there is none. On a tracker without the
// metadata extension they are accepted and not kept.
func (d *dirNode) setattr(ctx context.Context, mode os.FileMode, mtime time.Time) error {
	dom, prefix := d.where()
	if (mode == 0 && mtime.IsZero()) || d.isTop() || prefix == "" {
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
	meta := map[string]string{}
	if mode != 0 {
		meta["mode"] = strconv.FormatUint(uint64(mode.Perm()), 8)
		a.mode = mode.Perm()
	}
	if !mtime.IsZero() {
		meta["mtime"] = strconv.FormatInt(mtime.UnixNano(), 10)
		a.mtime = mtime
	}
	if a.exists {
		err = d.fs.cl.SetMeta(ctx, dom, prefix, meta)
	} else {
		if a.mtime.IsZero() {
			a.mtime = time.Now()
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
