package fusefs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// MountOptions are the kernel-facing options of a mount.
type MountOptions struct {
	// AllowOther lets other users see the mount (needs user_allow_other
	// in /etc/fuse.conf when not root).
	AllowOther bool
	// MaxReadahead is the kernel read-ahead in bytes (default 1 MiB).
	MaxReadahead uint32
	// ReadOnly mounts read-only.
	ReadOnly bool
	// FSName is shown as the mount's source (default "mogilefs").
	FSName string
}

// Mounted is a live mount.
type Mounted struct {
	Dir  string
	FS   *FS
	conn *fuse.Conn
	done chan error
}

// Mount mounts f at dir and serves it in the background. A stale mount
// left by a crashed mogmount ("transport endpoint is not connected") is
// cleared first.
func Mount(dir string, f *FS, o MountOptions) (*Mounted, error) {
	if _, err := os.Stat(dir); errors.Is(err, syscall.ENOTCONN) {
		f.log.Warn("fusefs: clearing a stale mount left by a previous mogmount", "dir", dir)
		exec.Command("fusermount3", "-uz", dir).Run()
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mount point %s is not a directory", dir)
	}
	if isMounted(dir) {
		// FUSE would stack a second mount over the live one and hide it.
		return nil, fmt.Errorf("mount point %s: something is already mounted there (unmount it first: fusermount3 -u %s)", dir, dir)
	}
	if o.MaxReadahead == 0 {
		o.MaxReadahead = 1 << 20
	}
	if o.FSName == "" {
		o.FSName = "mogilefs"
	}
	opts := []fuse.MountOption{
		fuse.FSName(o.FSName), fuse.Subtype("mogmount"),
		fuse.MaxReadahead(o.MaxReadahead), fuse.AsyncRead(),
	}
	if o.AllowOther {
		opts = append(opts, fuse.AllowOther())
	}
	if o.ReadOnly {
		opts = append(opts, fuse.ReadOnly())
	}
	conn, err := fuse.Mount(dir, opts...)
	if err != nil {
		if isMounted(dir) {
			return nil, fmt.Errorf("mount %s: something is already mounted there (unmount it with: fusermount3 -u %s): %w", dir, dir, err)
		}
		return nil, fmt.Errorf("mount %s: %w (is fuse3 installed and /dev/fuse usable?)", dir, err)
	}
	m := &Mounted{Dir: dir, FS: f, conn: conn, done: make(chan error, 1)}
	srv := fs.New(conn, &fs.Config{WithContext: requestContext})
	f.kernel = srv
	go func() {
		m.done <- srv.Serve(f)
	}()
	return m, nil
}

// isMounted reports whether dir is a mount point (per /proc/self/mountinfo).
func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// Done is closed with Serve's result when the mount goes away.
func (m *Mounted) Done() <-chan error { return m.done }

// Unmount unmounts, retrying while the mount is busy, and as a last
// resort detaches it lazily; it waits for the server to stop.
func (m *Mounted) Unmount(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fuse.Unmount(m.Dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			m.FS.log.Warn("fusefs: mount still busy; detaching it lazily", "dir", m.Dir, "err", err)
			err = exec.Command("fusermount3", "-uz", m.Dir).Run()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-m.done:
	case <-time.After(timeout):
	}
	m.conn.Close()
	return err
}
