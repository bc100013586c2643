package fusefs

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// Symbolic links are keys holding their target, marked type=symlink:
// another mount of the same cluster sees the same link.
func TestSymlinks(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	d := f.dirNode("d", "")
	for name, target := range map[string]string{"abs": "/etc/hostname", "rel": "../x/y", "dangling": "nope", "todir": "sub"} {
		n, err := d.Symlink(ctx, &fuse.SymlinkRequest{NewName: name, Target: target})
		if err != nil {
			t.Fatalf("symlink %s -> %s: %v", name, target, err)
		}
		var a fuse.Attr
		if err := n.(*fileNode).Attr(ctx, &a); err != nil || a.Mode != os.ModeSymlink|0o777 || a.Size != uint64(len(target)) {
			t.Errorf("lstat %s = mode %v size %d, %v", name, a.Mode, a.Size, err)
		}
		if got, err := n.(*fileNode).Readlink(ctx, &fuse.ReadlinkRequest{}); err != nil || got != target {
			t.Errorf("readlink %s = %q, %v", name, got, err)
		}
	}
	if fl, ok := c.Get("d", "rel"); !ok || string(fl.Data) != "../x/y" || fl.Meta["type"] != "symlink" {
		t.Errorf("stored link = %+v", fl)
	}
	if _, err := d.Symlink(ctx, &fuse.SymlinkRequest{NewName: "abs", Target: "other"}); !isErrno(err, syscall.EEXIST) {
		t.Errorf("symlink over an existing name: %v", err)
	}
	if _, err := d.Symlink(ctx, &fuse.SymlinkRequest{NewName: "long", Target: strings.Repeat("x", 4096)}); !isErrno(err, syscall.ENAMETOOLONG) {
		t.Errorf("a target of 4096 bytes: %v", err)
	}
	if _, err := d.Symlink(ctx, &fuse.SymlinkRequest{NewName: "empty", Target: ""}); !isErrno(err, syscall.ENOENT) {
		t.Errorf("an empty target: %v", err)
	}
	writeFile(t, f, "d", "plain", []byte("data"))
	if _, err := f.fileNode("d", "plain").Readlink(ctx, &fuse.ReadlinkRequest{}); !isErrno(err, syscall.EINVAL) {
		t.Errorf("readlink of a file: %v", err)
	}

	// A second mount reads the links from the cluster: listing types,
	// lstat and readlink from the stored content.
	g := newTestFS(t, c, nil)
	ents, err := g.dirNode("d", "").ReadDirAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]fuse.DirentType{}
	for _, e := range ents {
		types[e.Name] = e.Type
	}
	if types["abs"] != fuse.DT_Link || types["dangling"] != fuse.DT_Link || types["plain"] != fuse.DT_File {
		t.Errorf("listing types = %v", types)
	}
	n, err := g.dirNode("d", "").Lookup(ctx, &fuse.LookupRequest{Name: "rel"}, &fuse.LookupResponse{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.(*fileNode).Readlink(ctx, &fuse.ReadlinkRequest{}); err != nil || got != "../x/y" {
		t.Errorf("readlink on another mount = %q, %v", got, err)
	}
	// Times set on a link (lutimes: rsync -a, tar) keep it a link.
	fn := n.(*fileNode)
	if err := fn.setattr(ctx, nil, 0, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if fl, _ := c.Get("d", "rel"); fl.Meta["type"] != "symlink" {
		t.Errorf("lutimes dropped the link mark: %v", fl.Meta)
	}
	var a fuse.Attr
	if err := fn.Attr(ctx, &a); err != nil || a.Mode&os.ModeSymlink == 0 || a.Mtime.Unix() != 1700000000 {
		t.Errorf("after lutimes: mode %v mtime %v, %v", a.Mode, a.Mtime, err)
	}
	// Renamed and removed like files.
	if err := d.Rename(ctx, &fuse.RenameRequest{OldName: "abs", NewName: "abs2"}, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, &fuse.RemoveRequest{Name: "abs2"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("d", "abs2"); ok {
		t.Error("removed link still stored")
	}
}

// On a tracker without the metadata extension a link cannot be stored
// as one: ENOTSUP, and nothing is stored under the name.
func TestSymlinkOnPlainTracker(t *testing.T) {
	c := memcluster.New("d")
	c.Plain = true
	f := newTestFS(t, c, nil)
	if _, err := f.dirNode("d", "").Symlink(context.Background(), &fuse.SymlinkRequest{NewName: "l", Target: "x"}); !isErrno(err, syscall.ENOTSUP) {
		t.Errorf("symlink on a plain tracker: %v", err)
	}
	if keys := c.Keys("d"); len(keys) != 0 {
		t.Errorf("keys stored: %v", keys)
	}
}

// A file stored by another client without an mtime shows the time the
// tracker recorded at create_close, the same on every mount; never the
// mount's start time.
func TestMtimeOfFilesFromOtherClients(t *testing.T) {
	c := memcluster.New("d")
	ctx := context.Background()
	o, err := c.CreateOpen(ctx, "d", "perl.txt", "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, o.Dests[0].Path, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateClose(ctx, client.CloseArgs{Domain: "d", Key: "perl.txt", FID: o.FID, Dest: o.Dests[0], Size: 5}); err != nil {
		t.Fatal(err)
	}
	fl, _ := c.Get("d", "perl.txt")
	// Each copy on the nodes has a Last-Modified of its own (replication
	// writes them later): the time must not come from there.
	c.On("head", func(ctx context.Context, n int, dom, url string) error { return errors.New("no HEAD wanted") })
	for i := 0; i < 2; i++ {
		time.Sleep(20 * time.Millisecond) // each mount starts later
		f := newTestFS(t, c, nil)
		for _, viaListing := range []bool{true, false} {
			if viaListing {
				if _, err := f.dirNode("d", "").ReadDirAll(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				f.attrs.Purge()
				f.dirs.Purge()
			}
			var a fuse.Attr
			if err := f.fileNode("d", "perl.txt").Attr(ctx, &a); err != nil {
				t.Fatal(err)
			}
			if !a.Mtime.Equal(fl.Mtime) {
				t.Errorf("mount %d (listing %v): mtime %v; want the recorded %v (mount started %v)", i, viaListing, a.Mtime, fl.Mtime, f.start)
			}
		}
	}
}
