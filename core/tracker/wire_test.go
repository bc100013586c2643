package tracker_test

// Handler tests: raw request lines in, raw reply lines out, against a
// tracker on a fresh SQLite file and in-process storage nodes
// (core/clustertest). They run in milliseconds and with -short.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// wire is one client connection speaking the tracker protocol.
type wire struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends one request line and returns the reply line without its end.
func (w *wire) do(line string) string {
	w.t.Helper()
	w.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(w.c, line+"\r\n"); err != nil {
		w.t.Fatalf("%s: %v", line, err)
	}
	reply, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("%s: reply: %v", line, err)
	}
	return strings.TrimSuffix(reply, "\r\n")
}

// expect checks the exact reply to line.
func (w *wire) expect(line, want string) {
	w.t.Helper()
	if got := w.do(line); got != want {
		w.t.Errorf("%s\n got: %s\nwant: %s", line, got, want)
	}
}

// ok sends line and returns the reply's arguments; an ERR fails the test.
func (w *wire) ok(line string) protocol.Args {
	w.t.Helper()
	reply := w.do(line)
	a, err := protocol.ParseReply(reply)
	if err != nil {
		w.t.Fatalf("%s: %s", line, reply)
	}
	return a
}

// code sends line and checks that the reply is an ERR with code.
func (w *wire) code(line, code string) string {
	w.t.Helper()
	reply := w.do(line)
	if !strings.HasPrefix(reply, "ERR "+code+" ") {
		w.t.Errorf("%s\n got: %s\nwant: ERR %s ...", line, reply, code)
	}
	return reply
}

// put uploads body to a create_open path.
func put(t *testing.T, url string, body []byte) {
	t.Helper()
	if code := putStatus(t, url, body, nil); code/100 != 2 {
		t.Fatalf("PUT %s: %d", url, code)
	}
}

// putStatus PUTs body to url with the headers hdr and returns the
// status code.
func putStatus(t *testing.T, url string, body []byte, hdr http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// upload stores body under key with create_open, PUT and create_close
// and returns the fid and the path it went to.
func upload(t *testing.T, w *wire, dom, key, class string, body []byte) (fid, devid, path string) {
	t.Helper()
	o := w.ok(fmt.Sprintf("create_open domain=%s&key=%s&class=%s", dom, key, class))
	put(t, o["path"], body)
	w.expect(fmt.Sprintf("create_close domain=%s&key=%s&fid=%s&devid=%s&path=%s&size=%d", dom, key, o["fid"], o["devid"], o["path"], len(body)), "OK ")
	return o["fid"], o["devid"], o["path"]
}

// waitFor polls cond until it holds or 15 s have gone.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func noJobs(c *tracker.Config) { c.NoJobs = true }

func startWire(t *testing.T, opts clustertest.Options) (*clustertest.Cluster, *wire) {
	t.Helper()
	c := clustertest.Start(t, opts)
	return c, dialWire(t, c.TrackerAddr)
}

func nodeURL(n *clustertest.Node) string { return fmt.Sprintf("http://%s:%d", n.IP, n.Port) }

// protocolLine renders args as a reply's argument part.
func protocolLine(a protocol.Args) string {
	return strings.TrimSuffix(strings.TrimPrefix(protocol.OKLine(a), "OK "), "\r\n")
}

// bang sends a `!` line and returns the reply's lines before the ".".
func (w *wire) bang(line string) []string {
	w.t.Helper()
	w.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(w.c, line+"\r\n"); err != nil {
		w.t.Fatalf("%s: %v", line, err)
	}
	var out []string
	for {
		l, err := w.r.ReadString('\n')
		if err != nil {
			w.t.Fatalf("%s: reply: %v", line, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}
