package fusefs

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// A file's own user.* attributes are stored with it: another mount reads
// them, a rewrite and a rename keep them, removal removes them, and the
// setxattr flags and limits hold.
func TestUserXattrs(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	n := writeFile(t, f, "d", "f", []byte("data"))
	bin := "\x00\xffbinary\n"
	for name, v := range map[string]string{"user.mime_type": "text/plain", "user.bin": bin} {
		if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: name, Xattr: []byte(v)}); err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
	}
	if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.bin", Xattr: []byte("x"), Flags: unix.XATTR_CREATE}); !isErrno(err, syscall.EEXIST) {
		t.Errorf("XATTR_CREATE of an existing one: %v", err)
	}
	if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.none", Xattr: []byte("x"), Flags: unix.XATTR_REPLACE}); err != fuse.ErrNoXattr {
		t.Errorf("XATTR_REPLACE of a missing one: %v", err)
	}
	if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.full", Xattr: bytes.Repeat([]byte("v"), maxXattrValue)}); err != nil {
		t.Errorf("a value of exactly the limit (%d bytes): %v", maxXattrValue, err)
	}
	if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.big", Xattr: bytes.Repeat([]byte("v"), maxXattrValue+1)}); !isErrno(err, syscall.ERANGE) {
		t.Errorf("a value past the limit: %v", err)
	}
	if err := n.Setxattr(ctx, &fuse.SetxattrRequest{Name: "security.selinux", Xattr: []byte("x")}); !isErrno(err, syscall.ENOTSUP) {
		t.Errorf("another namespace: %v", err)
	}

	// Rewritten (O_TRUNC) and renamed: still there, on another mount.
	rewriteFile(t, n, []byte("new"))
	d := f.dirNode("d", "")
	if err := d.Rename(ctx, &fuse.RenameRequest{OldName: "f", NewName: "g"}, d); err != nil {
		t.Fatal(err)
	}
	g := newTestFS(t, c, nil).fileNode("d", "g")
	var gr fuse.GetxattrResponse
	if err := g.Getxattr(ctx, &fuse.GetxattrRequest{Name: "user.bin"}, &gr); err != nil || string(gr.Xattr) != bin {
		t.Errorf("another mount reads user.bin = %q, %v", gr.Xattr, err)
	}
	var lr fuse.ListxattrResponse
	if err := g.Listxattr(ctx, &fuse.ListxattrRequest{}, &lr); err != nil || !strings.Contains(string(lr.Xattr), "user.bin\x00user.full\x00user.mime_type\x00") {
		t.Errorf("listxattr = %q, %v", lr.Xattr, err)
	}
	if err := g.Removexattr(ctx, &fuse.RemovexattrRequest{Name: "user.bin"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Removexattr(ctx, &fuse.RemovexattrRequest{Name: "user.bin"}); err != fuse.ErrNoXattr {
		t.Errorf("second removexattr: %v", err)
	}
	var hr fuse.GetxattrResponse
	if err := newTestFS(t, c, nil).fileNode("d", "g").Getxattr(ctx, &fuse.GetxattrRequest{Name: "user.bin"}, &hr); err != fuse.ErrNoXattr {
		t.Errorf("after removal another mount reads %q, %v", hr.Xattr, err)
	}
}

// A tracker without the metadata extension keeps no attributes: ENOTSUP.
func TestUserXattrsOnPlainTracker(t *testing.T) {
	c := memcluster.New("d")
	c.Plain = true
	f := newTestFS(t, c, nil)
	n := writeFile(t, f, "d", "f", []byte("data"))
	if err := n.Setxattr(context.Background(), &fuse.SetxattrRequest{Name: "user.a", Xattr: []byte("x")}); !isErrno(err, syscall.ENOTSUP) {
		t.Errorf("setxattr on a plain tracker: %v", err)
	}
}

// Directories keep their own user.* attributes on their marker.
func TestDirectoryXattrs(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	d := f.dirNode("d", "")
	sub, err := d.Mkdir(ctx, &fuse.MkdirRequest{Name: "sub", Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.(*dirNode).Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.tag", Xattr: []byte("blue")}); err != nil {
		t.Fatal(err)
	}
	c.PutFile("d", "implicit/x", []byte("x"), nil)
	if err := f.dirNode("d", "implicit/").Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.tag", Xattr: []byte("red")}); err != nil {
		t.Fatalf("setxattr on a directory without a marker: %v", err)
	}
	g := newTestFS(t, c, nil)
	for dir, want := range map[string]string{"sub/": "blue", "implicit/": "red"} {
		var gr fuse.GetxattrResponse
		if err := g.dirNode("d", dir).Getxattr(ctx, &fuse.GetxattrRequest{Name: "user.tag"}, &gr); err != nil || string(gr.Xattr) != want {
			t.Errorf("%s on another mount: %q, %v; want %q", dir, gr.Xattr, err, want)
		}
	}
	var lr fuse.ListxattrResponse
	if err := g.dirNode("d", "sub/").Listxattr(ctx, &fuse.ListxattrRequest{}, &lr); err != nil || string(lr.Xattr) != "user.tag\x00" {
		t.Errorf("listxattr = %q, %v", lr.Xattr, err)
	}
	if err := g.dirNode("d", "sub/").Removexattr(ctx, &fuse.RemovexattrRequest{Name: "user.tag"}); err != nil {
		t.Fatal(err)
	}
	var gr fuse.GetxattrResponse
	if err := newTestFS(t, c, nil).dirNode("d", "sub/").Getxattr(ctx, &fuse.GetxattrRequest{Name: "user.tag"}, &gr); err != fuse.ErrNoXattr {
		t.Errorf("after removal: %q, %v", gr.Xattr, err)
	}
	if err := d.Setxattr(ctx, &fuse.SetxattrRequest{Name: "user.tag", Xattr: []byte("x")}); !isErrno(err, syscall.ENOTSUP) {
		t.Errorf("setxattr on a domain: %v; want ENOTSUP", err)
	}
}
