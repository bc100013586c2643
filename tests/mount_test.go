package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
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
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cl, err := client.New([]string{c.TrackerAddr}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fusefs.Config{Client: cl, SpoolDir: filepath.Join(dir, "spool"), Logger: clustertest.TestLogger(t, slog.LevelWarn),
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
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
		if err := m.Unmount(10 * time.Second); err != nil {
			t.Errorf("unmount: %v", err)
		}
		cl.Close()
	})
	return mnt
}

// sh runs a shell command and fails the test on error.
func sh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
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
	// rm -r.
	sh(t, fmt.Sprintf("rm -r %q", d+"/tar"))
	if _, err := os.Stat(d + "/tar"); err == nil {
		t.Error("rm -r left the directory")
	}
	// Errors: hard links, symlinks, a too-long name, rmdir of a non-empty dir.
	if err := os.Link(d+"/y", d+"/hard"); err == nil {
		t.Error("hard link succeeded")
	}
	if err := os.Symlink("y", d+"/sym"); err == nil {
		t.Error("symlink succeeded")
	}
	if err := os.WriteFile(d+"/"+strings.Repeat("n", 300), nil, 0o644); !errorsIs(err, syscall.ENAMETOOLONG) {
		t.Errorf("long name: %v", err)
	}
	if err := os.Remove(d + "/tree/big"); !errorsIs(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir non-empty: %v", err)
	}
}

func errorsIs(err error, target syscall.Errno) bool {
	var pe *os.PathError
	if e, ok := err.(*os.PathError); ok {
		pe = e
	} else if le, ok := err.(*os.LinkError); ok {
		return le.Err == target
	}
	return pe != nil && pe.Err == target
}

func TestMountMkdirPersistsAndOverwrites(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	mnt := mountCluster(t, c, nil)
	d := filepath.Join(mnt, "test")
	if err := os.Mkdir(d+"/empty", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d+"/p/q/r", 0o755); err != nil {
		t.Fatal(err)
	}
	// Overwrite in place, append, truncate: the spool path.
	p := d + "/file"
	os.WriteFile(p, []byte("0123456789"), 0o644)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("AB"), 3)
	if err := f.Close(); err != nil {
		t.Fatalf("close after overwrite: %v", err)
	}
	f, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("xyz"))
	f.Close()
	if b, _ := os.ReadFile(p); string(b) != "012AB56789xyz" {
		t.Errorf("after overwrite+append: %q", b)
	}
	os.Truncate(p, 4)
	if b, _ := os.ReadFile(p); string(b) != "012A" {
		t.Errorf("after truncate: %q", b)
	}
	// Out-of-order writes to a new file.
	g, _ := os.Create(d + "/sparse")
	g.WriteAt([]byte("world"), 6)
	g.WriteAt([]byte("hello "), 0)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(d + "/sparse"); string(b) != "hello world" {
		t.Errorf("out-of-order writes: %q", b)
	}
	// mtime and mode survive a remount; so do empty directories.
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(p, when, when)
	os.Chmod(p, 0o600)
	mnt2 := mountCluster(t, c, nil)
	d2 := filepath.Join(mnt2, "test")
	st, err := os.Stat(d2 + "/file")
	if err != nil || !st.ModTime().Equal(when) || st.Mode().Perm() != 0o600 {
		t.Errorf("after remount: %v %v %v", err, st.ModTime(), st.Mode())
	}
	for _, dir := range []string{"/empty", "/p/q/r"} {
		if st, err := os.Stat(d2 + dir); err != nil || !st.IsDir() {
			t.Errorf("%s after remount: %v", dir, err)
		}
	}
	if err := os.Remove(d2 + "/empty"); err != nil {
		t.Errorf("rmdir empty: %v", err)
	}
	// Seen by other clients: the key list.
	keys, _, _ := c.Client.Tracker.ListKeys(t.Context(), "test", "", "", 100)
	if fmt.Sprint(keys) != "[file p/ p/q/ p/q/r/ sparse]" {
		t.Errorf("keys = %v", keys)
	}
	// xattrs: class readable and settable.
	out := sh(t, fmt.Sprintf("getfattr -n user.mogilefs.class --only-values %q 2>/dev/null || python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], \"user.mogilefs.class\").decode())' %q", d2+"/file", d2+"/file"))
	if !strings.Contains(out, "default") {
		t.Errorf("class xattr = %q", out)
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
	f, err := os.Open(filepath.Join(mnt, "test", "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	read := 0
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		read += n
		if read >= 8<<20 && read-n < 8<<20 {
			// Kill whichever node serves; the read must move on.
			for _, node := range c.Nodes {
				if node.IP == "127.0.0.1" {
					node.Stop()
				}
			}
		}
		if err != nil {
			break
		}
	}
	if read != len(data) || !bytes.Equal(h.Sum(nil), sha256Sum(data)) {
		t.Fatalf("read %d bytes with a node killed mid-way; checksum ok=%v", read, bytes.Equal(h.Sum(nil), sha256Sum(data)))
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
