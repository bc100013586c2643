package tests

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// rawConn is a plain TCP conversation with the tracker.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) line() string {
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return l
}

func TestWireFraming(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	r := dialRaw(t, c.TrackerAddr)

	// Bare OK has its space; LF-only and CRLF both work; empty lines are
	// skipped; commands are case-insensitive.
	r.send("noop\n\r\n\nNOOP\r\n")
	if l := r.line(); l != "OK \r\n" {
		t.Fatalf("noop = %q", l)
	}
	if l := r.line(); l != "OK \r\n" {
		t.Fatalf("NOOP = %q", l)
	}
	// callid is echoed on OK and appended to ERR.
	r.send("noop callid=42\r\nget_paths domain=test&key=nope&callid=7\r\n")
	if l := r.line(); l != "OK callid=42\r\n" {
		t.Errorf("callid on OK = %q", l)
	}
	if l := r.line(); l != "ERR unknown_key unknown_key 7\r\n" {
		t.Errorf("callid on ERR = %q", l)
	}
	// Pipelined requests are answered in order.
	var b strings.Builder
	for i := 0; i < 200; i++ {
		b.WriteString("noop callid=" + itoa(i) + "\r\n")
	}
	r.send(b.String())
	for i := 0; i < 200; i++ {
		if l := r.line(); l != "OK callid="+itoa(i)+"\r\n" {
			t.Fatalf("pipelined reply %d = %q", i, l)
		}
	}
	// A line over the limit gets an error and the connection still works.
	r.send("noop " + strings.Repeat("x", protocol.MaxLineBytes+10) + "\r\nnoop\r\n")
	if l := r.line(); !strings.HasPrefix(l, "ERR request_too_long ") {
		t.Errorf("oversized line = %q", l)
	}
	if l := r.line(); l != "OK \r\n" {
		t.Errorf("after oversized line = %q", l)
	}
	// Garbage: binary, a line starting with a non-word character.
	r.send("\x00\xff\xfe garbage\r\n&&&\r\n")
	for i := 0; i < 2; i++ {
		if l := r.line(); l != "ERR unknown_command Unknown+server+command\r\n" {
			t.Errorf("garbage reply = %q", l)
		}
	}
	// Admin commands end with a dot line.
	r.send("!version\r\n")
	if l := r.line(); l != "2.73\r\n" {
		t.Errorf("!version = %q", l)
	}
	if l := r.line(); l != ".\r\n" {
		t.Errorf("!version end = %q", l)
	}
	r.send("!nonsense\r\n")
	for l := r.line(); l != ".\r\n"; l = r.line() {
	}
	r.send("noop\r\n")
	if l := r.line(); l != "OK \r\n" {
		t.Errorf("after !help = %q", l)
	}
}

func TestOversizedKeyAndArgs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	long := strings.Repeat("k", 1025) // a new database takes 1,024
	if _, err := c.Do("create_open", protocol.Args{"domain": "test", "key": long}); err == nil || !strings.Contains(err.Error(), "1024") {
		t.Errorf("1,025-byte key = %v; want a clear error naming the limit", err)
	}
	if _, err := c.Do("create_open", protocol.Args{"domain": "test", "fid": "notanumber"}); err == nil {
		t.Error("non-numeric fid accepted")
	}
}
