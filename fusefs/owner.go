package fusefs

import (
	"context"
	"os"
	"strconv"
	"syscall"

	"bazil.org/fuse"
)

// Owners and the set-id and sticky bits are stored like the mode: as the
// file's metadata (uid, gid; mode in octal with its 07000 bits), so that
// chown, chgrp and chmod u+s persist for every mount. A file without
// stored owners belongs to --uid/--gid.

// owner is a file's stored owner, when it has one.
type owner struct {
	set      bool
	uid, gid uint32
}

// addTo adds the owner to file metadata.
func (o owner) addTo(meta map[string]string) {
	if o.set {
		meta["uid"] = strconv.FormatUint(uint64(o.uid), 10)
		meta["gid"] = strconv.FormatUint(uint64(o.gid), 10)
	}
}

// ownerOf reads the owner from file metadata.
func ownerOf(meta map[string]string) owner {
	uid, err1 := strconv.ParseUint(meta["uid"], 10, 32)
	gid, err2 := strconv.ParseUint(meta["gid"], 10, 32)
	if err1 != nil || err2 != nil {
		return owner{}
	}
	return owner{set: true, uid: uint32(uid), gid: uint32(gid)}
}

// modeMask is what chmod may set: permissions, set-id and sticky bits.
const modeMask = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// checkMode refuses what the mount cannot show: the sticky bit (the FUSE
// library reports set-id bits to the kernel, not the sticky one), so that
// chmod +t fails instead of answering success while nothing shows it.
func (f *FS) checkMode(m os.FileMode) error {
	if m&os.ModeSticky != 0 {
		f.log.Info("fusefs: the sticky bit cannot be kept on this mount; refused")
		return syscall.EPERM
	}
	return nil
}

// modeBits is m in the octal form of chmod (04755).
func modeBits(m os.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// fromModeBits is modeBits' inverse.
func fromModeBits(b uint32) os.FileMode {
	m := os.FileMode(b & 0o777)
	if b&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if b&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if b&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// chownAllowed applies POSIX's rule as far as the mount can: only root
// gives a file to another user; the owner may change its group.
func chownAllowed(caller uint32, cur owner, def owner, uid, gid *uint32) error {
	if caller == 0 {
		return nil
	}
	o := cur
	if !o.set {
		o = def
	}
	if uid != nil && *uid != o.uid {
		return syscall.EPERM
	}
	if (uid != nil || gid != nil) && caller != o.uid {
		return syscall.EPERM
	}
	return nil
}

// chown stores a new owner and/or group of a committed file.
func (f *FS) chown(ctx context.Context, dom, key string, caller uint32, uid, gid *uint32) error {
	a, err := f.stat(ctx, dom, key)
	if err != nil {
		return err
	}
	if !a.exists {
		return syscall.ENOENT
	}
	if err := chownAllowed(caller, a.own, f.defaultOwner(), uid, gid); err != nil {
		return err
	}
	a.own = applyOwner(a.own, f.defaultOwner(), uid, gid)
	meta := map[string]string{}
	a.own.addTo(meta)
	if err := f.storeMeta(ctx, dom, key, meta); err != nil {
		return err
	}
	f.noteAttr(dom, key, a)
	return nil
}

// applyOwner returns cur (or def when unset) with uid and gid changed.
func applyOwner(cur, def owner, uid, gid *uint32) owner {
	if !cur.set {
		cur = def
	}
	cur.set = true
	if uid != nil {
		cur.uid = *uid
	}
	if gid != nil {
		cur.gid = *gid
	}
	return cur
}

// defaultOwner is the owner of files without a stored one.
func (f *FS) defaultOwner() owner { return owner{set: true, uid: f.cfg.UID, gid: f.cfg.GID} }

// creator is the owner a new file of the caller h gets: none stored when
// it is the mount's default owner (most mounts: one user), else h's.
func (f *FS) creator(h fuse.Header) owner {
	if h.Uid == f.cfg.UID && h.Gid == f.cfg.GID {
		return owner{}
	}
	return owner{set: true, uid: h.Uid, gid: h.Gid}
}
