package tests

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// procCluster is a cluster of daemon processes: the binaries (built
// without the race detector) of one tracker, on a SQLite file, and of
// storage nodes, each its own process on its own loopback address. A
// test can stop a node for real (SIGSTOP) or run a workload at the
// speed users get.
type procCluster struct {
	TrackerAddr string
	Client      *client.Client
	Nodes       []*procNode
}

// procNode is one mogstored process.
type procNode struct {
	Name, IP string
	Port     int
	DocRoot  string
	cmd      *exec.Cmd
}

// Stop sends SIGSTOP: the node keeps its connections and answers nothing.
func (n *procNode) Stop() { n.cmd.Process.Signal(syscall.SIGSTOP) }

// Cont resumes a stopped node.
func (n *procNode) Cont() { n.cmd.Process.Signal(syscall.SIGCONT) }

// uploading reports whether the node is receiving an upload (a temporary
// file of a PUT in progress is in one of its devices).
func (n *procNode) uploading() bool {
	found := false
	filepath.WalkDir(n.DocRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && putTempRE.MatchString(d.Name()) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// putTempRE matches the names of the storage node's PUTs in progress.
var putTempRE = regexp.MustCompile(`^\..+\.[0-9a-f]{16}\.tmp$`)

// freeLoopbackPort finds a TCP port free on every one of ips.
func freeLoopbackPort(t *testing.T, ips ...string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatalf("listen on %s (loopback aliases needed): %v", ips[0], err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		free := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// startProcCluster starts a tracker on 127.0.0.60 and nodes storage
// nodes on 127.0.0.61, .62, ... (one device each), with domain "test"
// and its classes "two" and "one", and waits until every device is
// writeable. Everything is stopped at the end of the test.
func startProcCluster(t *testing.T, nodes int) *procCluster {
	t.Helper()
	bin := binaries(t)
	c := &procCluster{}
	var ips []string
	for i := 1; i <= nodes; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", 60+i))
	}
	side := freeLoopbackPort(t, ips...)
	for i, ip := range ips {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755)
		n := &procNode{Name: fmt.Sprintf("proc%d", i+1), IP: ip, Port: freeLoopbackPort(t, ip), DocRoot: root}
		n.cmd = startProc(t, "mogstored-"+n.Name, bin+"/mogstored", "--skipconfig", "--docroot="+root,
			"--httplisten="+net.JoinHostPort(ip, strconv.Itoa(n.Port)), "--mgmtlisten="+net.JoinHostPort(ip, strconv.Itoa(side)), "--log-level=warn")
		c.Nodes = append(c.Nodes, n)
	}
	c.TrackerAddr = net.JoinHostPort("127.0.0.60", strconv.Itoa(freeLoopbackPort(t, "127.0.0.60")))
	startProc(t, "mogilefsd", bin+"/mogilefsd", "--skipconfig", "--dsn=DBI:SQLite:dbname="+filepath.Join(t.TempDir(), "mogilefs.db"),
		"--listen="+c.TrackerAddr, "--mogstored_stream_port="+strconv.Itoa(side), "--min_free_space=1", "--log-level=warn")
	var err error
	c.Client, err = client.New([]string{c.TrackerAddr}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Client.Close() })
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the tracker to answer", func() bool {
		_, err := c.Client.Tracker.Do(ctx, "noop", nil)
		return err == nil
	})
	must := func(cmd string, args protocol.Args) {
		if _, err := c.Client.Tracker.Do(ctx, cmd, args); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	for i, n := range c.Nodes {
		must("create_host", protocol.Args{"host": n.Name, "ip": n.IP, "port": strconv.Itoa(n.Port), "status": "alive"})
		must("create_device", protocol.Args{"hostname": n.Name, "devid": strconv.Itoa(i + 1), "state": "alive"})
	}
	must("create_domain", protocol.Args{"domain": "test"})
	must("create_class", protocol.Args{"domain": "test", "class": "two", "mindevcount": "2"})
	must("create_class", protocol.Args{"domain": "test", "class": "one", "mindevcount": "1"})
	waitFor(t, 30*time.Second, "every device writeable", func() bool {
		c.Client.Tracker.Do(ctx, "clear_cache", nil)
		r, err := c.Client.Tracker.Do(ctx, "get_devices", nil)
		if err != nil {
			return false
		}
		devs := client.Records(r, "devices", "dev")
		for _, d := range devs {
			if d["observed_state"] != "writeable" {
				return false
			}
		}
		return len(devs) == nodes
	})
	return c
}

// startProc runs a daemon with its output in a log file of the test's,
// stopped (and resumed first, if stopped) at the end of the test.
func startProc(t *testing.T, logName string, args ...string) *exec.Cmd {
	t.Helper()
	logf, _ := os.Create(filepath.Join(t.TempDir(), logName+".log"))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stopProc(cmd)
		if t.Failed() {
			if b, _ := os.ReadFile(logf.Name()); len(b) > 0 {
				t.Logf("%s log:\n%s", logName, tail(b, 4000))
			}
		}
	})
	return cmd
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// tail is the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// A storage node process stopped with SIGSTOP in the middle of a
// streamed write through the mount: with another node alive, the upload
// moves there from the spool after --stall-timeout and the file is
// stored whole; with every node stopped, the writer gets an error within
// a bounded time instead of hanging, and no file is left under the name.
func TestMountNodeSIGSTOPMidWrite(t *testing.T) {
	condSkipFUSE(t)
	c := startProcCluster(t, 2)
	mnt := startMogmount(t, c.TrackerAddr, "--stall-timeout=2s").dir
	src := filepath.Join(t.TempDir(), "src.bin")
	sh(t, fmt.Sprintf("head -c %d /dev/urandom > %q", 48<<20, src))
	uploadingNode := func() *procNode {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, n := range c.Nodes {
				if n.uploading() {
					return n
				}
			}
		}
		t.Fatal("no node received the upload")
		return nil
	}

	dst := filepath.Join(mnt, "test", "big.bin")
	cmd, out := steadyWriter(t, src, dst, "0.02")
	stopped := uploadingNode()
	stopped.Stop()
	took, err := waitWriter(t, cmd, 60*time.Second, "the node was stopped")
	if err != nil {
		t.Fatalf("the writer failed with a node stopped (another alive): %v\n%s", err, out)
	}
	t.Logf("written in %v with %s stopped", took.Round(time.Millisecond), stopped.Name)
	stopped.Cont()
	sh(t, fmt.Sprintf("cmp %q %q", src, dst))

	// Every node stopped: an error, in bounded time.
	dst2 := filepath.Join(mnt, "test", "big2.bin")
	cmd, out = steadyWriter(t, src, dst2, "0.02")
	uploadingNode()
	for _, n := range c.Nodes {
		n.Stop()
	}
	if took, err = waitWriter(t, cmd, 60*time.Second, "every node was stopped"); err == nil {
		t.Fatalf("the writer succeeded with every node stopped:\n%s", out)
	}
	t.Logf("writer failed after %v with every node stopped: %s", took.Round(time.Millisecond), lastLine(out.String()))
	for _, n := range c.Nodes {
		n.Cont()
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Errorf("after the failed write, stat %s: %v (want: no such file)", dst2, err)
	}
	sh(t, fmt.Sprintf("cmp %q %q", src, dst))
}
