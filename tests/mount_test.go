package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
	"github.com/mogilefs-go/mogilefs-go/fusefs"
)

// condSkipFUSE skips a test where FUSE cannot work.
func condSkipFUSE(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Getenv("SKIP_FUSE_TESTS") == "1" {
		t.Skip("SKIP_FUSE_TESTS=1")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests need it (CI has it)")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3: install fuse3 (CI does)")
	}
}

// mountCluster mounts the cluster in a temporary directory, unmounted at
// the end of the test.
func mountCluster(t *testing.T, c *clustertest.Cluster, tune func(*fusefs.Config)) string {
	t.Helper()
	mnt, _ := mountClusterFS(t, c, tune)
	return mnt
}

// mountClusterFS is mountCluster that also returns the file system.
func mountClusterFS(t *testing.T, c *clustertest.Cluster, tune func(*fusefs.Config)) (string, *fusefs.FS) {
	t.Helper()
	return mountTrackers(t, []string{c.TrackerAddr}, tune)
}

// mountTrackers mounts the cluster of the trackers at addrs, configured
// as mogmount configures itself (tune adjusts it), in a temporary
// directory unmounted at the end of the test.
func mountTrackers(t *testing.T, addrs []string, tune func(*fusefs.Config)) (string, *fusefs.FS) {
	t.Helper()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cl, err := client.New(addrs, fusefs.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	keyLimit, err := cl.Tracker.KeyLimit(context.Background()) // as mogmount does
	if err != nil {
		t.Fatal(err)
	}
	cfg := fusefs.Config{Client: cl, SpoolDir: filepath.Join(dir, "spool"), Logger: clustertest.TestLogger(t, slog.LevelWarn),
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), MaxKeyBytes: keyLimit}
	if tune != nil {
		tune(&cfg)
	}
	f, err := fusefs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := fusefs.Mount(mnt, f, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(30 * time.Second); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if err := f.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
		cl.Close()
	})
	return mnt, f
}

// sh runs a shell command and fails the test on error. Everything that
// touches a mount runs in a child process: a process must never make
// syscalls on a FUSE mount it serves itself (a request the kernel sends
// back to a process stuck in the call can deadlock it, e.g. the flush of
// its open files at exit).
func sh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := shErr(cmd)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return out
}

// shErr runs a shell command with a time limit and returns its output.
func shErr(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", cmd).CombinedOutput()
	return string(out), err
}

// py runs a Python snippet (in a child process) with the arguments in
// sys.argv[1:].
func py(t *testing.T, code string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", append([]string{"-c", code}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s", code, err, out)
	}
	return string(out)
}

// makeTree writes a tree of mixed sizes and odd names under dir.
func makeTree(t *testing.T, dir string, big int) {
	t.Helper()
	files := map[string]int{
		"empty":                     0,
		"one byte":                  1,
		"a/b/c/deep.txt":            1000,
		"a/b/sibling":               4096,
		"a/mid & size %d":           128<<10 + 7,
		"unicode/héllo wörld ✓.txt": 300,
		"percent%41/plus+sign":      77,
		"big/large.bin":             big,
		"big/medium.bin":            3<<20 + 5,
	}
	for name, size := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, randomBytes(t, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755)
}

func TestMountWithRealTools(t *testing.T) {
	condSkipFUSE(t)
	for _, tool := range []string{"rsync", "tar", "diff", "find", "du", "stat", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make test installs it)", tool)
		}
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 100<<20)
	d := filepath.Join(mnt, "test")

	// cp -r, then diff -r.
	sh(t, fmt.Sprintf("cp -r %q %q", src, d+"/tree"))
	sh(t, fmt.Sprintf("diff -r %q %q", src, d+"/tree"))
	// rsync -a twice: the second run transfers nothing.
	sh(t, fmt.Sprintf("rsync -a %q/ %q/", src, d+"/rs"))
	out := sh(t, fmt.Sprintf("rsync -a --stats %q/ %q/", src, d+"/rs"))
	if !strings.Contains(out, "Number of regular files transferred: 0") {
		t.Errorf("second rsync transferred files:\n%s", out)
	}
	sh(t, fmt.Sprintf("diff -r %q %q", src, d+"/rs"))
	// tar x into the mount, tar c out of it.
	sh(t, fmt.Sprintf("mkdir %q && tar -C %q -cf - . | tar -C %q -xf -", d+"/tar", src, d+"/tar"))
	sh(t, fmt.Sprintf("diff -r %q %q", src, d+"/tar"))
	listSrc := sh(t, fmt.Sprintf("tar -C %q -cvf /dev/null . | sort", src))
	listMnt := sh(t, fmt.Sprintf("tar -C %q -cvf /dev/null . | sort", d+"/tar"))
	if listSrc != listMnt {
		t.Errorf("tar listings differ:\n%s\nvs\n%s", listSrc, listMnt)
	}
	// sha256sum through the mount.
	want := sh(t, fmt.Sprintf("cd %q && sha256sum big/large.bin", src))
	if got := sh(t, fmt.Sprintf("cd %q && sha256sum big/large.bin", d+"/tree")); got != want {
		t.Errorf("sha256 through the mount: %s vs %s", got, want)
	}
	// mv: file over an existing file, a directory, a directory over nothing.
	sh(t, fmt.Sprintf("cd %q && echo new > x && echo old > y && mv x y && test \"$(cat y)\" = new && test ! -e x", d))
	sh(t, fmt.Sprintf("cd %q && mv tree/a tree/a2 && test -f tree/a2/b/c/deep.txt && test ! -e tree/a", d))
	sh(t, fmt.Sprintf("diff %q %q", src+"/a/b/c/deep.txt", d+"/tree/a2/b/c/deep.txt"))
	// find, du, stat, df.
	if n := strings.Count(sh(t, fmt.Sprintf("find %q -type f", d+"/rs")), "\n"); n != 9 {
		t.Errorf("find saw %d files; want 9", n)
	}
	if out := sh(t, fmt.Sprintf("du -sk %q", d+"/rs")); !strings.HasPrefix(out, "10") {
		t.Errorf("du = %s", out)
	}
	if out := sh(t, fmt.Sprintf("stat -c '%%s %%F' %q", d+"/rs/big/medium.bin")); out != fmt.Sprintf("%d regular file\n", 3<<20+5) {
		t.Errorf("stat = %q", out)
	}
	if out := sh(t, fmt.Sprintf("df -k %q | tail -1", mnt)); !strings.Contains(out, "mogilefs") {
		t.Errorf("df = %q", out)
	}
	// rm -r, and fsync of a directory and a file (sync(1) with names:
	// fsync of each), which make the removals durable.
	sh(t, fmt.Sprintf("rm -r %q", d+"/tar"))
	if _, err := os.Stat(d + "/tar"); err == nil {
		t.Error("rm -r left the directory")
	}
	sh(t, fmt.Sprintf("sync %q %q %q", d, d+"/tree", d+"/y"))
	// Errors: hard links, a too-long name, rmdir of a non-empty dir.
	for cmd, want := range map[string]string{
		fmt.Sprintf("ln %q %q", d+"/y", d+"/hard"):              "Operation not permitted",
		fmt.Sprintf("touch %q", d+"/"+strings.Repeat("n", 300)): "File name too long",
		fmt.Sprintf("rmdir %q", d+"/tree/big"):                  "Directory not empty",
		fmt.Sprintf("mv %q %q", d+"/y", mnt+"/nosuchdomain/y"):  "No such file or directory",
	} {
		out, err := shErr(cmd)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%s: %v %q; want an error saying %q", cmd, err, out, want)
		}
	}
}

func TestMountMkdirPersistsAndOverwrites(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt, fsys := mountClusterFS(t, c, nil)
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("mkdir %q && mkdir -p %q", d+"/empty", d+"/p/q/r"))
	defer func() {
		// The mount's metrics moved with the work above.
		m := scrape(t, fsys.Registry())
		if metricValue(t, m, "mogmount_commits_total") < 3 || metricValue(t, m, "mogmount_spooled_files_total") < 1 {
			t.Errorf("mogmount metrics did not move:\n%.1500s", m)
		}
		metricValue(t, m, "mogmount_attr_cache_hits_total")
	}()
	// Overwrite in place, append, truncate: the spool path.
	p := d + "/file"
	sh(t, fmt.Sprintf("printf 0123456789 > %q", p))
	sh(t, fmt.Sprintf("printf AB | dd of=%q bs=1 seek=3 conv=notrunc status=none", p))
	sh(t, fmt.Sprintf("printf xyz >> %q", p))
	if got := sh(t, fmt.Sprintf("cat %q", p)); got != "012AB56789xyz" {
		t.Errorf("after overwrite+append: %q", got)
	}
	sh(t, fmt.Sprintf("truncate -s 4 %q", p))
	if got := sh(t, fmt.Sprintf("cat %q", p)); got != "012A" {
		t.Errorf("after truncate: %q", got)
	}
	// Out-of-order writes to a new file through one handle.
	py(t, "import sys\nf=open(sys.argv[1],'wb')\nf.seek(6); f.write(b'world'); f.seek(0); f.write(b'hello '); f.close()", d+"/sparse")
	if got := sh(t, fmt.Sprintf("cat %q", d+"/sparse")); got != "hello world" {
		t.Errorf("out-of-order writes: %q", got)
	}
	// mtime and mode survive a remount; so do empty directories.
	sh(t, fmt.Sprintf("touch -m -d '2020-01-02 03:04:05 UTC' %q && chmod 600 %q", p, p))
	mnt2 := mountCluster(t, c, nil)
	d2 := filepath.Join(mnt2, "test")
	if got := sh(t, fmt.Sprintf("stat -c '%%Y %%a' %q", d2+"/file")); got != "1577934245 600\n" {
		t.Errorf("mtime and mode after remount: %q", got)
	}
	sh(t, fmt.Sprintf("test -d %q && test -d %q && rmdir %q", d2+"/empty", d2+"/p/q/r", d2+"/empty"))
	// Seen by other clients: the key list.
	keys, _, _ := c.Client.Tracker.ListKeys(t.Context(), "test", "", "", 100)
	if fmt.Sprint(keys) != "[file p/ p/q/ p/q/r/ sparse]" {
		t.Errorf("keys = %v", keys)
	}
	// xattrs: the class is readable and settable.
	if got := py(t, "import os,sys\nprint(os.getxattr(sys.argv[1], 'user.mogilefs.class').decode())", d2+"/file"); got != "default\n" {
		t.Errorf("class xattr = %q", got)
	}
	py(t, "import os,sys\nos.setxattr(sys.argv[1], 'user.mogilefs.class', b'one')", d2+"/file")
	if fi, _ := c.Client.Tracker.FileInfo(t.Context(), "test", "file"); fi.Class != "one" {
		t.Errorf("class after setxattr = %q", fi.Class)
	}
}

func TestMountReadSurvivesNodeDeath(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	data := randomBytes(t, 64<<20)
	if _, err := c.Client.Upload(t.Context(), "test", "big", "two", bytes.NewReader(data), int64(len(data)), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "2 copies", func() bool { return copiesOK(t, c, "test", map[string][]byte{"big": nil}, 2, nil) })
	mnt := mountCluster(t, c, nil)
	// A child reads 8 MiB, says so, waits for a go-ahead, reads the rest.
	reader := exec.Command("python3", "-c", `import sys, hashlib
h = hashlib.sha256(); f = open(sys.argv[1], 'rb'); n = 0
while n < 8<<20:
    b = f.read(1<<20); h.update(b); n += len(b)
print('half', flush=True); sys.stdin.readline()
while True:
    b = f.read(1<<20)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)`, filepath.Join(mnt, "test", "big"))
	stdin, _ := reader.StdinPipe()
	stdout, _ := reader.StdoutPipe()
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "half" {
		t.Fatalf("reader did not get half-way: %q", lines.Text())
	}
	for _, node := range c.Nodes {
		if node.IP == "127.0.0.1" {
			node.Stop() // one of the two copies is gone mid-read
		}
	}
	fmt.Fprintln(stdin)
	if !lines.Scan() {
		t.Fatal("reader gave no result")
	}
	want := fmt.Sprintf("%d %x", len(data), sha256Sum(data))
	if got := lines.Text(); got != want {
		t.Errorf("read with a node killed mid-way: %q; want %q", got, want)
	}
	reader.Wait()
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// TestMountOnPlainTracker mounts a tracker without our extensions (as
// the original 2.73 answers): listings page through keys, metadata is
// kept only while mounted, and the common tools still work.
func TestMountOnPlainTracker(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Tune: func(cfg *tracker.Config) { cfg.Plain = true }})
	// Tracker answers are cached briefly, so that what the mount shows
	// comes from the tracker (and what it keeps), not from the cache.
	mnt := mountCluster(t, c, func(cfg *fusefs.Config) { cfg.CacheTTL, cfg.KernelTTL = 100*time.Millisecond, 100*time.Millisecond })
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 2<<20)
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("cp -r %q %q && diff -r %q %q", src, d+"/tree", src, d+"/tree"))
	sh(t, fmt.Sprintf("mkdir %q && test -d %q", d+"/made", d+"/made"))
	sh(t, fmt.Sprintf("chmod 600 %q && touch -m -d '2020-01-02 03:04:05 UTC' %q", d+"/tree/one byte", d+"/tree/one byte"))
	sh(t, fmt.Sprintf("mv %q %q && test -f %q", d+"/tree/empty", d+"/tree/moved", d+"/tree/moved"))
	if n := strings.Count(sh(t, fmt.Sprintf("find %q -type f", d+"/tree")), "\n"); n != 9 {
		t.Errorf("find saw %d files; want 9", n)
	}
	// rsync replaces existing files by renaming its temporary files over
	// them (2.73 answers ERR key_exists plus a stray OK line); the mtimes it
	// sets are kept while mounted, so a second run has nothing to do.
	sh(t, fmt.Sprintf("find %q -type f -exec touch -d @1400000000 {} +", src)) // unlike any upload time
	sh(t, fmt.Sprintf("rsync -a %q/ %q/", src, d+"/rs"))
	sh(t, fmt.Sprintf("touch -d @1400000100 %q %q && rsync -a %q/ %q/", src+"/a/b/sibling", src+"/one byte", src, d+"/rs"))
	time.Sleep(300 * time.Millisecond) // past the cache's time to live
	if out := sh(t, fmt.Sprintf(`rsync -ai %q/ %q/ | grep -v '^\.d' || true`, src, d+"/rs")); strings.TrimSpace(out) != "" {
		t.Errorf("a third rsync -ai on a plain tracker still has work:\n%s", out)
	}
	if out := sh(t, fmt.Sprintf("ls -a %q %q", d+"/rs", d+"/rs/a/b")); strings.Contains(out, ".mogmount-replaced-") {
		t.Errorf("files moved aside while replacing are visible:\n%s", out)
	}
	sh(t, fmt.Sprintf("diff -r %q %q", src, d+"/rs"))
	// Without the metadata extension, mtime comes from the storage node.
	if out := sh(t, fmt.Sprintf("stat -c %%Y %q", d+"/tree/a/b/sibling")); strings.TrimSpace(out) == "0" {
		t.Errorf("mtime = %s", out)
	}
}

// TestMountOutOfOrderReads reads one file the ways programs do besides
// streaming it: seeks back and forth (inside the stash window and far
// beyond it), odd sizes, reads across the end, and threads reading one
// descriptor at once (the kernel's requests then reach mogmount out of
// order). Every piece is checked against the uploaded bytes.
func TestMountOutOfOrderReads(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	data := randomBytes(t, 24<<20+777)
	if _, err := c.Client.Upload(t.Context(), "test", "f", "", bytes.NewReader(data), int64(len(data)), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt := mountCluster(t, c, nil)
	out := py(t, `import os, sys, hashlib, random, threading
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
lock = threading.Lock()
def piece(off, n):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # make the mount serve it, not the page cache
    b = os.pread(fd, n, off)
    with lock:
        print(off, n, len(b), hashlib.sha256(b).hexdigest())
for off, n in [(0, 3<<20), (100, 5000), (3<<20, 1<<20), (6<<20, 12345), (20<<20, 1<<20), (1<<20, 300000), (size-1000, 65536), (size, 10), (7<<20, 2<<20)]:
    piece(off, n)
def worker(seed):
    r = random.Random(seed)
    for _ in range(40):
        piece(r.randrange(size), r.choice([4096, 131072, 1<<20, 77777]))
ts = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
for t in ts: t.start()
for t in ts: t.join()`, filepath.Join(mnt, "test", "f"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9+6*40 {
		t.Fatalf("got %d pieces, want %d:\n%s", len(lines), 9+6*40, out)
	}
	for _, l := range lines {
		var off, asked, got int
		var sum string
		if _, err := fmt.Sscan(l, &off, &asked, &got, &sum); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		end := min(off+asked, len(data))
		if got != end-off {
			t.Errorf("read of %d bytes at %d: got %d; want %d", asked, off, got, end-off)
			continue
		}
		if want := fmt.Sprintf("%x", sha256Sum(data[off:end])); sum != want {
			t.Errorf("read of %d bytes at %d: wrong bytes", asked, off)
		}
	}
}

// TestMountKeepsPagesOfUnchangedFile: a fid's bytes never change, so a
// second open of an unchanged file is served from the kernel's page
// cache; once the key names a new version (same size, other bytes), the
// next open reads the new bytes through the mount.
func TestMountKeepsPagesOfUnchangedFile(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	v1, v2 := randomBytes(t, 2<<20), randomBytes(t, 2<<20)
	if _, err := c.Client.Upload(t.Context(), "test", "f", "", bytes.NewReader(v1), int64(len(v1)), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt, f := mountClusterFS(t, c, func(cfg *fusefs.Config) {
		cfg.CacheTTL, cfg.KernelTTL = 300*time.Millisecond, 100*time.Millisecond
	})
	p := filepath.Join(mnt, "test", "f")
	sum := func() string { return strings.Fields(sh(t, "sha256sum "+p))[0] }
	if got := sum(); got != fmt.Sprintf("%x", sha256Sum(v1)) {
		t.Fatalf("first read: wrong bytes")
	}
	before := f.Stats.BytesRead.Load()
	if got := sum(); got != fmt.Sprintf("%x", sha256Sum(v1)) {
		t.Fatalf("second read: wrong bytes")
	}
	// Without the kernel keeping the pages, the whole file is read again;
	// a loaded machine may evict a few of them (CI: 8,192 bytes once).
	if n := f.Stats.BytesRead.Load() - before; n > int64(len(v1))/8 {
		t.Errorf("second open of an unchanged file read %d of its %d bytes through the mount; want the page cache", n, len(v1))
	}
	if _, err := c.Client.Upload(t.Context(), "test", "f", "", bytes.NewReader(v2), int64(len(v2)), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past both caches' lifetimes
	if got := sum(); got != fmt.Sprintf("%x", sha256Sum(v2)) {
		t.Fatalf("read after another client replaced the file: old bytes")
	}
}

// Small files written through the mount (cp, touch) have both copies of
// their class when close() returns, with no replication run (the jobs
// are off): the mount wrote them to two hosts at once. A file past 1 MiB
// streams to one node and waits for replication.
func TestMountWritesSmallFilesToEveryCopy(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Tune: func(cfg *tracker.Config) { cfg.NoJobs = true }})
	mnt := mountCluster(t, c, func(cfg *fusefs.Config) { cfg.Class = "two" })
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("head -c 4096 /dev/urandom > %q && touch %q && head -c 3000000 /dev/urandom > %q", d+"/small", d+"/empty", d+"/big"))
	ctx := t.Context()
	for key, want := range map[string]int{"small": 2, "empty": 2, "big": 1} {
		fi, err := c.Client.Tracker.FileInfo(ctx, "test", key)
		if err != nil {
			t.Fatal(err)
		}
		if fi.DevCount != want {
			t.Errorf("%s: %d copies after close without replication; want %d", key, fi.DevCount, want)
		}
		paths, err := c.Client.Tracker.GetPaths(ctx, "test", key, false)
		if err != nil || len(paths) != want {
			t.Errorf("%s: paths %v, %v", key, paths, err)
		}
		local := sh(t, fmt.Sprintf("md5sum < %q", filepath.Join(d, key)))
		for _, p := range paths {
			if got := sh(t, fmt.Sprintf("curl -sf %q | md5sum", p)); got != local {
				t.Errorf("%s: the copy at %s differs from the file", key, p)
			}
		}
	}
}
