package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/fusefs"
)

// nullFS is the ceiling of the FUSE path: one file "null" whose reads
// are zeros from memory and whose writes are discarded, mounted with the
// same library and options as mogmount.
type nullFS struct{ size int64 }

func (n nullFS) Root() (fs.Node, error) { return nullDir(n), nil }

type nullDir struct{ size int64 }

func (d nullDir) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Inode, a.Mode = 1, os.ModeDir|0o755
	return nil
}

func (d nullDir) Lookup(ctx context.Context, name string) (fs.Node, error) {
	if name == "null" {
		return nullFile(d), nil
	}
	return nil, fuse.Errno(syscall.ENOENT)
}

func (d nullDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	return []fuse.Dirent{{Inode: 2, Name: "null", Type: fuse.DT_File}}, nil
}

type nullFile struct{ size int64 }

var zeros = make([]byte, 1<<20)

func (f nullFile) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Inode, a.Mode, a.Size = 2, 0o644, uint64(f.size)
	return nil
}

func (f nullFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	return f, nil
}

func (f nullFile) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	n := int64(req.Size)
	if rem := f.size - req.Offset; rem < n {
		n = max(rem, 0)
	}
	resp.Data = zeros[:n]
	return nil
}

func (f nullFile) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	resp.Size = len(req.Data)
	return nil
}

func (f nullFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return f.Attr(ctx, &resp.Attr)
}

// mountNull mounts a nullFS and returns its directory and an unmount func.
func mountNull(dir string, size int64) (func(), error) {
	conn, err := fuse.Mount(dir, fuse.FSName("nullfs"), fuse.MaxReadahead(1<<20), fuse.AsyncRead())
	if err != nil {
		return nil, err
	}
	// The same collector target as mogmount: bazil's own allocations
	// per request are the same in both.
	old := debug.SetGCPercent(fusefs.DefaultGCPercent)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fs.Serve(conn, nullFS{size}) }()
	return func() {
		fuse.Unmount(dir)
		wg.Wait()
		conn.Close()
		debug.SetGCPercent(old)
	}, nil
}

// ceiling is the smaller of the HTTP and null-FS rates; the HTTP rate is
// absent (0) when its group was not measured in this run.
func ceiling(http, null float64) float64 {
	if http == 0 {
		return null
	}
	return min(http, null)
}

// rate returns MiB/s for size bytes in secs seconds.
func rate(size int64, secs float64) float64 { return float64(size) / (1 << 20) / secs }

func peakRSSMiB(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

// startMogmount runs the mogmount binary on dir, new files in class.
func startMogmount(c *cluster, dir, class string) (*exec.Cmd, error) {
	os.MkdirAll(dir, 0o755)
	logf, _ := os.Create(dir + ".log")
	cmd := exec.Command(filepath.Join(c.bin, "mogmount"), "--trackers="+c.tracker, "--class="+class, "--spool-dir="+dir+".spool", "--log-level=warn", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "bench")); err == nil {
			return cmd, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("mogmount did not mount %s", dir)
}

func stopMogmount(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// fuseFigures measures the mount against the null file system.
func fuseFigures(cfg Config, c *cluster, res Results, say func(string, ...any)) error {
	count := strconv.FormatInt(cfg.BigSize>>20, 10)
	null := filepath.Join(cfg.Dir, "nullmnt")
	os.MkdirAll(null, 0o755)
	unmount, err := mountNull(null, cfg.BigSize)
	if err != nil {
		return err
	}
	nr, err1 := cfg.repeat(func() (float64, error) {
		s, err := dd("if="+null+"/null", "of=/dev/null", "iflag=nocache")
		return rate(cfg.BigSize, s), err
	})
	nw, err2 := cfg.repeat(func() (float64, error) {
		s, err := dd("if=/dev/zero", "of="+null+"/null", "count="+count, "conv=notrunc")
		return rate(cfg.BigSize, s), err
	})
	unmount()
	if err1 != nil || err2 != nil {
		return fmt.Errorf("null fs: %v %v", err1, err2)
	}
	res["fuse_null_read_mib_s"], res["fuse_null_write_mib_s"] = nr, nw

	mnt := filepath.Join(cfg.Dir, "mnt")
	m, err := startMogmount(c, mnt, "one")
	if err != nil {
		return err
	}
	big := filepath.Join(mnt, "bench", "big.bin")
	run := 0
	w, err := cfg.repeat(func() (float64, error) {
		run++
		s, err := dd("if=/dev/zero", "of="+big, "count="+count)
		return rate(cfg.BigSize, s), err
	})
	if err != nil {
		stopMogmount(m)
		return err
	}
	// The writes leave a GiB of dirty pages on the node: flush them first,
	// so that the reads do not compete with their writeback.
	exec.Command("sync").Run()
	r, err := cfg.repeat(func() (float64, error) {
		// nocache: each run goes through the mount, not the page cache the
		// kernel keeps for an unchanged file.
		s, err := dd("if="+big, "of=/dev/null", "iflag=nocache")
		return rate(cfg.BigSize, s), err
	})
	if err != nil {
		stopMogmount(m)
		return err
	}
	res["fuse_seq_write_mib_s"], res["fuse_seq_read_mib_s"] = w, r
	res["mogmount_peak_rss_mib"] = peakRSSMiB(m.Process.Pid)
	res["fuse_read_ratio"] = r / ceiling(res["http_get_mib_s"], nr)
	res["fuse_write_ratio"] = w / ceiling(res["http_put_mib_s"], nw)
	say("FUSE sequential figures done")

	// cp -r of 2000 files of 4 KiB.
	src := filepath.Join(cfg.Dir, "small")
	os.MkdirAll(src, 0o755)
	buf := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 2000; i++ {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), buf, 0o644)
	}
	k := 0
	sf, err := cfg.repeat(func() (float64, error) {
		k++
		start := time.Now()
		if out, err := exec.Command("cp", "-r", src, filepath.Join(mnt, "bench", fmt.Sprintf("small%d", k))).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("cp -r: %v %s", err, out)
		}
		return 2000 / time.Since(start).Seconds(), nil
	})
	stopMogmount(m)
	if err != nil {
		return err
	}
	res["fuse_small_files_per_s"] = sf
	say("FUSE small files done")

	// ls -l of a directory of 10,000 keys: a fresh mount (cold), again (warm).
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10000; i += 8 {
				if _, err := c.client.Upload(ctx, "bench", fmt.Sprintf("ls10k/k%05d", i), "one", bytes.NewReader(nil), 0, client.UploadOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var cold, warm []float64
	for i := 0; i < cfg.Runs; i++ {
		m, err := startMogmount(c, filepath.Join(cfg.Dir, fmt.Sprintf("lsmnt%d", i)), "one")
		if err != nil {
			return err
		}
		for j, dst := range []*[]float64{&cold, &warm} {
			start := time.Now()
			out, err := exec.Command("bash", "-c", "ls -l "+filepath.Join(cfg.Dir, fmt.Sprintf("lsmnt%d", i), "bench", "ls10k")+" | wc -l").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "10001" {
				stopMogmount(m)
				return fmt.Errorf("ls -l (%d): %v %q", j, err, out)
			}
			*dst = append(*dst, float64(time.Since(start).Milliseconds()))
		}
		stopMogmount(m)
	}
	res["fuse_ls_10k_cold_ms"], res["fuse_ls_10k_warm_ms"] = median(cold), median(warm)
	return nil
}
