package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The peers group: the same workloads, one after the other, on our mount
// (as configured by default, then in the relaxed mode: --fsync=false on
// the tracker and the nodes, a cluster of its own) and on MooseFS 3.0 (Debian's packages: a master, two chunkservers,
// mfsmount, two copies per file), each side's CPU (client and servers)
// read from /proc. MooseFS refuses loopback addresses between its parts,
// so they talk over addresses of a bridge of their own (mfsbench0,
// 10.77.0.1-3), made and removed here; this needs root.

// peerSide is one file system under test.
type peerSide struct {
	name string
	root string       // the directory workloads run in
	pids func() []int // the processes whose CPU is counted
	// remount makes the client cold (a fresh mount) and returns the new
	// root.
	remount func() (string, error)
}

// quiesce waits until the processes of every side together use under a
// twentieth of a core over half a second, for at most limit: the work a
// side left running in the background (the replication of a big file,
// the deletion of a removed tree) would otherwise be measured against the
// next side. It returns how long it waited and whether they went quiet.
func quiesce(sides []*peerSide, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	var pids []int
	for _, s := range sides {
		pids = append(pids, s.pids()...)
	}
	const window = 500 * time.Millisecond
	for time.Since(start) < limit {
		before := cpuTicks(pids)
		time.Sleep(window)
		if used := cpuTicks(pids) - before; float64(used)/ticksPerSecond < window.Seconds()/20 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// cpuTicks returns the user+system CPU time of pids, in clock ticks.
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces: count from its end.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			sum += u + st
		}
	}
	return sum
}

// ticksPerSecond is USER_HZ, 100 on Linux.
const ticksPerSecond = 100

// workload is one row of the peers table.
type workload struct {
	name  string
	unit  string // "files/s", "MiB/s" or "s", "ms"
	ops   int    // operations, for CPU per operation
	prep  func(root string) error
	run   func(root string) error
	after func(root string) error // cleanup, not timed
	// rate: the figure is ops per second, else seconds (lower is better).
	rate bool
}

// sh runs a shell command, its output in the error.
func sh(cmd string) error {
	out, err := exec.Command("bash", "-c", cmd).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dropCaches makes reads cold: dirty pages written, page cache dropped.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

// peerWorkloads are the rows, against data prepared in dir.
func peerWorkloads(cfg Config, dir string) ([]workload, error) {
	small := filepath.Join(dir, "small")
	os.MkdirAll(small, 0o755)
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i)
	}
	for i := 0; i < 2000; i++ {
		if err := os.WriteFile(filepath.Join(small, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			return nil, err
		}
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	tarball := filepath.Join(dir, "gosrc.tar")
	if err := sh(fmt.Sprintf("tar cf %q -C %q src", tarball, strings.TrimSpace(string(goroot)))); err != nil {
		return nil, err
	}
	count := func(cmd string) int {
		out, _ := exec.Command("bash", "-c", cmd+" | wc -l").Output()
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	docs := count("find /usr/share/doc")
	goEntries := count(fmt.Sprintf("tar tf %q", tarball))
	mib := int(cfg.BigSize >> 20)
	return []workload{
		{name: "cp_small", unit: "files/s", ops: 2000, rate: true,
			run: func(r string) error { return sh(fmt.Sprintf("cp -r %q %q", small, r+"/small")) }},
		{name: "rm_small", unit: "files/s", ops: 2000, rate: true,
			run: func(r string) error { return sh(fmt.Sprintf("rm -r %q", r+"/small")) }},
		{name: "rsync_doc", unit: "s", ops: docs,
			run:   func(r string) error { return sh(fmt.Sprintf("rsync -a /usr/share/doc/ %q", r+"/doc/")) },
			after: func(r string) error { return sh(fmt.Sprintf("rm -rf %q", r+"/doc")) }},
		{name: "tar_x", unit: "s", ops: goEntries,
			run: func(r string) error { return sh(fmt.Sprintf("mkdir %q && tar xf %q -C %q", r+"/go", tarball, r+"/go")) }},
		{name: "git_commit", unit: "s", ops: goEntries,
			// Without gc.auto=0, git's automatic gc would run detached after
			// the commit and race the rm -rf that follows (on either side).
			run: func(r string) error {
				return sh(fmt.Sprintf("cd %q && git init -q && git config gc.auto 0 && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -q -m tree", r+"/go/src"))
			}},
		{name: "rm_tree", unit: "s", ops: goEntries,
			run: func(r string) error { return sh(fmt.Sprintf("rm -rf %q", r+"/go")) }},
		{name: "touch_10k", unit: "files/s", ops: 10000, rate: true,
			run: func(r string) error {
				return sh(fmt.Sprintf("mkdir %q && cd %q && seq -f f%%05g 10000 | xargs touch", r+"/t10k", r+"/t10k"))
			}},
		{name: "seq_write", unit: "MiB/s", ops: mib, rate: true,
			run: func(r string) error {
				_, err := dd("if=/dev/zero", "of="+r+"/big", "count="+strconv.Itoa(mib))
				return err
			}},
		{name: "seq_read_cold", unit: "MiB/s", ops: mib, rate: true,
			prep: func(string) error { dropCaches(); return nil },
			run: func(r string) error {
				_, err := dd("if="+r+"/big", "of=/dev/null")
				return err
			},
			after: func(r string) error { return os.Remove(r + "/big") }},
	}, nil
}

// peersFigures runs the workloads on our mount and on MooseFS.
func peersFigures(cfg Config, res Results, say func(string, ...any)) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the peers group needs root (it installs MooseFS and makes a bridge for it)")
	}
	dir := filepath.Join(cfg.Dir, "peers")
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	switch cfg.PeersDisk {
	case "image":
		unmount, err := peersDisk(dir)
		if err != nil {
			return fmt.Errorf("making the peers' disk (--peers-disk=image): %w", err)
		}
		defer unmount()
		say("peers' data on a fresh ext4 (with its journal) on a loop device, mounted on %s", dir)
	case "", "dir":
		say("peers' data on the scratch directory's file system (%s)", dir)
	default:
		return fmt.Errorf("--peers-disk=%q: want image or dir", cfg.PeersDisk)
	}
	wls, err := peerWorkloads(cfg, dir)
	if err != nil {
		return err
	}
	mfs, stopMFS, err := startMooseFS(filepath.Join(dir, "moosefs"))
	if err != nil {
		return err
	}
	defer stopMFS()
	say("MooseFS up: %s", mfs.root)
	// Our default mode on a cluster of its own, its data on the peers'
	// disk as the others' are.
	oc, err := startCluster(cfg.Bin, filepath.Join(dir, "ours-cluster"), "", true)
	if err != nil {
		return err
	}
	defer oc.stop()
	ours, stopOurs, err := startOurSide(oc, "ours", filepath.Join(dir, "ours"))
	if err != nil {
		return err
	}
	defer stopOurs()
	// The relaxed mode (--fsync=false on the tracker and the nodes):
	// MooseFS's promise, on a cluster of its own.
	rc, err := startCluster(cfg.Bin, filepath.Join(dir, "relaxed-cluster"), "", true, "--fsync=false")
	if err != nil {
		return err
	}
	defer rc.stop()
	relaxed, stopRelaxed, err := startOurSide(rc, "relaxed", filepath.Join(dir, "relaxed"))
	if err != nil {
		return err
	}
	defer stopRelaxed()
	sides := []*peerSide{ours, relaxed, mfs}
	for _, w := range wls {
		var fig [3]float64
		for i, s := range sides {
			if w.prep != nil {
				if err := w.prep(s.root); err != nil {
					return fmt.Errorf("%s on %s: %w", w.name, s.name, err)
				}
			}
			if waited, ok := quiesce(sides, 2*time.Minute); !ok {
				say("%s on %s: the systems were still busy after %v (replication, deletion): measured anyway", w.name, s.name, waited.Round(time.Second))
			}
			cpu0, t0 := cpuTicks(s.pids()), time.Now()
			if err := w.run(s.root); err != nil {
				return fmt.Errorf("%s on %s: %w", w.name, s.name, err)
			}
			secs := time.Since(t0).Seconds()
			// The work a workload leaves running (replication, the
			// removal of deleted files' bytes, on any side) is its CPU
			// too: counted until the side is quiet.
			if waited, ok := quiesce([]*peerSide{s}, 2*time.Minute); !ok {
				say("%s on %s: still busy %v after the workload: CPU counted until then", w.name, s.name, waited.Round(time.Second))
			}
			cpuMS := float64(cpuTicks(s.pids())-cpu0) * 1000 / ticksPerSecond
			if w.after != nil {
				if err := w.after(s.root); err != nil {
					return fmt.Errorf("%s on %s (cleaning up): %w", w.name, s.name, err)
				}
			}
			fig[i] = secs
			if w.rate {
				fig[i] = float64(w.ops) / secs
			}
			prefix := ""
			if s != ours {
				prefix = s.name + "_"
			}
			res["peer_"+w.name+"_"+s.name] = fig[i]
			res[prefix+w.name+"_cpu_ms_per_op"] = cpuMS / float64(w.ops)
			res[prefix+w.name+"_cpu_s"] = cpuMS / 1000
		}
		ratio := func(i int) float64 {
			if !w.rate {
				return fig[2] / fig[i] // seconds: theirs over ours
			}
			return fig[i] / fig[2]
		}
		res["peer_"+w.name+"_ratio"] = ratio(0)
		res["peer_"+w.name+"_relaxed_ratio"] = ratio(1)
		say("%-14s ours %9.1f %-7s relaxed %9.1f %-7s moosefs %9.1f %-7s ×%.2f / ×%.2f  CPU ms/op ours %.2f relaxed %.2f moosefs %.2f", w.name,
			fig[0], w.unit, fig[1], w.unit, fig[2], w.unit, ratio(0), ratio(1),
			res[w.name+"_cpu_ms_per_op"], res["relaxed_"+w.name+"_cpu_ms_per_op"], res["moosefs_"+w.name+"_cpu_ms_per_op"])
	}
	// ls -l of the 10,000 files touched: a fresh client (cold), again (warm).
	var ls [3][2]float64
	for i, s := range sides {
		root, err := s.remount()
		if err != nil {
			return fmt.Errorf("remounting %s: %w", s.name, err)
		}
		s.root = root
		for j := range 2 {
			t0 := time.Now()
			out, err := exec.Command("bash", "-c", fmt.Sprintf("ls -l %q | wc -l", root+"/t10k")).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "10001" {
				return fmt.Errorf("ls -l on %s: %v %q", s.name, err, out)
			}
			ls[i][j] = float64(time.Since(t0).Milliseconds())
		}
	}
	for j, temp := range []string{"cold", "warm"} {
		res["peer_ls_10k_"+temp+"_ours"], res["peer_ls_10k_"+temp+"_relaxed"], res["peer_ls_10k_"+temp+"_moosefs"] = ls[0][j], ls[1][j], ls[2][j]
		res["peer_ls_10k_"+temp+"_ratio"] = ls[2][j] / max(ls[0][j], 1)
		res["peer_ls_10k_"+temp+"_relaxed_ratio"] = ls[2][j] / max(ls[1][j], 1)
		say("ls_10k_%-7s ours %9.0f ms      relaxed %9.0f ms      moosefs %9.0f ms      ×%.2f / ×%.2f", temp, ls[0][j], ls[1][j], ls[2][j],
			res["peer_ls_10k_"+temp+"_ratio"], res["peer_ls_10k_"+temp+"_relaxed_ratio"])
	}
	return nil
}

// peersDisk mounts a fresh ext4 file system on dir: a sparse image file
// beside it on a loop device, made with mkfs's defaults (so with a
// journal, as a deployment's data disks would be) and its inode tables
// written at once (no background zeroing during the run). Every side's
// data goes there. This VM's own file system runs without a journal, and
// there ext4 skips, one by one, the inodes of its block group deleted in
// the last minutes when it makes a file (recently_deleted, checked only
// without a journal): creating a file cost 150-350 µs of CPU instead of
// 12 after a tree was removed. That charged our nodes, which remove the
// bytes of deleted files at once, and not MooseFS's chunkservers, which
// keep them in the trash for a day. It returns the function that
// unmounts it and removes the image.
func peersDisk(dir string) (func(), error) {
	img := dir + ".img"
	if err := sh(fmt.Sprintf("truncate -s 24G %q && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %q && mount -o loop %q %q", img, img, img, dir)); err != nil {
		os.Remove(img)
		return nil, err
	}
	return func() {
		if sh(fmt.Sprintf("umount %q", dir)) != nil {
			sh(fmt.Sprintf("umount -l %q", dir))
		}
		os.Remove(img)
	}, nil
}

// startOurSide mounts our cluster with two copies per file.
func startOurSide(c *cluster, name, dir string) (*peerSide, func(), error) {
	var m *exec.Cmd
	mount := func() (string, error) {
		if m != nil {
			stopMogmount(m)
		}
		var err error
		m, err = startMogmount(c, dir, "two")
		if err != nil {
			return "", err
		}
		root := filepath.Join(dir, "bench", "peers")
		return root, os.MkdirAll(root, 0o755)
	}
	root, err := mount()
	if err != nil {
		return nil, nil, err
	}
	s := &peerSide{name: name, root: root, remount: mount, pids: func() []int {
		pids := []int{m.Process.Pid}
		for _, p := range c.procs {
			if p.ProcessState == nil {
				pids = append(pids, p.Process.Pid)
			}
		}
		return pids
	}}
	return s, func() { stopMogmount(m) }, nil
}

// The MooseFS lab's addresses: the master, then the two chunkservers.
const (
	mfsBridge = "mfsbench0"
	mfsMaster = "10.77.0.1"
)

// startMooseFS installs MooseFS when missing and starts a master, two
// chunkservers and a client mounted on dir/mnt, goal 2.
func startMooseFS(dir string) (*peerSide, func(), error) {
	if _, err := exec.LookPath("mfsmaster"); err != nil {
		cmd := exec.Command("apt-get", "install", "-y", "moosefs-master", "moosefs-chunkserver", "moosefs-client")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("installing MooseFS: %v: %s", err, out)
		}
	}
	exec.Command("ip", "link", "del", mfsBridge).Run() // left by an interrupted run
	steps := [][]string{{"ip", "link", "add", mfsBridge, "type", "bridge"}}
	for i := 1; i <= 3; i++ {
		steps = append(steps, []string{"ip", "addr", "add", fmt.Sprintf("10.77.0.%d/24", i), "dev", mfsBridge})
	}
	steps = append(steps, []string{"ip", "link", "set", mfsBridge, "up"})
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", mfsBridge).Run()
			return nil, nil, fmt.Errorf("%v: %v: %s", s, err, out)
		}
	}
	var procs []*exec.Cmd
	var client *exec.Cmd
	mnt := filepath.Join(dir, "mnt")
	stop := func() {
		if client != nil {
			exec.Command("fusermount3", "-u", mnt).Run()
			exec.Command("umount", "-l", mnt).Run()
			client.Process.Signal(syscall.SIGTERM)
			client.Wait()
		}
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Process.Signal(syscall.SIGTERM)
			procs[i].Wait()
		}
		exec.Command("ip", "link", "del", mfsBridge).Run()
	}
	fail := func(err error) (*peerSide, func(), error) { stop(); return nil, nil, err }
	start := func(name string, args ...string) (*exec.Cmd, error) {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		return cmd, cmd.Start()
	}
	os.MkdirAll(filepath.Join(dir, "master"), 0o755)
	empty, err := os.ReadFile("/var/lib/mfs/metadata.mfs.empty")
	if err != nil {
		return fail(err)
	}
	os.WriteFile(filepath.Join(dir, "master", "metadata.mfs"), empty, 0o644)
	os.WriteFile(filepath.Join(dir, "exports.cfg"), []byte("* / rw,alldirs,maproot=0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cfg"), []byte(fmt.Sprintf(
		"WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s\n"+
			"MATOML_LISTEN_HOST = %s\nMATOCS_LISTEN_HOST = %s\nMATOCL_LISTEN_HOST = %s\n",
		filepath.Join(dir, "master"), filepath.Join(dir, "exports.cfg"), mfsMaster, mfsMaster, mfsMaster)), 0o644)
	p, err := start("mfsmaster", "-f", "-c", filepath.Join(dir, "master.cfg"))
	if err != nil {
		return fail(err)
	}
	procs = append(procs, p)
	for i := 1; i <= 2; i++ {
		cs := filepath.Join(dir, fmt.Sprintf("cs%d", i))
		os.MkdirAll(filepath.Join(cs, "hdd"), 0o755)
		os.WriteFile(filepath.Join(cs, "hdd.cfg"), []byte(filepath.Join(cs, "hdd")+"\n"), 0o644)
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		os.WriteFile(cs+".cfg", []byte(fmt.Sprintf(
			"WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nHDD_CONF_FILENAME = %s\n"+
				"MASTER_HOST = %s\nBIND_HOST = %s\nCSSERV_LISTEN_HOST = %s\nHDD_LEAVE_SPACE_DEFAULT = 1GiB\n",
			cs, filepath.Join(cs, "hdd.cfg"), mfsMaster, ip, ip)), 0o644)
		p, err := start("mfschunkserver", "-f", "-c", cs+".cfg")
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	os.MkdirAll(mnt, 0o755)
	mount := func() (string, error) {
		if client != nil {
			exec.Command("fusermount3", "-u", mnt).Run()
			exec.Command("umount", mnt).Run()
			client.Process.Signal(syscall.SIGTERM)
			client.Wait()
			client = nil
		}
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for {
			client, err = start("mfsmount", "-f", mnt, "-H", mfsMaster)
			if err != nil {
				return "", err
			}
			if waitMounted(mnt, 10*time.Second) {
				break
			}
			client.Process.Kill()
			client.Wait()
			client = nil
			if time.Now().After(deadline) {
				return "", fmt.Errorf("mfsmount did not mount %s; see %s", mnt, dir)
			}
			time.Sleep(time.Second)
		}
		root := filepath.Join(mnt, "peers")
		os.MkdirAll(root, 0o755)
		return root, nil
	}
	root, err := mount()
	if err != nil {
		return fail(err)
	}
	if err := sh(fmt.Sprintf("mfssetgoal -r 2 %q", root)); err != nil {
		return fail(err)
	}
	// Both chunkservers registered: a written file gets its two copies.
	probe := filepath.Join(root, "probe")
	deadline := time.Now().Add(60 * time.Second)
	for {
		os.WriteFile(probe, []byte("x"), 0o644)
		out, _ := exec.Command("mfscheckfile", probe).CombinedOutput()
		if strings.Contains(string(out), "chunks with 2 copies") {
			os.Remove(probe)
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("MooseFS chunkservers did not register: %s; see %s", out, dir))
		}
		time.Sleep(time.Second)
	}
	s := &peerSide{name: "moosefs", root: root, remount: mount, pids: func() []int {
		var pids []int
		for _, p := range append(procs, client) {
			if p != nil {
				pids = append(pids, p.Process.Pid)
			}
		}
		return pids
	}}
	return s, stop, nil
}

// waitMounted reports whether dir became a mount point within d.
func waitMounted(dir string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var st, parent syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev {
			return true
		}
	}
	return false
}
