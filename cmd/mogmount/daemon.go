package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// When mount(8) starts mogmount (from /etc/fstab, through
// /sbin/mount.fuse.mogmount), it waits for it to exit: mogmount then runs
// itself again in the background and exits once that copy reports the
// mount up (or why it failed), as sshfs and rclone do.

// daemonEnv marks the background copy; its value is the descriptor of the
// pipe on which it reports.
const daemonEnv = "MOGMOUNT_DAEMON_FD"

// readyTimeout bounds the wait for the background copy to mount.
const readyTimeout = 60 * time.Second

// background runs this program again detached from the terminal, with
// its output appended to logPath, and waits for its report. It returns
// nil once the mount is up.
func background(logPath string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	cmd.Process.Release()
	r.SetReadDeadline(time.Now().Add(readyTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	switch {
	case strings.TrimSpace(line) == "ok":
		return nil
	case line != "":
		return errors.New(strings.TrimSpace(line))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("the mount was not up after %v (see %s)", readyTimeout, logPath)
	}
	return fmt.Errorf("mogmount stopped before mounting (see %s)", logPath)
}

// reporter is how the background copy tells the waiting one how it went;
// nil when this process is not a background copy.
func reporter() io.WriteCloser {
	if os.Getenv(daemonEnv) == "" {
		return nil
	}
	os.Unsetenv(daemonEnv)
	return os.NewFile(3, "ready")
}

// defaultLogPath is where a background mogmount logs: under /var/log when
// it may write there, else in the temporary directory.
func defaultLogPath() string {
	if f, err := os.OpenFile("/var/log/mogmount.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err == nil {
		f.Close()
		return "/var/log/mogmount.log"
	}
	return os.TempDir() + "/mogmount.log"
}

// ensurePath gives a process started with an empty PATH (mount(8) runs
// its helpers so) the usual one, so that fusermount3 is found.
func ensurePath() {
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
}
