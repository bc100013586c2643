package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/storage"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// dialFrom connects to addr from a given local loopback address.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAdminNetworks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	nets, _ := core.ParseNetworks("127.0.0.9")
	_, addr := c.StartTracker(func(cfg *tracker.Config) { cfg.AdminNetworks = nets })
	outsider := dialFrom(t, "127.0.0.1", addr)
	r := bufio.NewReader(outsider)
	ask := func(conn net.Conn, r *bufio.Reader, line string) string {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "%s\r\n", line)
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, cmd := range []string{"create_domain domain=x", "create_class domain=test&class=c&mindevcount=2", "delete_domain domain=test",
		"create_host host=h&ip=10.0.0.1&port=7500", "update_host host=host1&status=down", "delete_host host=host1",
		"create_device hostname=host1&devid=9", "set_state host=host1&device=1&state=dead", "set_weight host=host1&device=1&weight=1",
		"set_server_setting key=memcache_ttl&value=1", "fsck_start", "fsck_reset", "rebalance_set_policy policy=from_devices=1", "rebalance_start"} {
		if got := ask(outsider, r, cmd); !strings.HasPrefix(got, "ERR access_denied ") {
			t.Errorf("%s from outside = %q; want ERR access_denied", cmd, got)
		}
	}
	if got := ask(outsider, r, "!shutdown"); !strings.HasPrefix(got, "ERROR: admin commands are not allowed") {
		t.Errorf("!shutdown from outside = %q", got)
	}
	r.ReadString('\n') // the "." line
	// Queries stay open to everyone.
	if got := ask(outsider, r, "get_domains"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("get_domains from outside = %q", got)
	}
	if got := ask(outsider, r, "create_open domain=test&key=k"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("create_open from outside = %q", got)
	}
	// From an admin address, admin commands work.
	insider := dialFrom(t, "127.0.0.9", addr)
	ri := bufio.NewReader(insider)
	if got := ask(insider, ri, "create_domain domain=fromadmin"); got != "OK domain=fromadmin\r\n" {
		t.Errorf("create_domain from the admin network = %q", got)
	}
	// The default tracker (no networks) accepts admin commands from anyone.
	if _, err := c.Do("create_domain", protocol.Args{"domain": "compat"}); err != nil {
		t.Errorf("default tracker refused an admin command: %v", err)
	}
}

// TestAdminListener gives a tracker an admin address: admin commands are
// then refused on the ordinary address and accepted on the admin one.
func TestAdminListener(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	tr, addr := c.StartTracker(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go tr.ServeAdmin(ln)
	ask := func(addr, line string) string {
		conn := dialFrom(t, "127.0.0.1", addr)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "%s\r\n", line)
		l, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	waitFor(t, 5*time.Second, "the admin listener to take effect", func() bool {
		return strings.HasPrefix(ask(addr, "set_weight host=host1&device=1&weight=100"), "ERR access_denied ")
	})
	if got := ask(addr, "create_domain domain=pub"); !strings.HasPrefix(got, "ERR access_denied ") {
		t.Errorf("create_domain on the public address = %q", got)
	}
	if got := ask(ln.Addr().String(), "create_domain domain=adm"); got != "OK domain=adm\r\n" {
		t.Errorf("create_domain on the admin address = %q", got)
	}
	for _, a := range []string{addr, ln.Addr().String()} {
		if got := ask(a, "get_domains"); !strings.HasPrefix(got, "OK ") {
			t.Errorf("get_domains on %s = %q", a, got)
		}
	}
}

func TestWriteNetworks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "dev1"), 0o755)
	nets, _ := core.ParseNetworks("127.0.0.9/32")
	srv, err := storage.New(storage.Config{DocRoot: root, WriteNetworks: nets})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := srv.NewHTTPServer()
	go hs.Serve(ln)
	defer hs.Close()
	os.WriteFile(filepath.Join(root, "dev1", "existing.fid"), []byte("data"), 0o644)
	request := func(local, method, path, body string) int {
		conn := dialFrom(t, local, ln.Addr().String())
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "%s %s HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := request("127.0.0.1", "PUT", "/dev1/new.fid", "x"); code != 403 {
		t.Errorf("PUT from outside = %d; want 403", code)
	}
	if code := request("127.0.0.1", "DELETE", "/dev1/existing.fid", ""); code != 403 {
		t.Errorf("DELETE from outside = %d; want 403", code)
	}
	if code := request("127.0.0.1", "GET", "/dev1/existing.fid", ""); code != 200 {
		t.Errorf("GET from outside = %d; want 200", code)
	}
	if code := request("127.0.0.9", "PUT", "/dev1/new.fid", "x"); code != 200 {
		t.Errorf("PUT from the write network = %d; want 200", code)
	}
	if _, err := os.Stat(filepath.Join(root, "dev1", "existing.fid")); err != nil {
		t.Error("a refused DELETE removed the file")
	}
}
