package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// The mount's rules over an in-memory cluster: no FUSE, no daemons.

func newTestFS(t *testing.T, c *memcluster.Cluster, tune func(*Config)) *FS {
	t.Helper()
	cfg := Config{Cluster: c, SpoolDir: t.TempDir(), StallTimeout: 2 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

// within fails the test when fn takes longer than d (a deadlock).
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %v", what, d)
	}
}

// writeFile creates key with data through the mount and commits it.
func writeFile(t *testing.T, f *FS, dom, key string, data []byte) *fileNode {
	t.Helper()
	ctx := context.Background()
	n, h, err := f.create(ctx, dom, key, 0o644, owner{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.write(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.commit(ctx); err != nil {
		t.Fatal(err)
	}
	h.release()
	return n
}

// rewriteFile opens n with O_TRUNC, as the kernel does for `echo > f`,
// writes data and commits it.
func rewriteFile(t *testing.T, n *fileNode, data []byte) {
	t.Helper()
	ctx := context.Background()
	h, err := n.Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenWriteOnly | fuse.OpenTruncate}, &fuse.OpenResponse{})
	if err != nil {
		t.Fatal(err)
	}
	wh := h.(*writeHandle)
	defer wh.release()
	if err := wh.write(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := wh.commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// writeChunks writes data in order, chunk bytes a request, as the kernel
// sends a sequential write.
func writeChunks(t *testing.T, h *writeHandle, data []byte, chunk int) {
	t.Helper()
	for off := 0; off < len(data); off += chunk {
		if err := h.write(context.Background(), data[off:min(len(data), off+chunk)], int64(off)); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
}

func content(t *testing.T, c *memcluster.Cluster, dom, key string) ([]byte, bool) {
	t.Helper()
	fl, ok := c.Get(dom, key)
	if !ok {
		return nil, false
	}
	return fl.Data, true
}

func lookupName(f *FS, dom, prefix, name string) error {
	_, err := f.dirNode(dom, prefix).Lookup(context.Background(), &fuse.LookupRequest{Name: name}, &fuse.LookupResponse{})
	return err
}

// Defect 1: a file unlinked while open must not come back when its
// writer commits or closes; the handle keeps working.
func TestUnlinkWhileOpenNotResurrected(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	for _, committedFirst := range []bool{false, true} {
		key := fmt.Sprintf("db-shm-%v", committedFirst)
		_, h, err := f.create(ctx, "d", key, 0o644, owner{})
		if err != nil {
			t.Fatal(err)
		}
		h.write(ctx, []byte("first"), 0)
		if committedFirst {
			if err := h.commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.unlink(ctx, "d", key); err != nil {
			t.Fatalf("unlink of an open file: %v", err)
		}
		if err := h.write(ctx, []byte("more"), 5); err != nil {
			t.Errorf("write after unlink: %v", err)
		}
		buf := make([]byte, 16)
		n, _, err := h.read(ctx, buf, 0)
		if err != nil || string(buf[:n]) != "firstmore" {
			t.Errorf("read after unlink: %q, %v", buf[:n], err)
		}
		if err := h.commit(ctx); err != nil {
			t.Errorf("close after unlink: %v", err)
		}
		h.release()
		if _, ok := c.Get("d", key); ok {
			t.Errorf("%s: unlinked while open, it came back when the writer closed", key)
		}
		if err := lookupName(f, "d", "", key); !isErrno(err, syscall.ENOENT) {
			t.Errorf("%s: lookup after unlink: %v; want ENOENT", key, err)
		}
	}
	if n := c.Temps(); n != 0 {
		t.Errorf("%d uploads left open", n)
	}
}

func isErrno(err error, want syscall.Errno) bool {
	var en fuse.Errno
	if errors.As(err, &en) {
		return syscall.Errno(en) == want
	}
	var se syscall.Errno
	return errors.As(err, &se) && se == want
}

// Defect 2: an mtime set with utimes shows at once, also after the
// directory's cached listing answered a lookup.
func TestUtimesShownAtOnce(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "dir/f", []byte("x"), metaOf(time.Unix(1000, 0), 0o644))
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	if err := lookupName(f, "d", "dir/", "f"); err != nil { // caches the listing
		t.Fatal(err)
	}
	n := f.fileNode("d", "dir/f")
	want := time.Unix(1600000000, 0)
	if err := n.setattr(ctx, nil, 0, want); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := lookupName(f, "d", "dir/", "f"); err != nil {
			t.Fatal(err)
		}
		a, err := n.attr(ctx)
		if err != nil || !a.mtime.Equal(want) {
			t.Fatalf("stat after utimes: mtime %v, %v; want %v", a.mtime, err, want)
		}
	}
	// A new file made with a given mtime (touch -d) shows it once saved.
	n2, h, _ := f.create(ctx, "d", "dir/new", 0o644, owner{})
	h.setMeta(0, want)
	h.commit(ctx)
	h.release()
	if a, _ := n2.attr(ctx); !a.mtime.Equal(want) {
		t.Errorf("touch -d of a new file: mtime %v; want %v", a.mtime, want)
	}
	// The kernel flushes before the utimes of touch, and releases the
	// handle only later: a handle with nothing to commit does not show
	// its own idea of the time.
	n3, h3, _ := f.create(ctx, "d", "dir/touched", 0o644, owner{})
	h3.commit(ctx)
	if err := n3.setattr(ctx, nil, 0, want); err != nil {
		t.Fatal(err)
	}
	if a, _ := n3.attr(ctx); !a.mtime.Equal(want) {
		t.Errorf("touch -d, flushed before its utimes: mtime %v; want %v", a.mtime, want)
	}
	h3.release()
}

// Defect 3: a name keeps its inode number through its first commit and
// every rewrite.
func TestInodeStableAcrossRewrite(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	n, h, _ := f.create(ctx, "d", "f", 0o644, owner{})
	var before fuse.Attr
	f.fillAttr(&before, n, h.attr())
	h.write(ctx, []byte("one"), 0)
	h.commit(ctx)
	h.release()
	for i := 0; i < 3; i++ {
		h, err := newWriteHandle(ctx, n, true)
		if err != nil {
			t.Fatal(err)
		}
		h.write(ctx, []byte("rewrite"), 0)
		h.commit(ctx)
		h.release()
		var a fuse.Attr
		if err := n.Attr(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if a.Inode != before.Inode {
			t.Fatalf("inode changed from %d to %d after rewrite %d", before.Inode, a.Inode, i)
		}
	}
	// A node made anew for the name (after the kernel forgot it) shows
	// the same number, and so does the listing.
	n.Forget()
	var a fuse.Attr
	f.fileNode("d", "f").Attr(ctx, &a)
	ents, _ := f.dirNode("d", "").ReadDirAll(ctx)
	if a.Inode != before.Inode || len(ents) != 1 || ents[0].Inode != before.Inode {
		t.Errorf("inode %d, listing %+v; want %d", a.Inode, ents, before.Inode)
	}
}

// Defect 4: after a failed streaming PUT, reads, out-of-order writes and
// truncates on the handle return instead of waiting forever.
func TestFailedStreamDoesNotDeadlock(t *testing.T) {
	c := memcluster.New("d")
	// No room to keep a replay copy: the failure is final.
	f := newTestFS(t, c, func(cfg *Config) { cfg.SpoolLimit = 1 })
	c.OnPut(memcluster.DiesAfter("", 8191))
	ctx := context.Background()
	_, h, _ := f.create(ctx, "d", "f", 0o644, owner{})
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		werr = h.write(ctx, bytes.Repeat([]byte("x"), 4096), int64(i)*4096)
	}
	if werr == nil {
		t.Fatal("writes into a dead node all succeeded")
	}
	within(t, 5*time.Second, "read after a failed upload", func() { h.read(ctx, make([]byte, 10), 0) })
	within(t, 5*time.Second, "write after a failed upload", func() { h.write(ctx, []byte("y"), 3) })
	within(t, 5*time.Second, "truncate after a failed upload", func() { h.truncate(ctx, 5) })
	within(t, 5*time.Second, "close after a failed upload", func() {
		if err := h.commit(ctx); err == nil {
			t.Error("close after a failed upload reported success")
		}
		h.release()
	})
}

// Defect 5: opening an existing file for writing without O_TRUNC while
// the tracker fails must fail the open, not shrink the file on close.
func TestOpenDuringTrackerErrorDoesNotShrink(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "f", bytes.Repeat([]byte("a"), 10000), nil)
	f := newTestFS(t, c, nil)
	c.On("file_info", func(ctx context.Context, n int, dom, key string) error {
		return errors.New("tracker timed out")
	})
	ctx := context.Background()
	n := f.fileNode("d", "f")
	h, err := newWriteHandle(ctx, n, false)
	if err == nil {
		h.write(ctx, []byte("b"), 10000)
		h.commit(ctx)
		h.release()
	}
	if got, _ := content(t, c, "d", "f"); len(got) != 10000 {
		t.Errorf("file is %d bytes after an append during a tracker error; want 10000", len(got))
	}
	if err == nil {
		t.Error("open for writing succeeded while the tracker failed")
	}
}

// Defect 6: a spool whose copy of the committed file failed half way
// is never committed.
func TestPartialSpoolNotCommitted(t *testing.T) {
	c := memcluster.New("d")
	orig := bytes.Repeat([]byte("a"), 100000)
	c.PutFile("d", "f", orig, nil)
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	n := f.fileNode("d", "f")
	h, err := newWriteHandle(ctx, n, false)
	if err != nil {
		t.Fatal(err)
	}
	c.On("get", func(ctx context.Context, n int, dom, url string) error { return errors.New("node down") })
	if err := h.write(ctx, []byte("b"), 10); err == nil {
		t.Error("a write needing the file's content succeeded though it could not be read")
	}
	// A later write past the part copied must not fill the rest with
	// zeros either.
	h.write(ctx, []byte("c"), int64(len(orig)-1))
	h.commit(ctx)
	h.release()
	if got, _ := content(t, c, "d", "f"); !bytes.Equal(got, orig) {
		t.Errorf("the file changed to %d bytes after a failed copy into the spool", len(got))
	}
}

// Defect 7: a storage node that stops taking bytes fails the write (or
// the close) within StallTimeout, and so does an interrupt.
func TestStalledNodeFailsWithinDeadline(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.StallTimeout = 200 * time.Millisecond; cfg.SpoolLimit = 1 })
	c.OnPut(memcluster.Stalls(""))
	ctx := context.Background()
	_, h, _ := f.create(ctx, "d", "f", 0o644, owner{})
	start := time.Now()
	var err error
	within(t, 5*time.Second, "writing to a stalled node", func() {
		for i := 0; i < 100 && err == nil; i++ {
			err = h.write(ctx, make([]byte, 65536), int64(i)*65536)
		}
		if err == nil {
			err = h.commit(ctx)
		}
	})
	if err == nil {
		t.Fatal("writing to a stalled node succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the stall was noticed after %v", d)
	}
	h.release()

	// An interrupt ends a write blocked on a stalled node at once.
	f2 := newTestFS(t, c, func(cfg *Config) { cfg.StallTimeout = time.Hour; cfg.SpoolLimit = 1 })
	_, h2, _ := f2.create(ctx, "d", "g", 0o644, owner{})
	ictx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	within(t, 5*time.Second, "an interrupted write", func() {
		for i := 0; i < 100; i++ {
			if err := h2.write(ictx, make([]byte, 65536), int64(i)*65536); err != nil {
				return
			}
		}
		t.Error("writes to a stalled node went on after the interrupt")
	})
	c.OnPut(nil)
	h2.release()
}

// A node that dies in the middle of a streamed write, with another one
// alive: the file is stored whole from the spool and close succeeds.
func TestNodeDiesMidWriteFileStoredWhole(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	c.OnPut(memcluster.DiesAfter("dev1", 100000))
	ctx := context.Background()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	_, h, _ := f.create(ctx, "d", "big", 0o644, owner{})
	writeChunks(t, h, data, 65536)
	if err := h.commit(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "big"); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes, not the file written", len(got))
	}
	if n := c.Temps(); n != 0 {
		t.Errorf("%d uploads left open", n)
	}
}

// Defect 8: a rename of a file whose commit is in flight waits for it:
// the file ends under the new name only.
func TestRenameDuringCommit(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	_, h, _ := f.create(ctx, "d", "a", 0o644, owner{})
	h.write(ctx, []byte("data"), 0)
	release := make(chan struct{})
	entered := make(chan struct{})
	c.On("create_close", func(ctx context.Context, n int, dom, key string) error {
		if n == 1 {
			close(entered)
			<-release
		}
		return nil
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.commit(ctx) }()
	<-entered
	var rerr error
	go func() { defer wg.Done(); rerr = f.renameFile(ctx, "d", "a", "b") }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	h.release()
	if rerr != nil {
		t.Fatalf("rename: %v", rerr)
	}
	if keys := c.Keys("d"); len(keys) != 1 || keys[0] != "b" {
		t.Errorf("keys after rename during commit: %v; want [b]", keys)
	}
	if err := lookupName(f, "d", "", "a"); !isErrno(err, syscall.ENOENT) {
		t.Errorf("lookup of the old name: %v", err)
	}
	if err := lookupName(f, "d", "", "b"); err != nil {
		t.Errorf("lookup of the new name: %v", err)
	}
}

// Defect 9: a commit whose create_close failed is retried with the
// bytes (from the spool), never with an empty body; without a spool the
// error stays with the handle.
func TestRetriedCommitResendsBytes(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	c.On("create_close", memcluster.FailOnce(context.DeadlineExceeded))
	data := bytes.Repeat([]byte("z"), 12804)
	_, h, _ := f.create(ctx, "d", "f", 0o644, owner{})
	h.write(ctx, data, 0)
	if err := h.commit(ctx); err != nil {
		t.Errorf("commit with a spool after a create_close timeout: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "f"); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes; want %d", len(got), len(data))
	}

	// No spool (past its limit): the error is kept and reported again;
	// nothing empty is stored.
	c2 := memcluster.New("d")
	f2 := newTestFS(t, c2, func(cfg *Config) { cfg.SpoolLimit = 1 })
	c2.On("create_close", memcluster.FailOnce(context.DeadlineExceeded))
	_, h2, _ := f2.create(ctx, "d", "f", 0o644, owner{})
	h2.write(ctx, data, 0)
	if err := h2.commit(ctx); err == nil {
		t.Error("a failed commit reported success")
	}
	if err := h2.commit(ctx); err == nil {
		t.Error("the second flush after a failed commit reported success")
	}
	h2.release()
	if got, ok := content(t, c2, "d", "f"); ok {
		t.Errorf("a file of %d bytes was stored after the commit failed", len(got))
	}
}

// Defect 10: new directory + new file + lookup, under load, always finds
// the file (a listing fill that started before the commit must not be
// cached).
func TestNewDirNewFileLookupRace(t *testing.T) {
	c := memcluster.New("d")
	// Listings answer late: one computed before a commit can arrive
	// after it.
	c.After("list_keys", func(ctx context.Context, n int, dom, key string) error {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		return nil
	})
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				dir := fmt.Sprintf("objects/%02x%d/", g, i)
				if _, err := f.dirNode("d", "objects/").Mkdir(ctx, &fuse.MkdirRequest{Name: dir[8 : len(dir)-1]}); err != nil {
					errs <- err
					return
				}
				// A concurrent lookup starts a listing fill of the new
				// directory while the file is being written.
				go lookupName(f, "d", dir, "other")
				writeFile(t, f, "d", dir+"obj", []byte("x"))
				if err := lookupName(f, "d", dir, "obj"); err != nil {
					errs <- fmt.Errorf("lookup of %sobj right after writing it: %w", dir, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Defect 12: a directory whose entries were all removed through this
// mount is empty to it at once, even when the tracker's listings lag.
func TestRmdirAfterRemovingEverything(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		c.PutFile("d", fmt.Sprintf(".git/f%d", i), []byte("x"), nil)
	}
	c.FreezeListings() // a lagging replica
	d := f.dirNode("d", ".git/")
	ents, err := d.ReadDirAll(ctx)
	if err != nil || len(ents) != 5 {
		t.Fatalf("listing: %v %v", ents, err)
	}
	for _, e := range ents {
		if err := d.Remove(ctx, &fuse.RemoveRequest{Name: e.Name}); err != nil {
			t.Fatalf("rm %s: %v", e.Name, err)
		}
	}
	if ents, _ := d.ReadDirAll(ctx); len(ents) != 0 {
		t.Errorf("removed names still listed: %v", ents)
	}
	f.dirs.Purge() // the cached listing expired: read anew, from the lagging replica
	if ents, _ := d.ReadDirAll(ctx); len(ents) != 0 {
		t.Errorf("removed names listed again from a lagging tracker: %v", ents)
	}
	if err := f.dirNode("d", "").Remove(ctx, &fuse.RemoveRequest{Name: ".git", Dir: true}); err != nil {
		t.Errorf("rmdir of a directory emptied through this mount: %v", err)
	}
}

// Defect 13 (a tracker without the metadata extension, as 2.73): mtimes
// set with utimes are kept while mounted, renames over existing files
// work and leave nothing visible behind.
func TestPlainTrackerKeepsMtimesAndRenamesOver(t *testing.T) {
	c := memcluster.New("d")
	c.Plain = true
	f := newTestFS(t, c, func(cfg *Config) { cfg.CacheTTL = 20 * time.Millisecond })
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		writeFile(t, f, "d", fmt.Sprintf("f%d", i), []byte("old"))
	}
	want := time.Unix(1500000000, 0)
	for i := 0; i < 3; i++ {
		// rsync: a temporary file, its mtime, a rename over the target.
		tmp := fmt.Sprintf(".f%d.XXXX", i)
		writeFile(t, f, "d", tmp, []byte("new"))
		if err := f.fileNode("d", tmp).setattr(ctx, nil, 0, want); err != nil {
			t.Fatal(err)
		}
		if err := f.renameFile(ctx, "d", tmp, fmt.Sprintf("f%d", i)); err != nil {
			t.Fatalf("rename over f%d: %v", i, err)
		}
	}
	time.Sleep(50 * time.Millisecond) // past the cache's TTL
	ents, err := f.dirNode("d", "").ReadDirAll(ctx)
	if err != nil || len(ents) != 3 {
		t.Errorf("listing after renames over files: %+v %v; want f0 f1 f2", ents, err)
	}
	for i := 0; i < 3; i++ {
		a, err := f.fileNode("d", fmt.Sprintf("f%d", i)).attr(ctx)
		if err != nil || !a.mtime.Equal(want) {
			t.Errorf("f%d: mtime %v, %v; want %v", i, a.mtime, err, want)
		}
	}
	if keys := c.Keys("d"); len(keys) != 3 {
		t.Errorf("keys in the cluster: %v", keys)
	}
}

// A renamed directory leaves its old name at once, in the parent's
// cached listing too.
func TestRenameDirLeavesOldName(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "tree/a/b/deep.txt", []byte("x"), nil)
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	if err := lookupName(f, "d", "tree/", "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.renameDir(ctx, "d", "tree/a/", "tree/a2/"); err != nil {
		t.Fatal(err)
	}
	if err := lookupName(f, "d", "tree/", "a"); !isErrno(err, syscall.ENOENT) {
		t.Errorf("lookup of the old name: %v; want ENOENT", err)
	}
	if err := lookupName(f, "d", "tree/a2/b/", "deep.txt"); err != nil {
		t.Errorf("lookup below the new name: %v", err)
	}
}

// A kernel's session through the FUSE-facing methods: create, write,
// flush, release, look up, read out of order, rename, chmod, fsync,
// xattrs, statfs, and the operations MogileFS cannot do.
func TestKernelSession(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	root, _ := f.Root()
	dn, err := root.(*dirNode).Lookup(ctx, &fuse.LookupRequest{Name: "d"}, &fuse.LookupResponse{})
	if err != nil {
		t.Fatal(err)
	}
	d := dn.(*dirNode)
	if _, err := root.(*dirNode).Lookup(ctx, &fuse.LookupRequest{Name: "nodomain"}, &fuse.LookupResponse{}); !isErrno(err, syscall.ENOENT) {
		t.Errorf("lookup of a missing domain: %v", err)
	}
	var da fuse.Attr
	if err := d.Attr(ctx, &da); err != nil || !da.Mode.IsDir() {
		t.Errorf("domain attr %v %v", da, err)
	}
	node, handle, err := d.Create(ctx, &fuse.CreateRequest{Name: "f", Mode: 0o640}, &fuse.CreateResponse{})
	if err != nil {
		t.Fatal(err)
	}
	h := handle.(*writeHandle)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for off := 0; off < len(data); off += 128 << 10 {
		var wr fuse.WriteResponse
		if err := h.Write(ctx, &fuse.WriteRequest{Data: data[off : off+128<<10], Offset: int64(off)}, &wr); err != nil || wr.Size != 128<<10 {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	// Listed while being written.
	if ents, _ := d.ReadDirAll(ctx); len(ents) != 1 || ents[0].Name != "f" {
		t.Errorf("listing while writing: %+v", ents)
	}
	rr := &fuse.ReadResponse{Data: make([]byte, 0, 10)}
	if err := h.Read(ctx, &fuse.ReadRequest{Offset: 5, Size: 10}, rr); err != nil || !bytes.Equal(rr.Data, data[5:15]) {
		t.Errorf("read on the writing handle: %v %v", rr.Data, err)
	}
	if err := h.Flush(ctx, &fuse.FlushRequest{}); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx, &fuse.ReleaseRequest{})
	fn := node.(*fileNode)
	if err := fn.Fsync(ctx, &fuse.FsyncRequest{}); err != nil {
		t.Errorf("fsync: %v", err)
	}
	var a fuse.Attr
	if err := fn.Attr(ctx, &a); err != nil || a.Size != uint64(len(data)) || a.Mode.Perm() != 0o640 {
		t.Errorf("attr after commit: %+v %v", a, err)
	}

	// Read it back with requests out of order, as kernel read-ahead sends them.
	var or fuse.OpenResponse
	rh, err := fn.Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenReadOnly}, &or)
	if err != nil {
		t.Fatal(err)
	}
	r := rh.(*readHandle)
	got := make([]byte, len(data))
	chunk := 128 << 10
	order := []int{0, 2, 1, 3, 5, 4}
	for off := 6 * chunk; off < len(data); off += chunk {
		order = append(order, off/chunk)
	}
	for _, i := range order {
		resp := &fuse.ReadResponse{Data: make([]byte, 0, chunk)}
		if err := r.Read(ctx, &fuse.ReadRequest{Offset: int64(i * chunk), Size: chunk}, resp); err != nil {
			t.Fatalf("read chunk %d: %v", i, err)
		}
		copy(got[i*chunk:], resp.Data)
	}
	// A jump back, and past the end.
	resp := &fuse.ReadResponse{Data: make([]byte, 0, 100)}
	r.Read(ctx, &fuse.ReadRequest{Offset: 10, Size: 100}, resp)
	if !bytes.Equal(resp.Data, data[10:110]) {
		t.Error("a read behind the stream gave other bytes")
	}
	resp = &fuse.ReadResponse{Data: make([]byte, 0, 100)}
	if r.Read(ctx, &fuse.ReadRequest{Offset: int64(len(data) + 5), Size: 100}, resp); len(resp.Data) != 0 {
		t.Error("a read past the end returned bytes")
	}
	r.Release(ctx, &fuse.ReleaseRequest{})
	if !bytes.Equal(got, data) {
		t.Error("out-of-order reads gave other bytes")
	}
	// A second open of the unchanged version keeps the kernel's pages.
	var or2 fuse.OpenResponse
	rh2, _ := fn.Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenReadOnly}, &or2)
	rh2.(*readHandle).Release(ctx, nil)
	if or2.Flags&fuse.OpenKeepCache == 0 {
		t.Error("the second open of an unchanged file dropped the page cache")
	}

	// chmod, truncate by path, xattrs.
	var sr fuse.SetattrResponse
	if err := fn.Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMode | fuse.SetattrSize, Mode: 0o600, Size: 10}, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Attr.Size != 10 || sr.Attr.Mode.Perm() != 0o600 {
		t.Errorf("after chmod and truncate: %+v", sr.Attr)
	}
	if got, _ := content(t, c, "d", "f"); !bytes.Equal(got, data[:10]) {
		t.Errorf("truncate stored %d bytes", len(got))
	}
	var xr fuse.GetxattrResponse
	if err := fn.Getxattr(ctx, &fuse.GetxattrRequest{Name: xattrDevcount}, &xr); err != nil || string(xr.Xattr) != "2" {
		t.Errorf("devcount xattr %q %v", xr.Xattr, err)
	}
	if err := fn.Setxattr(ctx, &fuse.SetxattrRequest{Name: xattrClass, Xattr: []byte("thumbs")}); err != nil {
		t.Errorf("set class: %v", err)
	}
	if err := fn.Setxattr(ctx, &fuse.SetxattrRequest{Name: "trusted.other"}); !isErrno(err, syscall.ENOTSUP) {
		t.Errorf("other xattr: %v", err)
	}
	var lr fuse.ListxattrResponse
	fn.Listxattr(ctx, &fuse.ListxattrRequest{}, &lr)
	if bytes.Contains(lr.Xattr, []byte(xattrClass)) {
		t.Errorf("listxattr lists the MogileFS attributes (copying tools would copy or remove them): %q", lr.Xattr)
	}

	// Rename over an existing file, into a subdirectory.
	if _, err := d.Mkdir(ctx, &fuse.MkdirRequest{Name: "sub"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "d", "sub/g", []byte("old"))
	sub := f.dirNode("d", "sub/")
	if err := d.Rename(ctx, &fuse.RenameRequest{OldName: "f", NewName: "g"}, sub); err != nil {
		t.Fatalf("rename over: %v", err)
	}
	if got, _ := content(t, c, "d", "sub/g"); !bytes.Equal(got, data[:10]) {
		t.Errorf("sub/g after rename over it: %q", got)
	}
	if err := d.Remove(ctx, &fuse.RemoveRequest{Name: "sub", Dir: true}); !isErrno(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty directory: %v", err)
	}
	if err := d.Rename(ctx, &fuse.RenameRequest{OldName: "sub", NewName: "sub2"}, d); err != nil {
		t.Errorf("directory rename: %v", err)
	}
	if keys := c.Keys("d"); len(keys) != 2 || keys[0] != "sub2/" || keys[1] != "sub2/g" {
		t.Errorf("keys after renames: %v", keys)
	}
	// What MogileFS cannot do, and statfs.
	if _, err := d.Link(ctx, &fuse.LinkRequest{NewName: "h"}, fn); !isErrno(err, syscall.EPERM) {
		t.Errorf("link: %v", err)
	}
	if _, err := d.Mknod(ctx, &fuse.MknodRequest{Name: "n"}); !isErrno(err, syscall.EPERM) {
		t.Errorf("mknod: %v", err)
	}
	if _, _, err := root.(*dirNode).Create(ctx, &fuse.CreateRequest{Name: "x"}, &fuse.CreateResponse{}); !isErrno(err, syscall.EPERM) {
		t.Errorf("create at the top: %v", err)
	}
	var st fuse.StatfsResponse
	if err := f.Statfs(ctx, &fuse.StatfsRequest{}, &st); err != nil || st.Blocks != 1024*256 || st.Bfree != 768*256 {
		t.Errorf("statfs %+v %v", st, err)
	}
	if c.Temps() != 0 {
		t.Errorf("%d uploads left open", c.Temps())
	}
}

// A read-only mount refuses every change with EROFS.
func TestReadOnlyMount(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "f", []byte("x"), nil)
	f := newTestFS(t, c, func(cfg *Config) { cfg.ReadOnly = true })
	ctx := context.Background()
	d := f.dirNode("d", "")
	if _, _, err := d.Create(ctx, &fuse.CreateRequest{Name: "n"}, &fuse.CreateResponse{}); !isErrno(err, syscall.EROFS) {
		t.Errorf("create: %v", err)
	}
	if _, err := f.fileNode("d", "f").Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenWriteOnly}, &fuse.OpenResponse{}); !isErrno(err, syscall.EROFS) {
		t.Errorf("open for writing: %v", err)
	}
	if err := d.Remove(ctx, &fuse.RemoveRequest{Name: "f"}); !isErrno(err, syscall.EROFS) {
		t.Errorf("unlink: %v", err)
	}
}

// An upload from the spool to a node that stops taking bytes moves on
// to the next destination after StallTimeout, under a new fid: the
// failed PUT (a stopped node, a cut-off link) can still land later, and
// with its fid committed elsewhere nothing would ever delete those bytes.
// The failed fid is abandoned (the tracker deletes its copy; a DELETE ends
// a PUT still in progress on the node). The chaos test found such
// orphaned copies. A tracker of ours takes a fid whose other
// destinations failed when it is told which (it removes their bytes
// before it commits, and the nodes refuse the writes sent before that).
func TestSpoolUploadMovesPastStalledNode(t *testing.T) {
	for _, plain := range []bool{true, false} {
		t.Run(map[bool]string{true: "original", false: "ours"}[plain], func(t *testing.T) {
			testSpoolUploadMovesPastStalledNode(t, plain)
		})
	}
}

func testSpoolUploadMovesPastStalledNode(t *testing.T, plain bool) {
	c := memcluster.New("d")
	c.Plain = plain
	c.PutFile("d", "f", []byte("0123456789"), nil)
	f := newTestFS(t, c, func(cfg *Config) { cfg.StallTimeout = 200 * time.Millisecond })
	var mu sync.Mutex
	failed := map[string]bool{} // fid paths of the PUTs that failed
	stall := memcluster.Stalls("dev1")
	c.OnPut(func(ctx context.Context, url string, got int64) error {
		err := stall(ctx, url, got)
		if err != nil {
			mu.Lock()
			failed[path.Base(url)] = true
			mu.Unlock()
		}
		return err
	})
	ctx := context.Background()
	h, err := newWriteHandle(ctx, f.fileNode("d", "f"), false)
	if err != nil {
		t.Fatal(err)
	}
	h.write(ctx, []byte("AB"), 3) // an overwrite in place: spooled
	within(t, 5*time.Second, "saving past a stalled node", func() {
		if err := h.commit(ctx); err != nil {
			t.Errorf("commit: %v", err)
		}
	})
	h.release()
	if got, _ := content(t, c, "d", "f"); string(got) != "012AB56789" {
		t.Errorf("stored %q", got)
	}
	file, _ := c.Get("d", "f")
	mu.Lock()
	defer mu.Unlock()
	if len(failed) == 0 {
		t.Fatal("no PUT went to the stalled node: the test proves nothing")
	}
	if file != nil && failed[fmt.Sprintf("%010d.fid", file.FID)] {
		told := false
		for _, p := range file.Failed {
			told = told || path.Base(p) == fmt.Sprintf("%010d.fid", file.FID)
		}
		if !told {
			t.Errorf("fid %d was committed after its PUT to another destination failed, and the tracker was not told", file.FID)
		}
	}
	if n := c.Temps(); n != 0 {
		t.Errorf("%d uploads neither committed nor abandoned", n)
	}
}

// A stream started after ftruncate(0) on a handle opened without O_TRUNC
// keeps its replay copy: a node dying mid-write costs nothing either.
func TestStreamAfterTruncateKeepsReplayCopy(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "f", []byte("old content"), nil)
	f := newTestFS(t, c, nil)
	c.OnPut(memcluster.DiesAfter("dev1", 100000))
	ctx := context.Background()
	h, err := newWriteHandle(ctx, f.fileNode("d", "f"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.truncate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
	writeChunks(t, h, data, 32768)
	if err := h.commit(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "f"); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes; want %d", len(got), len(data))
	}
}

// A file created here and not yet committed reads as empty from another
// open (close-to-open), not as an error.
func TestReadOfFileBeingWritten(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	n, h, _ := f.create(ctx, "d", "f", 0o644, owner{})
	h.write(ctx, []byte("not yet"), 0)
	r, _, err := n.openRead(ctx)
	if err != nil {
		t.Fatalf("open for reading while being written: %v", err)
	}
	resp := &fuse.ReadResponse{Data: make([]byte, 0, 10)}
	if err := r.Read(ctx, &fuse.ReadRequest{Size: 10}, resp); err != nil || len(resp.Data) != 0 {
		t.Errorf("read: %q, %v; want the empty file", resp.Data, err)
	}
	r.release()
	h.commit(ctx)
	h.release()
}

// A tracker that stops answering: a lookup ends with its request (an
// interrupt or timeout) instead of hanging; a read of a file whose first
// copy's node is down is served by the other.
func TestStalledTrackerAndDeadNode(t *testing.T) {
	c := memcluster.New("d")
	c.PutFile("d", "f", []byte("payload"), nil)
	f := newTestFS(t, c, nil)
	release := make(chan struct{})
	defer close(release)
	c.On("list_keys", memcluster.Stall(release))
	c.On("file_info", memcluster.Stall(release))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	within(t, 5*time.Second, "a lookup on a stalled tracker", func() {
		_, err := f.dirNode("d", "").Lookup(ctx, &fuse.LookupRequest{Name: "f"}, &fuse.LookupResponse{})
		if !isErrno(err, syscall.ETIMEDOUT) {
			t.Errorf("lookup with a deadline on a stalled tracker: %v; want ETIMEDOUT", err)
		}
	})
	c.On("list_keys", nil)
	c.On("file_info", nil)
	f2 := newTestFS(t, c, nil)
	c.SetDown("dev1", true)
	r, _, err := f2.fileNode("d", "f").openRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp := &fuse.ReadResponse{Data: make([]byte, 0, 16)}
	if err := r.Read(context.Background(), &fuse.ReadRequest{Size: 16}, resp); err != nil || string(resp.Data) != "payload" {
		t.Errorf("read with the first copy's node down: %q, %v", resp.Data, err)
	}
	r.release()
}

// A new file whose save failed is gone at once, not only when the kernel
// releases the handle later (after close() returned): a program reading
// the name right after the failed close used to find an empty file that
// the cluster never had (the chaos test's mount client found it).
func TestFailedFirstSaveLeavesNoEmptyFile(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	c.On("create_close", func(ctx context.Context, n int, dom, key string) error {
		return errors.New("tracker lost its database")
	})
	_, h, err := f.create(ctx, "d", "new", 0o644, owner{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.write(ctx, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.commit(ctx); err == nil {
		t.Fatal("the commit succeeded")
	}
	// close() has returned the error; the kernel has not released yet.
	if err := lookupName(f, "d", "", "new"); !isErrno(err, syscall.ENOENT) {
		t.Errorf("lookup after the failed save, before release: %v; want ENOENT", err)
	}
	ents, _ := f.dirNode("d", "").ReadDirAll(ctx)
	if len(ents) != 0 {
		t.Errorf("listing after the failed save: %v", ents)
	}
	h.release()
}

// A rewrite whose save failed shows the version the cluster still holds,
// at once: the handle's lost changes (an O_TRUNC'd, empty file) are not
// what stat reports between the failed close() and the kernel's release
// of the handle (the chaos test's mount client read 0 bytes there).
func TestFailedRewriteShowsClusterVersion(t *testing.T) {
	c := memcluster.New("d")
	old := []byte("the version in the cluster")
	c.PutFile("d", "f", old, nil)
	f := newTestFS(t, c, nil)
	told := make(chan fs.Node, 4)
	f.kernel = fakeKernel{told}
	ctx := context.Background()
	n := f.fileNode("d", "f")
	c.On("create_close", func(ctx context.Context, n int, dom, key string) error {
		return errors.New("tracker lost its database")
	})
	for _, data := range [][]byte{nil, []byte("new")} {
		h, err := n.Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenWriteOnly | fuse.OpenTruncate}, &fuse.OpenResponse{})
		if err != nil {
			t.Fatal(err)
		}
		wh := h.(*writeHandle)
		if data != nil {
			if err := wh.write(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := wh.commit(ctx); err == nil {
			t.Fatal("the commit succeeded")
		}
		// The kernel may have cached the handle's view (cat's fstat of its
		// output shows the empty file): it is told to ask again.
		select {
		case got := <-told:
			if got != fs.Node(n) {
				t.Errorf("the kernel was told to forget %v, not the file", got)
			}
		case <-time.After(5 * time.Second):
			t.Error("the kernel was not told to forget the failed handle's view")
		}
		// close() has returned the error; the kernel has not released yet.
		a, err := n.attr(ctx)
		if err != nil || a.size != int64(len(old)) {
			t.Errorf("stat after a failed rewrite of %d bytes, before release: size %d, %v; want %d", len(data), a.size, err, len(old))
		}
		r, _, err := n.openRead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp := &fuse.ReadResponse{Data: make([]byte, 0, 64)}
		if err := r.Read(ctx, &fuse.ReadRequest{Size: 64}, resp); err != nil || !bytes.Equal(resp.Data, old) {
			t.Errorf("read after the failed rewrite: %q, %v; want %q", resp.Data, err, old)
		}
		r.release()
		wh.release()
	}
}

// fakeKernel records the nodes the kernel is told to forget.
type fakeKernel struct{ told chan fs.Node }

func (k fakeKernel) InvalidateNodeAttr(n fs.Node) error { k.told <- n; return nil }
func (k fakeKernel) InvalidateNodeData(fs.Node) error   { return nil }

// The first write of a rewrite, which opens the upload, while the
// tracker fails: the write is kept in the spool and saved at close once
// the tracker answers; if it still fails then, close() says so and the
// cluster's version stays. An empty version is never committed in place
// of the program's bytes (the chaos test's mount client read 0 bytes
// after `cat src > f` failed: the write's error was returned, then close
// committed the O_TRUNC'd, empty file).
func TestRewriteWhileTrackerFails(t *testing.T) {
	for _, back := range []bool{true, false} {
		c := memcluster.New("d")
		old := []byte("the version in the cluster")
		c.PutFile("d", "f", old, nil)
		f := newTestFS(t, c, nil)
		ctx := context.Background()
		n := f.fileNode("d", "f")
		down := func(ctx context.Context, n int, dom, key string) error { return errors.New("tracker down") }
		c.On("create_open", down)
		h, err := n.Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenWriteOnly | fuse.OpenTruncate}, &fuse.OpenResponse{})
		if err != nil {
			t.Fatal(err)
		}
		wh := h.(*writeHandle)
		data := []byte("the program's new bytes")
		if err := wh.write(ctx, data, 0); err != nil {
			t.Errorf("write while the tracker fails to open an upload: %v; want it kept for close", err)
		}
		if back {
			c.On("create_open", nil)
		}
		err = wh.commit(ctx)
		wh.release()
		got, _ := content(t, c, "d", "f")
		switch {
		case back && (err != nil || !bytes.Equal(got, data)):
			t.Errorf("close once the tracker is back: %v; the cluster holds %q", err, got)
		case !back && err == nil:
			t.Errorf("close while the tracker still fails succeeded; the cluster holds %q", got)
		case !back && !bytes.Equal(got, old):
			t.Errorf("after a failed close the cluster holds %q; want the old version", got)
		}
	}
}

// A write refused (here: no spool room for an out-of-order write) makes
// the handle failed: close() reports it and saves nothing, rather than a
// version with a hole where the refused bytes were.
func TestRefusedWriteSavesNothing(t *testing.T) {
	c := memcluster.New("d")
	old := []byte("the version in the cluster")
	c.PutFile("d", "f", old, nil)
	f := newTestFS(t, c, func(cfg *Config) { cfg.SpoolLimit = 1 })
	ctx := context.Background()
	h, err := f.fileNode("d", "f").Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenWriteOnly | fuse.OpenTruncate}, &fuse.OpenResponse{})
	if err != nil {
		t.Fatal(err)
	}
	wh := h.(*writeHandle)
	if err := wh.write(ctx, []byte("tail"), 100); err == nil {
		t.Fatal("a write past the spool limit succeeded")
	}
	if err := wh.commit(ctx); err == nil {
		t.Error("close after a refused write succeeded")
	}
	wh.release()
	if got, _ := content(t, c, "d", "f"); !bytes.Equal(got, old) {
		t.Errorf("after a refused write the cluster holds %q; want the old version", got)
	}
}

// A new file whose write was refused is gone at once, as one whose save
// failed: between the failed close() and the kernel's release of the
// handle, a reader used to find an empty file the cluster never had.
func TestRefusedWriteOfNewFileLeavesNoEmptyFile(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.SpoolLimit = 1 })
	ctx := context.Background()
	n, h, err := f.create(ctx, "d", "new", 0o644, owner{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.write(ctx, []byte("tail"), 100); err == nil {
		t.Fatal("a write past the spool limit succeeded")
	}
	if err := h.commit(ctx); err == nil {
		t.Error("close after a refused write succeeded")
	}
	if err := lookupName(f, "d", "", "new"); !isErrno(err, syscall.ENOENT) {
		t.Errorf("lookup after the refused write, before release: %v; want ENOENT", err)
	}
	if _, _, err := n.openRead(ctx); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("open for reading after the refused write, before release: %v; want ENOENT", err)
	}
	h.release()
}

// A small new file is kept in memory until close and then written to
// all its copies at once where the tracker takes them so (ours): no
// spool file, no stream, no replication to wait for. On the original's
// tracker it goes to one node, which the tracker replicates. A file
// growing past SmallFileMax streams as it is written, from the bytes
// held so far on.
func TestSmallFileWrittenToEveryCopy(t *testing.T) {
	for _, plain := range []bool{false, true} {
		c := memcluster.New("d")
		c.Plain = plain
		spoolDir := t.TempDir()
		f := newTestFS(t, c, func(cfg *Config) { cfg.SpoolDir = spoolDir; cfg.SmallFileMax = 8192 })
		ctx := context.Background()
		var puts atomic.Int64
		c.On("put", func(context.Context, int, string, string) error { puts.Add(1); return nil })

		small := bytes.Repeat([]byte("s"), 5000)
		_, h, err := f.create(ctx, "d", "small", 0o644, owner{})
		if err != nil {
			t.Fatal(err)
		}
		h.write(ctx, small[:3000], 0)
		h.write(ctx, small[3000:], 3000)
		if n := puts.Load(); n != 0 {
			t.Errorf("plain=%v: %d PUTs before close; want none (the file is held)", plain, n)
		}
		if ents, _ := os.ReadDir(spoolDir); len(ents) != 0 || f.memUsed.Load() < 5000 {
			t.Errorf("plain=%v: a small file took %d spool files and %d bytes of memory", plain, len(ents), f.memUsed.Load())
		}
		if err := h.commit(ctx); err != nil {
			t.Fatal(err)
		}
		h.release()
		if f.memUsed.Load() != 0 {
			t.Errorf("plain=%v: %d bytes of memory held after release", plain, f.memUsed.Load())
		}
		file, _ := c.Get("d", "small")
		want := 2
		if plain {
			want = 1
		}
		if got, _ := content(t, c, "d", "small"); !bytes.Equal(got, small) || file.Written != want {
			t.Errorf("plain=%v: stored %d bytes, %d copies written by the mount; want %d, %d", plain, len(got), file.Written, len(small), want)
		}

		// Past SmallFileMax: streamed, held bytes first.
		big := make([]byte, 20000)
		for i := range big {
			big[i] = byte(i)
		}
		_, h, _ = f.create(ctx, "d", "big", 0o644, owner{})
		for off := 0; off < len(big); off += 4096 {
			h.write(ctx, big[off:min(off+4096, len(big))], int64(off))
		}
		if h.st == nil {
			t.Errorf("plain=%v: a file past SmallFileMax is not streamed", plain)
		}
		if err := h.commit(ctx); err != nil {
			t.Fatal(err)
		}
		h.release()
		if got, _ := content(t, c, "d", "big"); !bytes.Equal(got, big) {
			t.Errorf("plain=%v: streamed file: stored %d bytes, wrong", plain, len(got))
		}
	}
}

// rsync writes each file under a temporary name, opens it again to read
// (its attributes), and renames it into place; git writes objects the
// same way. The mount knows by then what the names are and which version
// the file is: neither the rename nor the open asks the tracker.
func TestWriteThenRenameAsksNothing(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	var asked sync.Map
	for _, cmd := range []string{"list_keys", "get_paths", "file_info"} {
		c.On(cmd, func(ctx context.Context, n int, dom, key string) error { asked.Store(cmd, n); return nil })
	}
	sn, err := f.dirNode("d", "").Mkdir(ctx, &fuse.MkdirRequest{Name: "sub", Mode: os.ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	sub := sn.(*dirNode)
	for i := range 3 {
		tmp, name := fmt.Sprintf(".f%d.XXXX", i), fmt.Sprintf("f%d", i)
		if _, err := sub.Lookup(ctx, &fuse.LookupRequest{Name: name}, &fuse.LookupResponse{}); !isErrno(err, syscall.ENOENT) {
			t.Fatalf("lookup of %s: %v", name, err)
		}
		n, h, err := sub.Create(ctx, &fuse.CreateRequest{Name: tmp, Mode: 0o600, Flags: fuse.OpenReadWrite | fuse.OpenCreate | fuse.OpenExclusive}, &fuse.CreateResponse{})
		if err != nil {
			t.Fatal(err)
		}
		wh := h.(*writeHandle)
		wh.write(ctx, []byte("content"), 0)
		if err := wh.commit(ctx); err != nil {
			t.Fatal(err)
		}
		wh.release()
		var sr fuse.SetattrResponse
		if err := n.(*fileNode).Setattr(ctx, &fuse.SetattrRequest{Valid: fuse.SetattrMtime, Mtime: time.Unix(1500000000, 0)}, &sr); err != nil {
			t.Fatal(err)
		}
		rh, err := n.(*fileNode).Open(ctx, &fuse.OpenRequest{Flags: fuse.OpenReadOnly}, &fuse.OpenResponse{})
		if err != nil {
			t.Fatal(err)
		}
		rh.(*readHandle).release()
		if err := sub.Rename(ctx, &fuse.RenameRequest{OldName: tmp, NewName: name}, sub); err != nil {
			t.Fatal(err)
		}
	}
	asked.Range(func(k, v any) bool {
		t.Errorf("%s asked %d times", k, v)
		return true
	})
	if got, _ := content(t, c, "d", "sub/f2"); string(got) != "content" {
		t.Errorf("sub/f2 = %q", got)
	}
}

// A new file's create_open is sent as the file is created, so that its
// close waits only for the PUTs and create_close. A file unlinked before
// its close leaves no upload open; a create_open that failed at create
// is sent again at close.
func TestCreateReservesItsUpload(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	var opens atomic.Int64
	counting := func(context.Context, int, string, string) error { opens.Add(1); return nil }
	c.On("create_open", counting)
	create := func(key string) *writeHandle {
		t.Helper()
		_, h, err := f.create(ctx, "d", key, 0o644, owner{})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	h := create("a")
	waitFor("the create_open sent at create", func() bool { return opens.Load() == 1 })
	c.On("create_open", func(context.Context, int, string, string) error { return errors.New("asked again at close") })
	h.write(ctx, []byte("hello"), 0)
	if err := h.commit(ctx); err != nil {
		t.Fatalf("close with the upload opened at create: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "a"); string(got) != "hello" {
		t.Errorf("the cluster holds %q; want hello", got)
	}

	c.On("create_open", counting)
	h = create("b")
	h.write(ctx, []byte("gone before close"), 0)
	if err := f.unlink(ctx, "d", "b"); err != nil {
		t.Fatal(err)
	}
	h.commit(ctx)
	h.release()
	waitFor("the unused upload abandoned", func() bool { return opens.Load() == 2 && c.OpenUploads() == 0 })

	var failed atomic.Bool
	c.On("create_open", func(context.Context, int, string, string) error {
		failed.Store(true)
		return errors.New("tracker down")
	})
	h = create("c")
	waitFor("the create_open at create to fail", failed.Load)
	c.On("create_open", nil)
	h.write(ctx, []byte("saved all the same"), 0)
	if err := h.commit(ctx); err != nil {
		t.Fatalf("close after the create_open at create failed: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "c"); string(got) != "saved all the same" {
		t.Errorf("the cluster holds %q", got)
	}
	if n := c.OpenUploads(); n != 0 {
		t.Errorf("%d uploads left open", n)
	}

	// A file that outgrows SmallFileMax streams on the upload opened at
	// create: no second create_open, none left open.
	c.On("create_open", counting)
	opens.Store(0)
	h = create("big")
	waitFor("the create_open sent at create", func() bool { return opens.Load() == 1 })
	big := bytes.Repeat([]byte("b"), int(DefaultSmallFileMax)+4096)
	if err := h.write(ctx, big, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.commit(ctx); err != nil {
		t.Fatalf("close of a streamed file: %v", err)
	}
	h.release()
	if got, _ := content(t, c, "d", "big"); !bytes.Equal(got, big) {
		t.Errorf("the cluster holds %d bytes; want %d", len(got), len(big))
	}
	if n, open := opens.Load(), c.OpenUploads(); n != 1 || open != 0 {
		t.Errorf("a streamed file took %d create_opens and left %d uploads open; want 1 and 0", n, open)
	}
}

// fsync of a directory (which answered EIO) and of a file make the
// renames, deletions and metadata changes made so far durable (the
// tracker's sync); a sync that fails is the fsync's error.
func TestFsyncSyncsMetadata(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	writeFile(t, f, "d", "dir/a", []byte("a"))
	n := writeFile(t, f, "d", "dir/b", []byte("b"))
	d := f.dirNode("d", "dir/")
	if err := d.Remove(ctx, &fuse.RemoveRequest{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	var dn fs.Node = d
	fsyncer, ok := dn.(fs.NodeFsyncer)
	if !ok {
		t.Fatal("a directory cannot be fsynced (EIO)")
	}
	if err := fsyncer.Fsync(ctx, &fuse.FsyncRequest{Dir: true}); err != nil || c.Calls("sync") != 1 {
		t.Errorf("fsync of the directory: %v, %d syncs", err, c.Calls("sync"))
	}
	if err := n.Fsync(ctx, &fuse.FsyncRequest{}); err != nil || c.Calls("sync") != 2 {
		t.Errorf("fsync of a file: %v, %d syncs", err, c.Calls("sync"))
	}
	// A rename over a file moves the target aside first: both renames are
	// durable before the moved-aside file is deleted.
	writeFile(t, f, "d", "dir/c", []byte("c"))
	syncsAtDelete := -1
	c.On("delete", func(_ context.Context, _ int, _, key string) error {
		if strings.Contains(key, replacedPrefix) {
			syncsAtDelete = c.Calls("sync")
		}
		return nil
	})
	before := c.Calls("sync")
	if err := f.renameFile(ctx, "d", "dir/c", "dir/b"); err != nil {
		t.Fatal(err)
	}
	if syncsAtDelete != before+1 {
		t.Errorf("syncs when the replaced file was deleted: %d, want %d", syncsAtDelete, before+1)
	}
	c.On("sync", func(context.Context, int, string, string) error { return errors.New("tracker gone") })
	if err := fsyncer.Fsync(ctx, &fuse.FsyncRequest{Dir: true}); !isErrno(err, syscall.EIO) {
		t.Errorf("fsync of the directory when sync fails: %v, want EIO", err)
	}
	if err := n.Fsync(ctx, &fuse.FsyncRequest{}); !isErrno(err, syscall.EIO) {
		t.Errorf("fsync of a file when sync fails: %v, want EIO", err)
	}
	// Unmounting syncs too, and says when it could not.
	before = c.Calls("sync")
	if err := f.Close(ctx); err == nil || c.Calls("sync") != before+1 {
		t.Errorf("Close: %v, %d syncs; want the failed sync's error", err, c.Calls("sync")-before)
	}
}

// Renaming a file moves its own node and touches no other: the mount
// used to look at every node it knew (and lock each) for every rename,
// which made git add of the Go tree (12,000 objects written under a
// temporary name, then renamed) spend half the mount's CPU there. Here
// another file's node is held locked: a rename that looks at it waits.
func TestRenameTouchesNoOtherNode(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, nil)
	ctx := context.Background()
	writeFile(t, f, "d", "a", []byte("a"))
	other := writeFile(t, f, "d", "b", []byte("b"))
	other.mu.Lock()
	defer other.mu.Unlock()
	top := f.dirNode("d", "")
	within(t, 2*time.Second, "rename of a while b's node is locked", func() {
		if err := top.Rename(ctx, &fuse.RenameRequest{OldName: "a", NewName: "c"}, top); err != nil {
			t.Error(err)
		}
	})
	if got, _ := content(t, c, "d", "c"); string(got) != "a" {
		t.Errorf("c = %q", got)
	}
	if n := f.knownFile("d", "c"); n == nil || n.key != "c" {
		t.Errorf("node of c: %+v", n)
	}
	if n := f.knownFile("d", "a"); n != nil {
		t.Errorf("a still has a node: %+v", n)
	}
}
