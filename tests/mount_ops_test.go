package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// buildBinaries builds the commands once per test binary run.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "mogilefs-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../cmd/mogmount", "../cmd/mogilefsd", "../cmd/mogstored", "../cmd/mogadm").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// mogmountProc runs the mogmount binary on a fresh mount point.
type mogmountProc struct {
	cmd *exec.Cmd
	dir string
	log *os.File
}

func startMogmount(t *testing.T, trackers string, extra ...string) *mogmountProc {
	t.Helper()
	bin := binaries(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "mogmount.log"))
	args := append([]string{"--trackers=" + trackers, "--spool-dir=" + t.TempDir()}, extra...)
	cmd := exec.Command(bin+"/mogmount", append(args, dir)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &mogmountProc{cmd: cmd, dir: dir, log: logf}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		}
		exec.Command("fusermount3", "-uz", dir).Run()
		if t.Failed() {
			if b, _ := os.ReadFile(logf.Name()); len(b) > 0 {
				t.Logf("mogmount log:\n%s", tail(b, 4000))
			}
		}
	})
	waitFor(t, 10*time.Second, "mogmount to mount", func() bool { return isMountPoint(dir) })
	return p
}

func isMountPoint(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// peakRSS reads a process's peak resident memory in MiB.
func peakRSS(t *testing.T, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// TestMogmountBinaryMemoryAndSIGTERM writes and reads back a file of
// several GiB through the mogmount binary, checks that its memory stays
// flat, and that SIGTERM unmounts cleanly.
func TestMogmountBinaryMemoryAndSIGTERM(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	m := startMogmount(t, c.TrackerAddr)
	const gib = 2
	f := filepath.Join(m.dir, "test", "huge.bin")
	// A pattern that is not all zeros, reproducible for the checksum.
	gen := fmt.Sprintf("yes 'mogilefs-go %d GiB test pattern' | head -c %d", gib, int64(gib)<<30)
	want := sh(t, gen+" | sha256sum")
	sh(t, gen+fmt.Sprintf(" | dd of=%q bs=1M iflag=fullblock status=none", f))
	if got := sh(t, fmt.Sprintf("stat -c %%s %q", f)); strings.TrimSpace(got) != strconv.FormatInt(int64(gib)<<30, 10) {
		t.Fatalf("size = %s", got)
	}
	if got := sh(t, fmt.Sprintf("dd if=%q bs=1M status=none | sha256sum", f)); got != want {
		t.Fatalf("read back: %s; want %s", got, want)
	}
	rss := peakRSS(t, m.cmd.Process.Pid)
	t.Logf("mogmount peak RSS after writing and reading %d GiB: %d MiB", gib, rss)
	if rss > 200 {
		t.Errorf("mogmount peak RSS %d MiB; want well under 200", rss)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mogmount exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mogmount did not exit after SIGTERM")
	}
	if isMountPoint(m.dir) {
		t.Error("mount point still mounted after SIGTERM")
	}
}

// TestMountSurvivesTrackerDeath mounts with two trackers and kills one.
func TestMountSurvivesTrackerDeath(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	second, addr2 := c.StartTracker(nil)
	_ = second
	m := startMogmount(t, c.TrackerAddr+","+addr2, "--cache-ttl=1ms")
	d := filepath.Join(m.dir, "test")
	sh(t, fmt.Sprintf("echo before > %q", d+"/a"))
	ctx, cancel := contextWithTimeout(10 * time.Second)
	c.Tracker.Close(ctx) // the first tracker dies
	cancel()
	sh(t, fmt.Sprintf("echo after > %q && cat %q %q && ls %q", d+"/b", d+"/a", d+"/b", d))
	if got := sh(t, fmt.Sprintf("cat %q", d+"/b")); got != "after\n" {
		t.Errorf("after tracker death: %q", got)
	}
}

// TestMountConcurrentProcesses runs writers and readers at once: on
// different files, and on one file that is replaced while it is read.
// Readers must only ever see a whole version (a read that outlives the
// version it started on fails with ESTALE; it never mixes versions).
func TestMountConcurrentProcesses(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	m := startMogmount(t, c.TrackerAddr)
	d := filepath.Join(m.dir, "test")
	sh(t, fmt.Sprintf("head -c 1000000 /dev/zero | tr '\\0' A > %q", d+"/shared"))
	script := fmt.Sprintf(`set -e
d=%q
for w in 1 2 3; do (for i in $(seq 1 15); do head -c $((i*7000)) /dev/urandom > "$d/w$w-$i"; done) & done
(for i in $(seq 1 10); do
  if [ $((i%%2)) = 0 ]; then c=A; else c=B; fi
  head -c 1000000 /dev/zero | tr '\0' $c > "$d/shared.tmp.$i" && mv "$d/shared.tmp.$i" "$d/shared"
done) &
for r in 1 2 3; do (for i in $(seq 1 15); do
  snap=$(mktemp); cat "$d/shared" > $snap 2>/dev/null || { rm -f $snap; continue; }  # ESTALE: replaced while read
  n=$(tr -d A < $snap | wc -c); m=$(tr -d B < $snap | wc -c)
  if [ "$n" != 0 ] && [ "$m" != 0 ]; then echo "torn read: $n non-A and $m non-B bytes"; od -c $snap | head -5; exit 1; fi
  rm -f $snap
done) & done
wait
`, d)
	done := make(chan string, 1)
	go func() {
		out, err := shErr(script)
		if err != nil {
			out += err.Error()
		}
		done <- out
	}()
	select {
	case out := <-done:
		if strings.Contains(out, "torn") || strings.Contains(out, "exit status") {
			t.Fatalf("concurrent run: %s", out)
		}
	case <-time.After(150 * time.Second):
		t.Fatal("concurrent run did not finish: deadlock?")
	}
	if got := strings.TrimSpace(sh(t, fmt.Sprintf("ls %q | grep -c '^w'", d))); got != "45" {
		t.Errorf("%s writer files; want 45", got)
	}
	if got := strings.TrimSpace(sh(t, fmt.Sprintf("stat -c %%s %q", d+"/w2-15"))); got != "105000" {
		t.Errorf("w2-15 size = %s", got)
	}
}

// mogmount refuses clearly what cannot work: --help is not an error, a
// class no domain has is refused before mounting, and a second mount on
// a live mount point is refused instead of hiding the first.
func TestMogmountRefusals(t *testing.T) {
	condSkipFUSE(t)
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	bin := binaries(t)
	out, err := exec.Command(bin+"/mogmount", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: mogmount") || !strings.Contains(string(out), "MOUNTPOINT") {
		t.Errorf("mogmount --help: %v\n%s", err, out)
	}
	dir := t.TempDir()
	out, err = exec.Command(bin+"/mogmount", "--trackers="+c.TrackerAddr, "--class=thumbs", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "class thumbs does not exist in any domain (test)") {
		t.Errorf("mogmount --class=thumbs: %v\n%s", err, out)
	}
	if isMountPoint(dir) {
		t.Error("mounted with a class that does not exist")
	}
	p := startMogmount(t, c.TrackerAddr)
	out, err = exec.Command(bin+"/mogmount", "--trackers="+c.TrackerAddr, p.dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already mounted") {
		t.Errorf("a second mogmount on a live mount point: %v\n%s", err, out)
	}
	if got := sh(t, fmt.Sprintf("ls %q", p.dir)); got != "test\n" {
		t.Errorf("the first mount after the second was refused: %q", got)
	}
}

// An /etc/fstab entry of type fuse.mogmount works through mount(8) and
// the helper make install puts in /sbin: mount returns once the mount is
// up (mogmount goes to the background), and umount ends the daemon.
func TestMountFromFstab(t *testing.T) {
	condSkipFUSE(t)
	if os.Getuid() != 0 {
		t.Skip("mount(8) with a helper in /sbin needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount(8)")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	bin := binaries(t)
	helper := "/sbin/mount.fuse.mogmount"
	if old, err := os.ReadFile(helper); err == nil {
		t.Cleanup(func() { os.WriteFile(helper, old, 0o755) })
	} else {
		t.Cleanup(func() { os.Remove(helper) })
	}
	tmpl, err := os.ReadFile("../packaging/mount.fuse.mogmount")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, []byte(strings.ReplaceAll(string(tmpl), "@BINDIR@", bin)), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	logPath := filepath.Join(t.TempDir(), "mogmount.log")
	fstab := filepath.Join(t.TempDir(), "fstab")
	line := fmt.Sprintf("%s  %s  fuse.mogmount  allow_other,_netdev,log_file=%s,spool_dir=%s  0 0\n", c.TrackerAddr, dir, logPath, t.TempDir())
	os.WriteFile(fstab, []byte(line), 0o644)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	start := time.Now()
	cmd := exec.Command("mount", "-T", fstab, dir)
	cmd.Env = []string{} // mount(8) runs its helpers with an empty PATH
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("mount: %v\n%s\nlog:\n%s", err, out, log)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("mount took %v", took)
	}
	if !isMountPoint(dir) {
		t.Fatal("mount returned without the mount up")
	}
	if got := sh(t, fmt.Sprintf("ls %q", dir)); got != "test\n" {
		t.Errorf("ls = %q", got)
	}
	pid := strings.TrimSpace(sh(t, fmt.Sprintf("pgrep -f -- '^[^ ]*/mogmount .*%s' || true", dir)))
	if pid == "" || strings.Contains(pid, "\n") {
		t.Fatalf("mogmount processes: %q; want one", pid)
	}
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the daemon to exit after umount", func() bool {
		return exec.Command("kill", "-0", pid).Run() != nil
	})
}

// The README's fstab line is a network mount for systemd at boot: its
// generator makes a mount unit that remote-fs.target requires, which
// systemd orders after the network is online (_netdev).
func TestReadmeFstabLineIsANetworkMount(t *testing.T) {
	gen := "/lib/systemd/system-generators/systemd-fstab-generator"
	if _, err := os.Stat(gen); err != nil {
		t.Skip("no systemd fstab generator")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	lines := strings.Split(string(readme), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "# /etc/fstab") && i+1 < len(lines) {
			line = lines[i+1]
		}
	}
	f := strings.Fields(line)
	if len(f) < 4 || f[2] != "fuse.mogmount" || !strings.Contains(f[3], "_netdev") {
		t.Fatalf("the README's fstab line %q: want a fuse.mogmount entry with _netdev", line)
	}
	dir := t.TempDir()
	fstab := filepath.Join(dir, "fstab")
	os.WriteFile(fstab, []byte(line+"\n"), 0o644)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(gen, out, out, out)
	cmd.Env = append(os.Environ(), "SYSTEMD_FSTAB="+fstab, "SYSTEMD_PROC_CMDLINE=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", gen, err, b)
	}
	unit := strings.TrimPrefix(strings.ReplaceAll(f[1], "/", "-"), "-") + ".mount"
	if _, err := os.Lstat(filepath.Join(out, "remote-fs.target.requires", unit)); err != nil {
		t.Errorf("%s is not required by remote-fs.target (a local mount, started before the network): %v", unit, err)
	}
	b, err := os.ReadFile(filepath.Join(out, unit))
	if err != nil || !strings.Contains(string(b), "Type=fuse.mogmount") || !strings.Contains(string(b), "Before=remote-fs.target") {
		t.Errorf("generated %s:\n%s (%v)", unit, b, err)
	}
}
