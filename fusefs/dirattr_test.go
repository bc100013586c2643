package fusefs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// Directory times and modes set by utimes and chmod persist on the
// directory's marker key, for every mount; a directory without a marker
// shows its newest file's time, the same on every mount.
func TestDirectoryTimes(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	d := f.dirNode("d", "")
	before := time.Now()
	sub, err := d.Mkdir(ctx, &fuse.MkdirRequest{Name: "sub", Mode: os.ModeDir | 0o750, Umask: 0o022})
	if err != nil {
		t.Fatal(err)
	}
	var a fuse.Attr
	if err := sub.(*dirNode).Attr(ctx, &a); err != nil || a.Mode != os.ModeDir|0o750 || a.Mtime.Before(before) {
		t.Errorf("after mkdir: mode %v mtime %v (made after %v), %v", a.Mode, a.Mtime, before, err)
	}
	set := time.Unix(1500000000, 0)
	var sr fuse.SetattrResponse
	if err := sub.(*dirNode).Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMtime | fuse.SetattrMode, Mtime: set, Mode: os.ModeDir | 0o700}, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Attr.Mtime != set || sr.Attr.Mode != os.ModeDir|0o700 {
		t.Errorf("setattr answered %v %v", sr.Attr.Mtime, sr.Attr.Mode)
	}
	if fl, ok := c.Get("d", "sub/"); !ok || fl.Meta["mtime"] != strconv.FormatInt(set.UnixNano(), 10) || fl.Meta["mode"] != "700" {
		t.Errorf("marker = %+v", fl)
	}

	// A directory made implicitly by another client's keys gets a marker
	// on utimes; before that it shows its newest file's mtime.
	c.PutFile("d", "other/x", []byte("x"), map[string]string{"mtime": strconv.FormatInt(time.Unix(1600000000, 0).UnixNano(), 10)})
	c.PutFile("d", "other/y", []byte("y"), map[string]string{"mtime": strconv.FormatInt(time.Unix(1600000500, 0).UnixNano(), 10)})
	for i := 0; i < 2; i++ {
		g := newTestFS(t, c, nil)
		var oa, sa fuse.Attr
		if err := g.dirNode("d", "other/").Attr(ctx, &oa); err != nil || oa.Mtime.Unix() != 1600000500 {
			t.Errorf("mount %d: a directory without a marker shows %v, %v; want its newest file's time", i, oa.Mtime, err)
		}
		if err := g.dirNode("d", "sub/").Attr(ctx, &sa); err != nil || !sa.Mtime.Equal(set) || sa.Mode != os.ModeDir|0o700 {
			t.Errorf("mount %d: sub/ = %v %v, %v", i, sa.Mtime, sa.Mode, err)
		}
	}
	if err := f.dirNode("d", "other/").Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMtime, Mtime: set}, &sr); err != nil {
		t.Fatal(err)
	}
	if fl, ok := c.Get("d", "other/"); !ok || fl.Meta["mtime"] != strconv.FormatInt(set.UnixNano(), 10) {
		t.Errorf("utimes made no marker: %+v", fl)
	}
	ents, _ := newTestFS(t, c, nil).dirNode("d", "").ReadDirAll(ctx)
	if len(ents) != 2 {
		t.Errorf("the top lists %v; want sub and other, once each", ents)
	}
	// A renamed directory keeps its time.
	if err := d.Rename(ctx, &fuse.RenameRequest{OldName: "sub", NewName: "sub2"}, d); err != nil {
		t.Fatal(err)
	}
	var ra fuse.Attr
	if err := newTestFS(t, c, nil).dirNode("d", "sub2/").Attr(ctx, &ra); err != nil || !ra.Mtime.Equal(set) {
		t.Errorf("renamed directory = %v, %v", ra.Mtime, err)
	}
}

// A large directory without a marker is not read whole for a stat, and
// shows the same time whether it is listed already or not.
func TestBigDirectoryTimeStable(t *testing.T) {
	c := memcluster.New("d")
	for i := 0; i < smallDirLimit+50; i++ {
		mt := time.Unix(1600000000+int64(i%100), 0) // newest among the first names: +99
		if i >= smallDirLimit {
			mt = time.Unix(1700000000, 0) // later names are newer still
		}
		c.PutFile("d", fmt.Sprintf("big/%04d", i), []byte("x"), map[string]string{"mtime": strconv.FormatInt(mt.UnixNano(), 10)})
	}
	ctx := context.Background()
	var cold, warm fuse.Attr
	f := newTestFS(t, c, nil)
	if err := f.dirNode("d", "big/").Attr(ctx, &cold); err != nil {
		t.Fatal(err)
	}
	g := newTestFS(t, c, nil)
	if _, err := g.dirNode("d", "big/").ReadDirAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.dirNode("d", "big/").Attr(ctx, &warm); err != nil {
		t.Fatal(err)
	}
	if cold.Mtime.Unix() != 1600000099 || !warm.Mtime.Equal(cold.Mtime) {
		t.Errorf("mtime not listed %v, listed %v; want both 1600000099", cold.Mtime.Unix(), warm.Mtime.Unix())
	}
}

// A directory's mtime moves when an entry is made, removed or renamed in
// it, as on a local disk (git's untracked cache and Python's import cache
// trust it). The time is written to the directory's marker in the
// background, so a remount and other mounts see it; utimes still wins.
func TestDirectoryMtimeFollowsEntries(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	top := f.dirNode("d", "")
	mtime := func(d *dirNode) time.Time {
		t.Helper()
		var a fuse.Attr
		if err := d.Attr(ctx, &a); err != nil {
			t.Fatal(err)
		}
		return a.Mtime
	}
	topBefore := mtime(top)
	sn, err := top.Mkdir(ctx, &fuse.MkdirRequest{Name: "sub", Mode: os.ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	sub := sn.(*dirNode)
	if got := mtime(top); !got.After(topBefore) {
		t.Errorf("mkdir left the domain directory's mtime at %v", got)
	}
	past := time.Unix(1500000000, 0)
	var sr fuse.SetattrResponse
	if err := sub.Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMtime, Mtime: past}, &sr); err != nil {
		t.Fatal(err)
	}
	step := func(what string, op func()) {
		t.Helper()
		before := mtime(sub)
		time.Sleep(time.Millisecond)
		op()
		if got := mtime(sub); !got.After(before) {
			t.Errorf("%s left the directory's mtime at %v", what, got)
		}
	}
	step("create", func() {
		_, h, err := sub.Create(ctx, &fuse.CreateRequest{Name: "f", Mode: 0o644}, &fuse.CreateResponse{})
		if err != nil {
			t.Fatal(err)
		}
		h.(*writeHandle).commit(ctx)
		h.(*writeHandle).release()
	})
	step("rename within", func() {
		if err := sub.Rename(ctx, &fuse.RenameRequest{OldName: "f", NewName: "g"}, sub); err != nil {
			t.Fatal(err)
		}
	})
	step("symlink", func() {
		if _, err := sub.Symlink(ctx, &fuse.SymlinkRequest{NewName: "l", Target: "g"}); err != nil {
			t.Fatal(err)
		}
	})
	step("mkdir", func() {
		if _, err := sub.Mkdir(ctx, &fuse.MkdirRequest{Name: "inner", Mode: os.ModeDir | 0o755}); err != nil {
			t.Fatal(err)
		}
	})
	step("unlink", func() {
		if err := sub.Remove(ctx, &fuse.RemoveRequest{Name: "l"}); err != nil {
			t.Fatal(err)
		}
	})
	step("rmdir", func() {
		if err := sub.Remove(ctx, &fuse.RemoveRequest{Name: "inner", Dir: true}); err != nil {
			t.Fatal(err)
		}
	})
	step("rename out", func() {
		if err := sub.Rename(ctx, &fuse.RenameRequest{OldName: "g", NewName: "g"}, top); err != nil {
			t.Fatal(err)
		}
	})

	// Written behind: after a flush another mount sees the same time.
	changed := mtime(sub)
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if fl, ok := c.Get("d", "sub/"); !ok || fl.Meta["mtime"] != strconv.FormatInt(changed.UnixNano(), 10) {
		t.Errorf("marker after the flush = %+v; want mtime %d", fl, changed.UnixNano())
	}
	if got := mtime(newTestFS(t, c, nil).dirNode("d", "sub/")); !got.Equal(changed) {
		t.Errorf("another mount shows %v; want %v", got, changed)
	}

	// utimes after changes wins, also over changes not yet written.
	g := newTestFS(t, c, nil)
	gsub := g.dirNode("d", "sub/")
	writeFile(t, g, "d", "sub/h", []byte("h"))
	if err := gsub.Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMtime, Mtime: past}, &sr); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mtime(gsub); !got.Equal(past) {
		t.Errorf("after utimes the directory shows %v; want %v", got, past)
	}
	if got := mtime(newTestFS(t, c, nil).dirNode("d", "sub/")); !got.Equal(past) {
		t.Errorf("after utimes another mount shows %v; want %v", got, past)
	}
}

// Where a directory's times, mode and owner cannot be stored (the mount's
// top, the domains, every directory on a tracker without the metadata
// extension) they are kept while mounted, not answered with success and
// dropped.
func TestDirectoryAttrsKeptWhileMounted(t *testing.T) {
	c := memcluster.New("d")
	c.Plain = true
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	top := f.dirNode("d", "")
	sn, err := top.Mkdir(ctx, &fuse.MkdirRequest{Name: "sub", Mode: os.ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Unix(1500000000, 0)
	uid, gid := uint32(1234), uint32(55)
	for _, d := range []*dirNode{f.dirNode("", ""), top, sn.(*dirNode)} {
		var sr fuse.SetattrResponse
		req := &fuse.SetattrRequest{Valid: fuse.SetattrMtime | fuse.SetattrMode | fuse.SetattrUid | fuse.SetattrGid, Mtime: past, Mode: os.ModeDir | 0o700, Uid: uid, Gid: gid}
		if err := d.Setattr(ctx, req, &sr); err != nil {
			t.Fatalf("%q: %v", d.prefix, err)
		}
		var a fuse.Attr
		if err := d.Attr(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if !a.Mtime.Equal(past) || a.Mode != os.ModeDir|0o700 || a.Uid != uid || a.Gid != gid {
			t.Errorf("%q/%q after setattr: %v %v %d:%d; want %v %v %d:%d", d.dom, d.prefix, a.Mtime, a.Mode, a.Uid, a.Gid, past, os.ModeDir|0o700, uid, gid)
		}
	}
}
