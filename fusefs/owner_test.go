package fusefs

import (
	"context"
	"os"
	"syscall"
	"testing"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// chown, chgrp and chmod's set-id and sticky bits are stored: another
// mount sees them; what POSIX refuses is refused, nothing is accepted
// and dropped.
func TestOwnersAndModeBits(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.UID, cfg.GID = 0, 0 })
	ctx := context.Background()
	n := writeFile(t, f, "d", "prog", []byte("#!/bin/sh\n"))
	root := fuse.Header{Uid: 0, Gid: 0}

	var sr fuse.SetattrResponse
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Header: root, Valid: fuse.SetattrMode, Mode: 0o755 | os.ModeSetuid | os.ModeSetgid}, &sr); err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o755) | os.ModeSetuid | os.ModeSetgid; sr.Attr.Mode != want {
		t.Errorf("chmod 6755 answered %v; want %v", sr.Attr.Mode, want)
	}
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Header: root, Valid: fuse.SetattrUid | fuse.SetattrGid, Uid: 1234, Gid: 5678}, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Attr.Uid != 1234 || sr.Attr.Gid != 5678 {
		t.Errorf("chown answered %d:%d", sr.Attr.Uid, sr.Attr.Gid)
	}
	if fl, _ := c.Get("d", "prog"); fl.Meta["mode"] != "6755" || fl.Meta["uid"] != "1234" || fl.Meta["gid"] != "5678" {
		t.Errorf("stored metadata = %v", fl.Meta)
	}
	g := newTestFS(t, c, func(cfg *Config) { cfg.UID, cfg.GID = 0, 0 })
	var a fuse.Attr
	if err := g.fileNode("d", "prog").Attr(ctx, &a); err != nil || a.Uid != 1234 || a.Gid != 5678 || a.Mode&os.ModeSetuid == 0 {
		t.Errorf("another mount: %d:%d %v, %v", a.Uid, a.Gid, a.Mode, err)
	}

	// The owner may change the group, not the owner; others neither.
	owner := fuse.Header{Uid: 1234, Gid: 5678}
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Header: owner, Valid: fuse.SetattrGid, Gid: 42}, &sr); err != nil || sr.Attr.Gid != 42 {
		t.Errorf("chgrp by the owner: %v (gid %d)", err, sr.Attr.Gid)
	}
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Header: owner, Valid: fuse.SetattrUid, Uid: 1}, &sr); !isErrno(err, syscall.EPERM) {
		t.Errorf("chown by the owner to another user: %v; want EPERM", err)
	}
	other := fuse.Header{Uid: 99, Gid: 99}
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Header: other, Valid: fuse.SetattrGid, Gid: 99}, &sr); !isErrno(err, syscall.EPERM) {
		t.Errorf("chgrp by another user: %v; want EPERM", err)
	}

	// A file created by a user other than the mount's default owner is
	// theirs; one of the default owner stores no owner.
	d := f.dirNode("d", "")
	cn, h, err := d.Create(ctx, &fuse.CreateRequest{Header: fuse.Header{Uid: 1000, Gid: 100}, Name: "mine", Mode: 0o640}, &fuse.CreateResponse{})
	if err != nil {
		t.Fatal(err)
	}
	wh := h.(*writeHandle)
	wh.write(ctx, []byte("x"), 0)
	if err := wh.commit(ctx); err != nil {
		t.Fatal(err)
	}
	wh.release()
	if fl, _ := c.Get("d", "mine"); fl.Meta["uid"] != "1000" || fl.Meta["gid"] != "100" {
		t.Errorf("a file created by uid 1000: %v", fl.Meta)
	}
	if err := cn.(*fileNode).Attr(ctx, &a); err != nil || a.Uid != 1000 {
		t.Errorf("its owner: %d, %v", a.Uid, err)
	}
	if fl, _ := c.Get("d", "prog"); fl == nil {
		t.Fatal("prog gone")
	}
	writeFile(t, f, "d", "plain", []byte("p"))
	if fl, _ := c.Get("d", "plain"); fl.Meta["uid"] != "" {
		t.Errorf("a file of the default owner stored an owner: %v", fl.Meta)
	}

	// Directories keep owners too.
	sub, err := d.Mkdir(ctx, &fuse.MkdirRequest{Header: root, Name: "sub", Mode: os.ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.(*dirNode).Setattr(ctx, &fuse.SetattrRequest{Header: root, Valid: fuse.SetattrUid | fuse.SetattrGid | fuse.SetattrMode, Uid: 7, Gid: 8, Mode: os.ModeDir | os.ModeSetgid | 0o770}, &sr); err != nil {
		t.Fatal(err)
	}
	if fl, _ := c.Get("d", "sub/"); fl.Meta["uid"] != "7" || fl.Meta["mode"] != "2770" {
		t.Errorf("directory marker = %v", fl.Meta)
	}
	var da fuse.Attr
	if err := newTestFS(t, c, nil).dirNode("d", "sub/").Attr(ctx, &da); err != nil || da.Uid != 7 || da.Gid != 8 || da.Mode != os.ModeDir|os.ModeSetgid|0o770 {
		t.Errorf("directory on another mount: %d:%d %v, %v", da.Uid, da.Gid, da.Mode, err)
	}
	// The sticky bit cannot be shown through the FUSE library: refused.
	if err := sub.(*dirNode).Setattr(ctx, &fuse.SetattrRequest{Header: root, Valid: fuse.SetattrMode, Mode: os.ModeDir | os.ModeSticky | 0o777}, &sr); !isErrno(err, syscall.EPERM) {
		t.Errorf("chmod +t: %v; want EPERM", err)
	}
	if _, err := d.Mkdir(ctx, &fuse.MkdirRequest{Header: root, Name: "tmp", Mode: os.ModeDir | os.ModeSticky | 0o777}); !isErrno(err, syscall.EPERM) {
		t.Errorf("mkdir -m 1777: %v; want EPERM", err)
	}
}

// A rewrite with O_TRUNC keeps the file's mode and owner, as on a local
// disk (echo x > f of a chmod 600 file stays 600).
func TestTruncatingRewriteKeepsModeAndOwner(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.UID, cfg.GID = 0, 0 })
	ctx := context.Background()
	n := writeFile(t, f, "d", "f", []byte("old"))
	var sr fuse.SetattrResponse
	if err := n.Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMode | fuse.SetattrUid, Mode: 0o600, Uid: 55}, &sr); err != nil {
		t.Fatal(err)
	}
	rewriteFile(t, n, []byte("new"))
	fl, _ := c.Get("d", "f")
	if string(fl.Data) != "new" || fl.Meta["mode"] != "600" || fl.Meta["uid"] != "55" {
		t.Errorf("after an O_TRUNC rewrite: %q %v", fl.Data, fl.Meta)
	}
}
