package fusefs

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// A tree unpacked into new directories (git checkout, tar x, cp -r) asks
// the tracker for no listing: a directory this mount made is known
// empty, and its parent's cached listing gains it in place. Each list
// used to cost a round trip per new file, and a new directory's parent
// was listed again after every mkdir.
func TestNewTreeNeedsNoListings(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	var lists atomic.Int64
	c.On("list_keys", func(context.Context, int, string, string) error { lists.Add(1); return nil })
	top := f.dirNode("d", "")
	if _, _, err := top.lookup(ctx, "src"); err != syscall.ENOENT {
		t.Fatalf("lookup of src before it is made: %v", err)
	}
	before := lists.Load() // the first listing of the top directory
	if _, err := top.Mkdir(ctx, &fuse.MkdirRequest{Name: "src", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	src := f.dirNode("d", "src/")
	for i := range 20 {
		name := fmt.Sprintf("e%d", i)
		// As the kernel does before each mkdir and create: look the name up.
		if _, _, err := src.lookup(ctx, name); err != syscall.ENOENT {
			t.Fatalf("lookup of %s before it is made: %v", name, err)
		}
		if _, err := src.Mkdir(ctx, &fuse.MkdirRequest{Name: name, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		sub := f.dirNode("d", "src/"+name+"/")
		if _, _, err := sub.lookup(ctx, "f"); err != syscall.ENOENT {
			t.Fatalf("lookup of a file in the new %s: %v", name, err)
		}
		writeFile(t, f, "d", "src/"+name+"/f", []byte("x"))
	}
	if n := lists.Load() - before; n != 0 {
		t.Errorf("unpacking 20 directories of one file asked for %d listings; want 0", n)
	}
	// The listings are right: every directory and file is there.
	ents, err := src.list(ctx)
	if err != nil || len(ents) != 20 {
		t.Fatalf("listing of src/ = %d entries, %v; want 20", len(ents), err)
	}
	if fn, _, err := f.dirNode("d", "src/e7/").lookup(ctx, "f"); err != nil || fn == nil {
		t.Fatalf("lookup of src/e7/f: %v", err)
	}
}

// Many lookups in a directory too big to read for one name (ls -l after
// the listing's cache time, files created one by one in a big directory)
// read its listing whole once rather than asking for each name: two
// round trips per name made ls -l of 10,000 files take 11 s.
func TestBusyBigDirectoryIsReadWhole(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	for i := range 3000 {
		c.PutFile("d", fmt.Sprintf("big/f%05d", i), []byte("x"), nil)
	}
	var calls atomic.Int64
	for _, cmd := range []string{"list_keys", "file_info"} {
		c.On(cmd, func(context.Context, int, string, string) error { calls.Add(1); return nil })
	}
	d := f.dirNode("d", "big/")
	for i := range 1000 {
		name := fmt.Sprintf("f%05d", i*3)
		if fn, _, err := d.lookup(ctx, name); err != nil || fn == nil {
			t.Fatalf("lookup of %s: %v", name, err)
		}
		if _, _, err := d.lookup(ctx, fmt.Sprintf("new%d", i)); err != syscall.ENOENT {
			t.Fatalf("lookup of a new name: %v", err)
		}
	}
	if n := calls.Load(); n > 100 {
		t.Errorf("2,000 lookups in a directory of 3,000 files asked the tracker %d times; want at most 100", n)
	}
}

// rm -rf of a tree lists each directory twice: once to read it, once to
// check on the tracker that it is empty before its marker goes. A
// directory removed here leaves its parent's cached listing in place
// (the parent was listed again after every rmdir), and a removed
// directory's changed time is not written to its marker afterwards (a
// stat and a failing metadata write each).
func TestRemovingTreeListsEachDirectoryTwice(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	top := f.dirNode("d", "")
	dirs := []string{"t/", "t/a/", "t/b/", "t/c/", "t/a/n/"}
	for _, d := range dirs {
		parent := f.dirNode("d", parentOf(d))
		name := strings.TrimSuffix(d[len(parentOf(d)):], "/")
		if _, err := parent.Mkdir(ctx, &fuse.MkdirRequest{Name: name, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			writeFile(t, f, "d", fmt.Sprintf("%sf%d", d, i), []byte("x"))
		}
	}
	if err := f.flushDirTimes(ctx); err != nil {
		t.Fatal(err)
	}
	f.dirs.Purge() // as after the listings' cache time
	count := func() map[string]int {
		m := map[string]int{}
		for _, cmd := range []string{"list_keys", "file_info", "plugin_meta_set"} {
			m[cmd] = c.Calls(cmd)
		}
		return m
	}
	before := count()
	// As rm -rf does: read a directory, look each entry up and remove
	// it, a directory once emptied.
	var rmTree func(d *dirNode)
	rmTree = func(d *dirNode) {
		ents, err := d.ReadDirAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			_, sub, err := d.lookup(ctx, e.Name)
			if err != nil {
				t.Fatalf("lookup of %s in %q: %v", e.Name, d.prefix, err)
			}
			if sub != nil {
				rmTree(sub)
			}
			if err := d.Remove(ctx, &fuse.RemoveRequest{Name: e.Name, Dir: sub != nil}); err != nil {
				t.Fatalf("remove %s in %q: %v", e.Name, d.prefix, err)
			}
		}
	}
	_, tdir, err := top.lookup(ctx, "t")
	if err != nil || tdir == nil {
		t.Fatalf("lookup of t: %v", err)
	}
	rmTree(tdir)
	if err := top.Remove(ctx, &fuse.RemoveRequest{Name: "t", Dir: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.flushDirTimes(ctx); err != nil {
		t.Fatal(err)
	}
	after := count()
	if n := after["list_keys"] - before["list_keys"]; n > 2*len(dirs)+1 {
		t.Errorf("rm -rf of %d directories made %d listings; want at most %d", len(dirs), n, 2*len(dirs)+1)
	}
	for _, cmd := range []string{"file_info", "plugin_meta_set"} {
		if n := after[cmd] - before[cmd]; n != 0 {
			t.Errorf("rm -rf of the tree made %d %s; want none (only removed directories changed)", n, cmd)
		}
	}
	if keys := c.Keys("d"); len(keys) != 0 {
		t.Errorf("keys left: %q", keys)
	}
}

// A directory's own attributes (its marker's mode, owner and mtime) come
// with its parent's listing: rm -rf, ls -l and tree walks stat every
// directory they meet, and each stat asked for file_info. A change this
// mount makes to a directory is kept in the parent's cached listing, so
// that the next lookup does not bring the old attributes back.
func TestDirectoryAttrsComeWithParentListing(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	top := f.dirNode("d", "")
	for i := range 5 {
		if _, err := top.Mkdir(ctx, &fuse.MkdirRequest{Name: fmt.Sprintf("s%d", i), Mode: 0o750}); err != nil {
			t.Fatal(err)
		}
	}
	f.attrs.Purge()
	f.dirs.Purge() // as after the caches' time
	before := c.Calls("file_info")
	if _, err := top.ReadDirAll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, d, err := top.lookup(ctx, fmt.Sprintf("s%d", i))
		if err != nil || d == nil {
			t.Fatalf("lookup of s%d: %v", i, err)
		}
		var a fuse.Attr
		if err := d.Attr(ctx, &a); err != nil || a.Mode.Perm() != 0o750 {
			t.Fatalf("s%d: mode %v, %v; want 0750", i, a.Mode, err)
		}
	}
	if n := c.Calls("file_info") - before; n != 0 {
		t.Errorf("stat of 5 listed directories asked file_info %d times; want 0", n)
	}
	// chmod of a directory, then the kernel's next lookup of it.
	_, s0, _ := top.lookup(ctx, "s0")
	if err := s0.Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMode, Mode: 0o700}, &fuse.SetattrResponse{}); err != nil {
		t.Fatal(err)
	}
	_, s0, _ = top.lookup(ctx, "s0")
	var a fuse.Attr
	if err := s0.Attr(ctx, &a); err != nil || a.Mode.Perm() != 0o700 {
		t.Errorf("s0 after chmod 0700 and a lookup: mode %v, %v", a.Mode, err)
	}
}

// fsync of a directory writes its changed time to its marker at once, as
// a local disk makes a directory's metadata durable at its fsync; the
// times of other directories wait for the next flush.
func TestDirFsyncWritesItsTime(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	top := f.dirNode("d", "")
	for _, name := range []string{"s", "o"} {
		if _, err := top.Mkdir(ctx, &fuse.MkdirRequest{Name: name, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Millisecond) // the markers' times are older than the change
	writeFile(t, f, "d", "s/new", []byte("x"))
	writeFile(t, f, "d", "o/new", []byte("x"))
	changed, ok := f.changedAt("d", "s/")
	if !ok {
		t.Fatal("no change recorded for s/")
	}
	before := c.Calls("plugin_meta_set")
	if err := f.dirNode("d", "s/").Fsync(ctx, &fuse.FsyncRequest{Dir: true}); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls("plugin_meta_set") - before; n != 1 {
		t.Errorf("fsync of s/ wrote %d directory times; want 1", n)
	}
	m, _ := c.Get("d", "s/")
	if m == nil || m.Meta["mtime"] != fmt.Sprint(changed.UnixNano()) {
		t.Errorf("s/'s marker after its fsync: %+v; want mtime %d", m, changed.UnixNano())
	}
}

// Writing a directory's changed time asks nothing first: the marker's
// cached attributes (or its parent's cached listing) tell whether a newer
// time is there already, and a marker gone answers the write itself. The
// flush used to stat every changed directory, a file_info each once the
// attributes had expired (git add: 900 of them).
func TestDirTimeFlushAsksNothingFirst(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	if _, err := f.dirNode("d", "").Mkdir(ctx, &fuse.MkdirRequest{Name: "s", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	writeFile(t, f, "d", "s/new", []byte("x"))
	changed, _ := f.changedAt("d", "s/")
	f.attrs.Purge()
	f.dirs.Purge() // as after the caches' time
	before := c.Calls("file_info")
	if err := f.flushDirTimes(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls("file_info") - before; n != 0 {
		t.Errorf("writing a directory's time asked file_info %d times; want 0", n)
	}
	if m, _ := c.Get("d", "s/"); m == nil || m.Meta["mtime"] != fmt.Sprint(changed.UnixNano()) || m.Meta["mode"] != "755" {
		t.Errorf("s/'s marker: %+v; want mtime %d and its mode kept", m, changed.UnixNano())
	}
}
