package tests

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// netLab is a set of network namespaces joined by a bridge: one test
// host per namespace, on 10.213.<n>.0/24, made and removed by the test.
type netLab struct {
	t      *testing.T
	prefix string
	bridge string
	subnet string
	hosts  map[string]string // name -> IP
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	l, why := tryNetLab(t)
	if l == nil {
		t.Skip(why)
	}
	return l
}

// tryNetLab makes a lab, or returns nil and why it cannot here.
func tryNetLab(t *testing.T) (*netLab, string) {
	t.Helper()
	if os.Getuid() != 0 {
		return nil, "network namespaces need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, "no ip command (iproute2)"
	}
	pid := os.Getpid() % 200
	l := &netLab{t: t, prefix: fmt.Sprintf("mg%d", pid), subnet: fmt.Sprintf("10.213.%d", pid), hosts: map[string]string{}}
	l.bridge = l.prefix + "br"
	// The test's temporary directory is removed by the first cleanup
	// registered, which runs last: after every daemon writing into it has
	// stopped (each is stopped by a cleanup registered when it starts).
	t.TempDir()
	if err := run("ip", "link", "add", l.bridge, "type", "bridge"); err != nil {
		return nil, fmt.Sprintf("cannot make network namespaces here: %v", err)
	}
	t.Cleanup(l.close)
	for _, c := range [][]string{
		{"ip", "addr", "add", l.subnet + ".1/24", "dev", l.bridge},
		{"ip", "link", "set", l.bridge, "up"},
	} {
		if err := run(c...); err != nil {
			t.Fatal(err)
		}
	}
	return l, ""
}

// addHost makes a namespace with one interface on the bridge.
func (l *netLab) addHost(name string, n int) string {
	l.t.Helper()
	ns, veth, ip := l.prefix+name, l.prefix+"v"+name, fmt.Sprintf("%s.%d", l.subnet, n)
	for _, c := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", l.bridge, "up"},
		{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	} {
		if err := run(c...); err != nil {
			l.t.Fatal(err)
		}
	}
	l.hosts[name] = ip
	return ip
}

// link cuts a host off the network (down) or restores it.
func (l *netLab) link(name string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := run("ip", "link", "set", l.prefix+"v"+name, state); err != nil {
		l.t.Fatal(err)
	}
}

// start runs a binary inside a host's namespace (see startProc).
func (l *netLab) start(host string, logName string, args ...string) *exec.Cmd {
	l.t.Helper()
	return startProc(l.t, logName, append([]string{"ip", "netns", "exec", l.prefix + host}, args...)...)
}

// stopProc ends a daemon with SIGTERM, or SIGKILL after 10 seconds.
func stopProc(p *exec.Cmd) {
	p.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.Process.Kill()
		<-done
	}
}

func (l *netLab) close() {
	for name := range l.hosts {
		run("ip", "link", "del", l.prefix+"v"+name) // both ends of the veth pair
		run("ip", "netns", "del", l.prefix+name)
	}
	run("ip", "link", "del", l.bridge)
}

// TestSeveralHosts runs two trackers and two storage nodes, each in its
// own network namespace, on one MariaDB: files written through one tracker
// are read through the other; a storage host cut off the network and
// restored loses nothing and replication catches up; a tracker cut off
// makes clients fail over.
func TestSeveralHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := binaries(t)
	lab := newNetLab(t)
	st1, st2 := lab.addHost("st1", 11), lab.addHost("st2", 12)
	tr1, tr2 := lab.addHost("tr1", 21), lab.addHost("tr2", 22)
	db := startPrivateMariaDBOn(t, lab.subnet+".1")
	conn, err := sql.Open("mysql", db.serverDSN())
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec("CREATE DATABASE mogilefs")
	conn.Close()
	for i, h := range []string{"st1", "st2"} {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755)
		lab.start(h, "mogstored-"+h, bin+"/mogstored", "--skipconfig", "--docroot="+root, "--httplisten=0.0.0.0:7500", "--mgmtlisten=0.0.0.0:7501")
	}
	dsn := "mysql:" + db.serverDSN() + "mogilefs"
	for _, h := range []string{"tr1", "tr2"} {
		lab.start(h, "mogilefsd-"+h, bin+"/mogilefsd", "--skipconfig", "--dsn="+dsn, "--listen=0.0.0.0:7001", "--min_free_space=1")
	}
	ctx := context.Background()
	c1, _ := client.New([]string{tr1 + ":7001"}, client.Options{})
	c2, _ := client.New([]string{tr2 + ":7001"}, client.Options{})
	both, _ := client.New([]string{tr1 + ":7001", tr2 + ":7001"}, client.Options{DeadRetry: 500 * time.Millisecond, DialTimeout: 500 * time.Millisecond})
	defer c1.Close()
	defer c2.Close()
	defer both.Close()
	waitFor(t, 30*time.Second, "trackers to answer", func() bool {
		_, e1 := c1.Tracker.Do(ctx, "noop", nil)
		_, e2 := c2.Tracker.Do(ctx, "noop", nil)
		return e1 == nil && e2 == nil
	})
	for i, ip := range []string{st1, st2} {
		name := fmt.Sprintf("st%d", i+1)
		c1.Tracker.Do(ctx, "create_host", protocol.Args{"host": name, "ip": ip, "port": "7500", "status": "alive"})
		c1.Tracker.Do(ctx, "create_device", protocol.Args{"hostname": name, "devid": fmt.Sprint(i + 1)})
	}
	c1.Tracker.Do(ctx, "create_domain", protocol.Args{"domain": "net"})
	waitFor(t, 30*time.Second, "devices writeable on both trackers", func() bool {
		for _, c := range []*client.Client{c1, c2} {
			c.Tracker.Do(ctx, "clear_cache", nil)
			r, err := c.Tracker.Do(ctx, "get_devices", nil)
			if err != nil {
				return false
			}
			for _, d := range client.Records(r, "devices", "dev") {
				if d["observed_state"] != "writeable" {
					return false
				}
			}
		}
		return true
	})
	files := map[string][]byte{}
	put := func(c *client.Client, k string) {
		b := randomBytes(t, 50000+len(files))
		if _, err := c.Upload(ctx, "net", k, "", bytes.NewReader(b), int64(len(b)), client.UploadOptions{}); err != nil {
			t.Fatalf("upload %s: %v", k, err)
		}
		files[k] = b
	}
	read := func(c *client.Client, k string) {
		r, err := c.Open(ctx, "net", k)
		if err != nil {
			t.Fatalf("open %s: %v", k, err)
		}
		got := readAllT(t, r)
		if !bytes.Equal(got, files[k]) {
			t.Fatalf("%s: bytes differ", k)
		}
	}
	// Written through one tracker, read through the other.
	for i := 0; i < 10; i++ {
		put(c1, fmt.Sprintf("a%d", i))
	}
	for k := range files {
		read(c2, k)
	}
	copies := func(want int) func() bool {
		return func() bool {
			for k := range files {
				fi, err := c2.Tracker.FileInfo(ctx, "net", k)
				if err != nil || len(fi.Devids) != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 30*time.Second, "2 copies", copies(2))
	// A storage host cut off: reads keep working from the other copy.
	lab.link("st2", false)
	for k := range files {
		read(c1, k)
	}
	put(c1, "during-outage") // lands on st1 only
	lab.link("st2", true)
	waitFor(t, 90*time.Second, "replication to catch up after the host returns", copies(2))
	// A tracker cut off: the client fails over to the other.
	lab.link("tr1", false)
	put(both, "after-tracker-cut")
	for k := range files {
		read(both, k)
	}
	lab.link("tr1", true)
}
