package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Devices lists the device directories (devN) under the docroot, sorted
// by number.
func (s *Server) Devices() ([]string, error) {
	ents, err := os.ReadDir(s.cfg.DocRoot)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if devDirRE.MatchString(e.Name()) {
			if st, err := os.Stat(filepath.Join(s.cfg.DocRoot, e.Name())); err == nil && st.IsDir() {
				out = append(out, e.Name())
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) < len(out[j])
		}
		return out[i] < out[j]
	})
	return out, nil
}

// Usage is one device's space, in KiB as the usage file states it.
type Usage struct {
	Available, Total, Used int64
	Device, Disk           string
	Time                   int64
}

// Format renders u in the usage file's `key: value` format.
func (u Usage) Format() string {
	pct := int64(0)
	if u.Total > 0 {
		pct = (u.Used*100 + u.Total - 1) / u.Total
	}
	return fmt.Sprintf("available: %d\ndevice: %s\ndisk: %s\ntime: %d\ntotal: %d\nuse: %d%%\nused: %d\n",
		u.Available, u.Device, u.Disk, u.Time, u.Total, pct, u.Used)
}

// measure reads the space of the file system holding dir.
func measure(dir string) (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Usage{}, err
	}
	bs := int64(st.Bsize)
	used := (int64(st.Blocks) - int64(st.Bfree)) * bs / 1024
	avail := int64(st.Bavail) * bs / 1024
	return Usage{Available: avail, Used: used, Total: used + avail, Disk: dir, Device: mountSource(dir), Time: time.Now().Unix()}, nil
}

// mountSource names the block device (or file system source) that dir is
// on, from /proc/self/mounts; "" when unknown.
func mountSource(dir string) string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, src := -1, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		mp := fields[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, src = len(mp), fields[0]
		}
	}
	return src
}

// WriteUsage rewrites the usage file of every device once.
func (s *Server) WriteUsage() error {
	devs, err := s.Devices()
	if err != nil {
		return err
	}
	var firstErr error
	for _, d := range devs {
		dir := filepath.Join(s.cfg.DocRoot, d)
		u, err := measure(dir)
		if err == nil {
			err = writeFileAtomic(dir, "usage", []byte(u.Format()))
		}
		if err != nil {
			s.log.Warn("mogstored: cannot write usage file", "device", d, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// writeFileAtomic replaces dir/name so that readers see either the old or
// the new content, never an empty file. On a full disk, where no new
// file can be made, it rewrites the existing one in place (its block is
// already allocated): a full device must still report that it is full.
func writeFileAtomic(dir, name string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tmp := "." + name + ".tmp"
	err = root.WriteFile(tmp, data, 0o644)
	if err == nil {
		return root.Rename(tmp, name)
	}
	root.Remove(tmp)
	if !errors.Is(mapNoSpace(err), errNoSpace) {
		return err
	}
	f, ferr := root.OpenFile(name, os.O_WRONLY, 0)
	if ferr != nil {
		return err
	}
	defer f.Close()
	if _, werr := f.WriteAt(data, 0); werr != nil {
		return werr
	}
	return f.Truncate(int64(len(data)))
}

// RunUsage rewrites usage files every UsageInterval, and sweeps
// temporary files left by interrupted PUTs at start and every
// SweepInterval, until ctx ends.
func (s *Server) RunUsage(ctx context.Context) {
	s.WriteUsage()
	go func() {
		s.SweepTemp(ctx, time.Now())
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.SweepTemp(ctx, now)
			}
		}
	}()
	t := time.NewTicker(s.cfg.UsageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.WriteUsage()
			s.dirs.sweep(now)
		}
	}
}

// SweepTemp removes the temporary files of PUTs that ended without
// finishing (the node was killed or lost power mid-upload) whose last
// write is older than TempMaxAge, from every device. It returns how many
// it removed.
func (s *Server) SweepTemp(ctx context.Context, now time.Time) int {
	devs, err := s.Devices()
	if err != nil {
		return 0
	}
	removed := 0
	for _, d := range devs {
		dir := filepath.Join(s.cfg.DocRoot, d)
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || e.IsDir() || !tempNameRE.MatchString(e.Name()) {
				return nil
			}
			info, err := e.Info()
			if err != nil || now.Sub(info.ModTime()) < s.cfg.TempMaxAge {
				return nil
			}
			if err := os.Remove(p); err == nil {
				removed++
				s.log.Info("mogstored: removed the temporary file of an interrupted upload", "path", p, "size", info.Size(), "modified", info.ModTime())
			}
			return nil
		})
	}
	return removed
}

// FilesystemHeader is the response header of a usage file that names the
// file system the device is on (machine and device number), so that a
// tracker counts devices that share a disk once. The usage file itself
// stays in the original's format.
const FilesystemHeader = "X-Mogstored-Filesystem"

// machineID identifies this machine: /etc/machine-id, else the host name.
var machineID = sync.OnceValue(func() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	h, _ := os.Hostname()
	return h
})

// filesystemID names the file system holding dir on this machine.
func filesystemID(dir string) string {
	major, minor, ok := devNumbers(dir)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", machineID(), major, minor)
}
