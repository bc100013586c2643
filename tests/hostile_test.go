package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// daemonProc is a mogilefsd or mogstored binary running in a child
// process, possibly with a low descriptor limit.
type daemonProc struct {
	cmd  *exec.Cmd
	log  string
	exit chan error
}

// freePort returns a TCP port that was free on ip a moment ago.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDaemon runs bin/name with args, under prlimit when nofile > 0,
// and waits until addr accepts connections.
func startDaemon(t *testing.T, name string, nofile int, addr string, args ...string) *daemonProc {
	t.Helper()
	bin := filepath.Join(binaries(t), name)
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if nofile > 0 {
		cmd = exec.Command("prlimit", append([]string{fmt.Sprintf("--nofile=%d:%d", nofile, nofile), bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p := &daemonProc{cmd: cmd, log: logPath, exit: make(chan error, 1)}
	go func() { p.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-p.exit
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, b)
		}
	})
	waitFor(t, 10*time.Second, name+" to listen on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// alive fails the test if the daemon has exited.
func (p *daemonProc) alive(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-p.exit:
		p.exit <- err
		t.Fatalf("%s: the daemon exited (%v)", what, err)
	default:
	}
}

// trackerLine sends one request line on a new connection and returns the
// reply; unlike dialRaw it returns errors instead of failing the test, for
// polls of a daemon that may not answer yet.
func trackerLine(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// flood opens n connections to each address and keeps them open (sending
// nothing) until the returned function is called.
func flood(addrs []string, n int) (release func()) {
	var conns []net.Conn
	for _, a := range addrs {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// Out of file descriptors, both daemons used to exit (`accept4: too many
// open files` ended the accept loop, then the process). They must wait
// it out and answer again once the connections are gone.
func TestDaemonsSurviveDescriptorExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	docroot := filepath.Join(dir, "docroot")
	os.MkdirAll(filepath.Join(docroot, "dev1"), 0o755)
	os.WriteFile(filepath.Join(docroot, "dev1", "hello"), []byte("hello\n"), 0o644)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	sideAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	trackerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	const nofile = 80
	node := startDaemon(t, "mogstored", nofile, httpAddr, "--skipconfig", "--docroot="+docroot,
		"--httplisten="+httpAddr, "--mgmtlisten="+sideAddr)
	waitFor(t, 10*time.Second, "the side channel", func() bool {
		c, err := net.Dial("tcp", sideAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	tr := startDaemon(t, "mogilefsd", nofile, trackerAddr, "--skipconfig",
		"--dsn=DBI:SQLite:dbname="+filepath.Join(dir, "mogilefs.db"), "--listen="+trackerAddr)

	for round := 0; round < 2; round++ {
		release := flood([]string{trackerAddr, httpAddr, sideAddr}, 3*nofile)
		time.Sleep(500 * time.Millisecond) // let the accept loops meet EMFILE
		node.alive(t, "mogstored with its descriptors used up")
		tr.alive(t, "mogilefsd with its descriptors used up")
		release()

		waitFor(t, 15*time.Second, "the tracker to answer again", func() bool {
			reply, err := trackerLine(trackerAddr, "noop")
			return err == nil && strings.HasPrefix(reply, "OK")
		})
		waitFor(t, 15*time.Second, "the storage node to serve a GET again", func() bool {
			cl := http.Client{Timeout: 5 * time.Second}
			resp, err := cl.Get("http://" + httpAddr + "/dev1/hello")
			if err != nil {
				return false
			}
			resp.Body.Close()
			cl.CloseIdleConnections()
			return resp.StatusCode == 200
		})
		waitFor(t, 15*time.Second, "the side channel to answer again", func() bool {
			reply, err := trackerLine(sideAddr, "size /dev1/hello")
			return err == nil && strings.Contains(reply, "/dev1/hello 6")
		})
	}
	node.alive(t, "mogstored after the flood")
	tr.alive(t, "mogilefsd after the flood")
}

// One request with fid=2^63-1 used to push the SQLite fid counter to its
// end: every later create_open failed, a restart did not help.
func TestExplicitFIDCannotExhaustFIDSpace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	for _, fid := range []string{"9223372036854775807", "9223372036854775806", "4294967295"} {
		reply, err := trackerLine(c.TrackerAddr, "create_open domain=test&class=one&key=evil&fid="+fid)
		if err != nil || !strings.HasPrefix(reply, "ERR bad_params") {
			t.Errorf("create_open fid=%s: %q, %v; want ERR bad_params", fid, reply, err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Client.Upload(context.Background(), "test", fmt.Sprint("after", i), "one", strings.NewReader("still works"), 11, client.UploadOptions{}); err != nil {
			t.Fatalf("upload after the hostile create_opens: %v", err)
		}
	}
}
