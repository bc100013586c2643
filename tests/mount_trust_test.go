package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
	"github.com/mogilefs-go/mogilefs-go/fusefs"
)

// User-visible rules of the mount that programs rely on (issue 10),
// each driven by real programs in child processes.

// SQLite in WAL mode works on the mount and leaves nothing behind: its
// -shm and -wal files are unlinked while open and must not come back.
func TestMountSQLiteWAL(t *testing.T) {
	condSkipFUSE(t)
	if exec.Command("python3", "-c", "import sqlite3").Run() != nil {
		t.Fatal("python3 with sqlite3 is missing (make test installs it)")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	d := filepath.Join(mnt, "test")
	script := `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
for i in range(500):
    db.execute("INSERT INTO t (v) VALUES (?)", ("row %d" % i,))
    if i % 100 == 0:
        db.commit()
db.commit()
db.close()
db = sqlite3.connect(sys.argv[1])
print(db.execute("PRAGMA integrity_check").fetchone()[0], db.execute("SELECT count(*) FROM t").fetchone()[0])
db.close()
`
	out, err := exec.Command("python3", "-c", script, filepath.Join(d, "app.db")).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite on the mount: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ok 500" {
		t.Errorf("integrity_check and count: %q; want \"ok 500\"", got)
	}
	time.Sleep(200 * time.Millisecond)
	if left := sh(t, fmt.Sprintf("ls -a %q", d)); strings.Contains(left, "-shm") || strings.Contains(left, "-wal") {
		t.Errorf("files left after the database was closed:\n%s", left)
	}
	if keys := sh(t, fmt.Sprintf("ls %q | wc -l", d)); strings.TrimSpace(keys) != "1" {
		t.Errorf("%s entries in the directory; want just app.db", strings.TrimSpace(keys))
	}
}

// touch -d then stat at once shows the time given, for a new file and
// an existing one; inode numbers stay through rewrites.
func TestMountTouchDateAndStableInodes(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	d := filepath.Join(mnt, "test")
	out := sh(t, fmt.Sprintf(`cd %q && touch -d @1500000000 new && stat -c %%Y new && echo x > old && touch -d @1400000000 old && stat -c %%Y old`, d))
	if got := strings.Fields(out); len(got) != 2 || got[0] != "1500000000" || got[1] != "1400000000" {
		t.Errorf("mtimes right after touch -d: %q; want 1500000000 1400000000", out)
	}
	out = sh(t, fmt.Sprintf(`cd %q && echo one > f && stat -c %%i f && echo two > f && stat -c %%i f && echo three >> f && stat -c %%i f && mv f g && stat -c %%i g`, d))
	if ino := strings.Fields(out); len(ino) != 4 || ino[0] != ino[1] || ino[1] != ino[2] || ino[2] != ino[3] {
		t.Errorf("inode numbers across rewrites and a rename: %q; want one number", out)
	}
}

// tar x of an archive with hard links and symbolic links: each entry gets
// its content or tar reports an error; never a silent empty file.
func TestMountTarWithLinks(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, fmt.Sprintf(`mkdir -p %[1]q/dir && echo content > %[1]q/dir/file && ln %[1]q/dir/file %[1]q/dir/hard && ln -s file %[1]q/dir/soft && cd %[1]q && tar cf ../a.tar .`, src))
	dst := filepath.Join(mnt, "test", "x")
	os.Mkdir(dst, 0o755)
	out, err := shErr(fmt.Sprintf("tar -C %q -xf %q", dst, filepath.Join(src, "..", "a.tar")))
	if got := sh(t, fmt.Sprintf("cat %q", filepath.Join(dst, "dir", "file"))); got != "content\n" {
		t.Errorf("dir/file: %q", got)
	}
	// The symlink is a symlink; the hard link is refused (EPERM), and tar
	// says so, or it is made as a copy.
	if target, err := os.Readlink(filepath.Join(dst, "dir", "soft")); err != nil || target != "file" {
		t.Errorf("dir/soft: readlink = %q, %v; tar said %v:\n%s", target, err, err, out)
	}
	b, rerr := os.ReadFile(filepath.Join(dst, "dir", "hard"))
	switch {
	case rerr == nil && string(b) == "content\n":
	case rerr != nil && err != nil && strings.Contains(out, "hard"):
	default:
		t.Errorf("hard: %q, %v; tar said %v:\n%s", b, rerr, err, out)
	}
}

// Trees with symbolic links (absolute, relative, dangling, to a
// directory) copied with cp -a, rsync -a and tar keep their links: diff
// -r finds nothing, a second rsync has nothing to do, tar --compare
// agrees, and another mount sees the same links.
func TestMountSymlinkTrees(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, fmt.Sprintf(`mkdir -p %[1]q/d/sub && echo a > %[1]q/d/a && echo b > %[1]q/d/sub/b && cd %[1]q/d &&
		ln -s a rel && ln -s /etc/hostname abs && ln -s nowhere dangling && ln -s sub todir && ln -s ../d/sub/b up &&
		touch -h -d @1500000000 rel abs dangling todir up`, src))
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("cp -a %q %q", src+"/d", d+"/cp"))
	sh(t, fmt.Sprintf("diff -r --no-dereference %q %q", src+"/d", d+"/cp"))
	sh(t, fmt.Sprintf("rsync -a %q/ %q/", src+"/d", d+"/rs"))
	sh(t, fmt.Sprintf("diff -r --no-dereference %q %q", src+"/d", d+"/rs"))
	// Directories included: their times are kept too.
	if out := sh(t, fmt.Sprintf(`rsync -ai %q/ %q/`, src+"/d", d+"/rs")); strings.TrimSpace(out) != "" {
		t.Errorf("a second rsync -ai still has work:\n%s", out)
	}
	if got, want := sh(t, fmt.Sprintf("stat -c '%%Y %%a' %q", d+"/rs/sub")), sh(t, fmt.Sprintf("stat -c '%%Y %%a' %q", src+"/d/sub")); got != want {
		t.Errorf("a directory's time and mode after rsync -a: %s; the source's %s", got, want)
	}
	for name, want := range map[string]string{"rel": "a", "abs": "/etc/hostname", "dangling": "nowhere", "todir": "sub", "up": "../d/sub/b"} {
		if got, err := os.Readlink(filepath.Join(d, "rs", name)); err != nil || got != want {
			t.Errorf("readlink rs/%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if got := sh(t, fmt.Sprintf("stat -c %%Y %q", d+"/cp/rel")); got != "1500000000\n" {
		t.Errorf("a link's mtime after cp -a: %s", got)
	}
	if got := sh(t, fmt.Sprintf("cat %q", d+"/rs/todir/b")); got != "b\n" {
		t.Errorf("through a link to a directory: %q", got)
	}
	// tar c of the source, x into the mount, then --compare.
	archive := filepath.Join(t.TempDir(), "d.tar")
	sh(t, fmt.Sprintf("tar -C %q -cf %q d", src, archive))
	sh(t, fmt.Sprintf("mkdir %q && tar -C %q -xf %q", d+"/tar", d+"/tar", archive))
	if out, err := shErr(fmt.Sprintf("tar -C %q -df %q", d+"/tar", archive)); err != nil {
		t.Errorf("tar --compare: %v\n%s", err, out)
	}
	// Another mount of the same cluster sees the links.
	other := mountCluster(t, c, nil)
	if got, err := os.Readlink(filepath.Join(other, "test", "tar", "d", "up")); err != nil || got != "../d/sub/b" {
		t.Errorf("readlink on another mount = %q, %v", got, err)
	}
}

// A storage node killed in the middle of a streamed write, another alive:
// the writer does not notice, the file is stored whole, close succeeds.
func TestMountNodeKilledMidWrite(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	src := filepath.Join(t.TempDir(), "src.bin")
	sh(t, fmt.Sprintf("head -c %d /dev/urandom > %q", 24<<20, src))
	dst := filepath.Join(mnt, "test", "big.bin")
	cmd, out := steadyWriter(t, src, dst, "0.05")
	// Kill the node the upload streams to, once it is under way.
	killed := uploadingNode(t, c)
	time.Sleep(300 * time.Millisecond)
	killed.Stop()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the writer failed after a node died (another was alive): %v\n%s", err, out)
	}
	sh(t, fmt.Sprintf("cmp %q %q", src, dst))
}

// Concurrent git clones of a real repository of more than 10,000 files
// (the Go source tree, committed to a fresh repository) onto the mount,
// each checked with git fsck --full and git status: new directories,
// new files and lookups racing under load (a clone once failed with
// "failed to copy file ... No such file or directory"). The cluster and
// the mount are the binaries (the race detector slows them tenfold);
// -short clones a small generated repository.
func TestMountConcurrentGitClones(t *testing.T) {
	condSkipFUSE(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is missing (make test installs it)")
	}
	const clones = 3
	repo := filepath.Join(t.TempDir(), "repo.git")
	// Packed by a gc of its own before the clones: the automatic one, run
	// in the background after a commit of this many loose objects, would
	// remove them under the clones copying them.
	git := "git -c user.name=t -c user.email=t@t -c gc.auto=0"
	if testing.Short() {
		tree := t.TempDir()
		sh(t, fmt.Sprintf(`set -e; cd %[1]q
for d in $(seq 1 300); do mkdir -p src/d$((d %% 60))/e$((d %% 7)); echo "file $d $RANDOM" > src/d$((d %% 60))/e$((d %% 7))/f$d.txt; done
git init -q --bare %[2]q
%[3]s --git-dir=%[2]q --work-tree=. add -A && %[3]s --git-dir=%[2]q --work-tree=. commit -qm one
for d in $(seq 1 50); do echo change >> src/d$((d %% 60))/e$((d %% 7))/f$d.txt; done
%[3]s --git-dir=%[2]q --work-tree=. commit -qam two`, tree, repo, git))
	} else {
		goroot := strings.TrimSpace(sh(t, "go env GOROOT"))
		sh(t, fmt.Sprintf(`set -e; git init -q --bare %[1]q
%[2]s --git-dir=%[1]q --work-tree=%[3]q add -A && %[2]s --git-dir=%[1]q --work-tree=%[3]q commit -qm "Go source tree"
git --git-dir=%[1]q gc -q`,
			repo, git, filepath.Join(goroot, "src")))
		if n, _ := strconv.Atoi(strings.TrimSpace(sh(t, fmt.Sprintf("git --git-dir=%q ls-tree -r HEAD | wc -l", repo)))); n < 10000 {
			t.Fatalf("the repository has %d files, want at least 10,000", n)
		}
	}
	c := startProcCluster(t, 2)
	mnt := startMogmount(t, c.TrackerAddr).dir
	start := time.Now()
	errs := make(chan error, clones)
	for i := 0; i < clones; i++ {
		go func(i int) {
			dst := filepath.Join(mnt, "test", fmt.Sprintf("clone%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "bash", "-c", fmt.Sprintf("git clone -q --no-hardlinks %q %q && cd %q && git fsck --full --no-progress && git status --porcelain | wc -l", repo, dst, dst)).CombinedOutput()
			if err == nil && strings.TrimSpace(string(out)) != "0" {
				err = fmt.Errorf("git status after the clone lists changes:\n%s", out)
			}
			if err != nil {
				err = fmt.Errorf("clone %d: %v\n%s", i, err, out)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < clones; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	files := strings.TrimSpace(sh(t, fmt.Sprintf("git --git-dir=%q ls-tree -r HEAD | wc -l", repo)))
	t.Logf("%d clones of %s files, each checked, in %v", clones, files, time.Since(start).Round(time.Second))
}

// A storage node that stalls in the middle of a streamed write (as under
// SIGSTOP), another alive: after --stall-timeout the upload moves to the
// other node from the spool; the writer finishes, the file is whole.
func TestMountNodeStallsMidWrite(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, func(cfg *fusefs.Config) { cfg.StallTimeout = 2 * time.Second })
	src := filepath.Join(t.TempDir(), "src.bin")
	sh(t, fmt.Sprintf("head -c %d /dev/urandom > %q", 64<<20, src))
	dst := filepath.Join(mnt, "test", "big.bin")
	cmd, out := steadyWriter(t, src, dst, "0.02")
	stalled := uploadingNode(t, c)
	stalled.Stall()
	defer stalled.Resume()
	if _, err := waitWriter(t, cmd, 60*time.Second, "the node stalled"); err != nil {
		t.Fatalf("the writer failed with a stalled node (another alive): %v\n%s", err, out)
	}
	stalled.Resume()
	sh(t, fmt.Sprintf("cmp %q %q", src, dst))
}

// waitWriter waits for a writer process started by steadyWriter and
// returns how long it took and how it ended; a writer still running
// after limit is killed and fails the test (after names the fault).
func waitWriter(t *testing.T, cmd *exec.Cmd, limit time.Duration, after string) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the writer was still blocked %v after %s", time.Since(start).Round(time.Millisecond), after)
		return 0, nil
	}
}

// steadyWriter starts a process copying src to dst through one open
// file, 1 MiB at a time with a pause of pause seconds after each.
func steadyWriter(t *testing.T, src, dst, pause string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("python3", "-c", `
import sys, time
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        dst.write(b)
        dst.flush()
        time.sleep(float(sys.argv[3]))
`, src, dst, pause)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// uploadingNode waits for a storage node to be receiving an upload.
func uploadingNode(t *testing.T, c *clustertest.Cluster) *clustertest.Node {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, n := range c.Nodes {
			if n.Uploads() > 0 {
				return n
			}
		}
	}
	t.Fatal("no node received the upload")
	return nil
}

// A file uploaded by another client without an mtime (mogupload, the Perl
// client) shows the same mtime on every mount, before and after a
// remount: the time the tracker recorded, not a mount's start time nor
// one copy's Last-Modified.
func TestMountMtimeOfUploadedFileStable(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	ctx := context.Background()
	if _, err := c.Client.Upload(ctx, "test", "up.txt", "two", strings.NewReader("uploaded\n"), 9, client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	uploaded := time.Now()
	var seen []string
	for i := 0; i < 2; i++ {
		time.Sleep(1100 * time.Millisecond) // a later mount, a later second
		mnt := mountCluster(t, c, nil)
		seen = append(seen, sh(t, fmt.Sprintf("stat -c %%Y %q", filepath.Join(mnt, "test", "up.txt"))))
	}
	if seen[0] != seen[1] {
		t.Errorf("mtime differs between mounts: %q vs %q", seen[0], seen[1])
	}
	if got := strings.TrimSpace(seen[0]); got != fmt.Sprint(uploaded.Unix()) && got != fmt.Sprint(uploaded.Unix()-1) {
		t.Errorf("mtime %s; the file was uploaded at %d", got, uploaded.Unix())
	}
}

// Keys of 1,000 bytes (deep trees: node_modules, Java packages) are
// written and read back through the mount, on SQLite and on MariaDB; past
// the database's limit the name is too long.
func TestMountLongKeys(t *testing.T) {
	condSkipFUSE(t)
	for backend, dsn := range storetest.DSNs(t) {
		t.Run(string(backend), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{DSN: dsn, Domain: "test"})
			mnt := mountCluster(t, c, nil)
			deep := filepath.Join(mnt, "test")
			var rel []string
			for i := 0; i < 9; i++ {
				rel = append(rel, fmt.Sprintf("%02d-%s", i, strings.Repeat("d", 100)))
			}
			dir := filepath.Join(append([]string{deep}, rel...)...)
			file := filepath.Join(dir, "file.txt")
			key := strings.TrimPrefix(file, deep+"/")
			if len(key) < 900 || len(key) > 1024 {
				t.Fatalf("the key is %d bytes", len(key))
			}
			sh(t, fmt.Sprintf("mkdir -p %q && echo deep > %q", dir, file))
			if got := sh(t, fmt.Sprintf("cat %q", file)); got != "deep\n" {
				t.Errorf("read back %q", got)
			}
			if got, err := c.Client.Tracker.FileInfo(context.Background(), "test", key); err != nil || got.Length != 5 {
				t.Errorf("file_info of the %d-byte key = %+v, %v", len(key), got, err)
			}
			out, err := shErr(fmt.Sprintf("touch %q", filepath.Join(dir, strings.Repeat("x", 200))))
			if err == nil || !strings.Contains(out, "File name too long") {
				t.Errorf("a key past 1,024 bytes: %v %s", err, out)
			}
		})
	}
}

// chown and chmod u+s persist across a remount; a rewrite keeps them.
func TestMountOwnersPersist(t *testing.T) {
	condSkipFUSE(t)
	if os.Getuid() != 0 {
		t.Skip("chown needs root")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("cd %q && echo x > f && chown 1234:5678 f && chmod 4750 f && mkdir dir && chown 42:43 dir && chmod 2770 dir && echo y > f", d))
	again := mountCluster(t, c, nil)
	got := sh(t, fmt.Sprintf("cd %q && stat -c '%%u %%g %%a %%s' f dir", filepath.Join(again, "test")))
	if want := "1234 5678 4750 2\n42 43 2770 0\n"; got != want {
		t.Errorf("after a remount:\n%s\nwant:\n%s", got, want)
	}
	// The sticky bit cannot be shown through FUSE here: chmod +t fails.
	if out, err := shErr(fmt.Sprintf("chmod +t %q", filepath.Join(again, "test", "dir"))); err == nil || !strings.Contains(out, "not permitted") {
		t.Errorf("chmod +t: %v %s", err, out)
	}
}

// user.* extended attributes round-trip through rsync -X and cp
// --preserve=xattr, and another mount reads them.
func TestMountUserXattrs(t *testing.T) {
	condSkipFUSE(t)
	for _, tool := range []string{"setfattr", "getfattr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make test installs the attr package)", tool)
		}
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, fmt.Sprintf(`mkdir -p %[1]q/sub && echo a > %[1]q/a && setfattr -n user.origin -v https://example.org/a %[1]q/a && setfattr -n user.tag -v 0x00ff01 %[1]q/a && setfattr -n user.dirtag -v green %[1]q/sub`, src))
	d := filepath.Join(mnt, "test")
	sh(t, fmt.Sprintf("rsync -aX %q/ %q/", src, d+"/rs"))
	sh(t, fmt.Sprintf("cp -r --preserve=xattr %q %q", src, d+"/cp"))
	want := sh(t, fmt.Sprintf("cd %q && getfattr -d -e hex a sub", src))
	other := mountCluster(t, c, nil)
	for _, dir := range []string{"rs", "cp"} {
		if got := sh(t, fmt.Sprintf("cd %q && getfattr -d -e hex a sub", filepath.Join(other, "test", dir))); got != want {
			t.Errorf("%s: getfattr on another mount:\n%s\nwant:\n%s", dir, got, want)
		}
	}
	if out := sh(t, fmt.Sprintf(`rsync -aXi %q/ %q/ | grep -v '^\.d' || true`, src, d+"/rs")); strings.TrimSpace(out) != "" {
		t.Errorf("a second rsync -aXi still has work:\n%s", out)
	}
}

// A directory's mtime moves when a file is made or removed in it, as on
// a local disk, and another mount sees the new time (written behind
// within 5 s, and at the directory's fsync).
func TestMountDirMtimeFollowsEntries(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	d := filepath.Join(mountCluster(t, c, nil), "test")
	sh(t, fmt.Sprintf("cd %q && mkdir sub && touch -d @1500000000 sub", d))
	if got := sh(t, fmt.Sprintf("stat -c %%Y %q", d+"/sub")); got != "1500000000\n" {
		t.Fatalf("after touch -d: %s", got)
	}
	start := time.Now().Unix()
	sh(t, fmt.Sprintf("cd %q && echo x > sub/new", d))
	after, _ := strconv.ParseInt(strings.TrimSpace(sh(t, fmt.Sprintf("stat -c %%Y %q", d+"/sub"))), 10, 64)
	if after < start {
		t.Errorf("after a file was made in it the directory's mtime is %d; want %d or later", after, start)
	}
	sh(t, fmt.Sprintf("rm %q", d+"/sub/new"))
	removed := strings.TrimSpace(sh(t, fmt.Sprintf("stat -c %%.9Y %q", d+"/sub")))
	sh(t, fmt.Sprintf("sync %q", d+"/sub")) // fsync of the directory
	other := filepath.Join(mountCluster(t, c, nil), "test")
	if got := strings.TrimSpace(sh(t, fmt.Sprintf("stat -c %%.9Y %q", other+"/sub"))); got != removed {
		t.Errorf("another mount shows the directory's mtime %s; want %s", got, removed)
	}
}
