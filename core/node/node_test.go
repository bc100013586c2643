package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// fakeNode serves files from memory, with what a storage node answers.
func fakeNode(t *testing.T) (*httptest.Server, map[string]string) {
	files := map[string]string{"/dev1/f": "0123456789"}
	modified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			body, ok := files[r.URL.Path]
			if !ok {
				http.Error(w, "no such file", http.StatusNotFound)
				return
			}
			http.ServeContent(w, r, "", modified, strings.NewReader(body))
		case http.MethodPut:
			if r.URL.Path == "/dev9/full" {
				http.Error(w, "device full", http.StatusInsufficientStorage)
				return
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			files[r.URL.Path] = string(b)
			w.WriteHeader(http.StatusCreated)
		case http.MethodDelete:
			if _, ok := files[r.URL.Path]; !ok {
				http.Error(w, "no such file", http.StatusNotFound)
				return
			}
			delete(files, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		case "MKCOL":
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, files
}

func TestHTTPVerbs(t *testing.T) {
	srv, files := fakeNode(t)
	c := New(Options{UserAgent: "test"})
	defer c.CloseIdle()
	ctx := context.Background()

	in, err := c.Head(ctx, srv.URL+"/dev1/f")
	if err != nil || in.Size != 10 || in.Modified.Year() != 2026 {
		t.Errorf("Head = %+v, %v", in, err)
	}
	if _, err := c.Head(ctx, srv.URL+"/dev1/nope"); !core.Is(core.NotFound, err) || !IsStatus(err, 404) {
		t.Errorf("Head of a missing file: %v (kind %v)", err, core.KindOf(err))
	}
	for _, tc := range []struct {
		from, to int64
		want     string
	}{{0, -1, "0123456789"}, {3, -1, "3456789"}, {2, 5, "234"}, {10, -1, ""}, {4, 4, ""}, {12, 20, ""}} {
		b, err := c.Get(ctx, srv.URL+"/dev1/f", tc.from, tc.to)
		if err != nil {
			t.Errorf("Get [%d,%d): %v", tc.from, tc.to, err)
			continue
		}
		got, _ := io.ReadAll(b)
		b.Close()
		if string(got) != tc.want {
			t.Errorf("Get [%d,%d) = %q; want %q", tc.from, tc.to, got, tc.want)
		}
	}
	if data, _, err := c.Fetch(ctx, srv.URL+"/dev1/f", 4); err != nil || string(data) != "0123" {
		t.Errorf("Fetch with a limit = %q, %v", data, err)
	}

	if err := c.Put(ctx, srv.URL+"/dev1/g", strings.NewReader("new"), 3, nil); err != nil || files["/dev1/g"] != "new" {
		t.Errorf("Put = %v; stored %q", err, files["/dev1/g"])
	}
	if err := c.Put(ctx, srv.URL+"/dev1/h", strings.NewReader("chunked"), -1, nil); err != nil || files["/dev1/h"] != "chunked" {
		t.Errorf("Put of unknown size = %v; stored %q", err, files["/dev1/h"])
	}
	if err := c.Put(ctx, srv.URL+"/dev1/empty", nil, 0, nil); err != nil {
		t.Errorf("Put of nothing = %v", err)
	}
	err = c.Put(ctx, srv.URL+"/dev9/full", strings.NewReader("x"), 1, nil)
	var se *StatusError
	if !core.Is(core.NoSpace, err) || !errors.As(err, &se) || se.Message != "device full" {
		t.Errorf("Put to a full device: %v (kind %v)", err, core.KindOf(err))
	}

	if err := c.Delete(ctx, srv.URL+"/dev1/g"); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if err := c.Delete(ctx, srv.URL+"/dev1/g"); !core.Is(core.NotFound, err) {
		t.Errorf("second Delete: %v (kind %v)", err, core.KindOf(err))
	}
	if code, err := c.Probe(ctx, "MKCOL", srv.URL+"/dev1/x/"); err != nil || code != http.StatusMethodNotAllowed {
		t.Errorf("Probe MKCOL = %d, %v", code, err)
	}
}

// Writes and DELETEs say when they were sent (core.SentHeader), so that
// a node refuses a write delivered after a DELETE sent later than it;
// reads do not.
func TestWritesSayWhenSent(t *testing.T) {
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got[r.Method] = r.Header.Get(core.SentHeader)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(Options{})
	defer c.CloseIdle()
	ctx := context.Background()
	before := time.Now().UnixNano()
	c.Put(ctx, srv.URL+"/dev1/f", strings.NewReader("x"), 1, nil)
	c.Delete(ctx, srv.URL+"/dev1/f")
	c.DeleteFid(ctx, srv.URL+"/dev1/f")
	c.Move(ctx, srv.URL+"/dev1/f", srv.URL+"/dev1/g")
	c.Copy(ctx, srv.URL+"/dev1/f", srv.URL+"/dev1/g")
	c.Head(ctx, srv.URL+"/dev1/f")
	for _, m := range []string{http.MethodPut, http.MethodDelete, "MOVE", "COPY"} {
		n, err := strconv.ParseInt(got[m], 10, 64)
		if err != nil || n < before || n > time.Now().UnixNano() {
			t.Errorf("%s: %s = %q; want the time it was sent", m, core.SentHeader, got[m])
		}
	}
	if got[http.MethodHead] != "" {
		t.Errorf("HEAD: %s = %q; want none", core.SentHeader, got[http.MethodHead])
	}
}

// A node that cannot be reached is Unavailable; a request out of time is
// a deadline error, not Unavailable (the node may be fine).
func TestUnreachableAndTimeout(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	c := New(Options{ConnectTimeout: time.Second})
	if _, err := c.Head(context.Background(), dead+"/dev1/f"); !core.Is(core.Unavailable, err) {
		t.Errorf("a dead node: %v (kind %v)", err, core.KindOf(err))
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, slow.URL+"/dev1/f", 0, -1); !errors.Is(err, context.DeadlineExceeded) || core.Is(core.Unavailable, err) {
		t.Errorf("a request out of time: %v (kind %v)", err, core.KindOf(err))
	}
}

// Put streams: the node has the first bytes while the caller is still
// writing the rest.
func TestPutStreams(t *testing.T) {
	first := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		io.ReadFull(r.Body, buf)
		first <- string(buf)
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- New(Options{}).Put(context.Background(), srv.URL+"/dev1/s", pr, -1, nil) }()
	pw.Write([]byte("hello"))
	select {
	case got := <-first:
		if got != "hello" {
			t.Errorf("the node got %q first", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the node got nothing before the body ended: the body was buffered")
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// sideChannel answers each line of a connection with answer(line).
func sideChannel(t *testing.T, answer func(line string, w io.Writer)) string {
	addr, _ := countedSideChannel(t, answer)
	return addr
}

// countedSideChannel is sideChannel, with the count of connections it
// has accepted.
func countedSideChannel(t *testing.T, answer func(line string, w io.Writer)) (string, *atomic.Int32) {
	accepted := new(atomic.Int32)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					answer(strings.TrimRight(line, "\r\n"), c)
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestSideChannel(t *testing.T) {
	addr := sideChannel(t, func(line string, w io.Writer) {
		switch line {
		case "MD5 /dev1/f":
			io.WriteString(w, "/dev1/f MD5=781e5e245d69b566979b86e28d23f2c7\r\n")
		case "MD5 /dev1/nope":
			io.WriteString(w, "/dev1/nope MD5=-1\r\n")
		case "MD5 /dev1/odd":
			io.WriteString(w, "what?\r\n")
		case "watch":
			io.WriteString(w, "1\t12.50\n2\t-\n.\n1\t13.00\n.\n")
			w.(net.Conn).Close()
		}
	})
	c := New(Options{})
	ctx := context.Background()
	if sum, err := c.Digest(ctx, addr, "MD5", "/dev1/f"); err != nil || len(sum) != 16 || sum[0] != 0x78 {
		t.Errorf("Digest = %x, %v", sum, err)
	}
	if _, err := c.Digest(ctx, addr, "MD5", "/dev1/nope"); !core.Is(core.NotFound, err) {
		t.Errorf("Digest of a missing file: %v", err)
	}
	if _, err := c.Digest(ctx, addr, "MD5", "/dev1/odd"); err == nil {
		t.Error("an odd answer was taken for a digest")
	}
	var got []string
	err := c.Watch(ctx, addr, 5*time.Second, func(devid int, util string) {
		got = append(got, strings.Join([]string{string(rune('0' + devid)), util}, "="))
	})
	if err != nil || strings.Join(got, " ") != "1=12.50 2= 1=13.00" {
		t.Errorf("Watch = %v, %v", got, err)
	}
	refusing := sideChannel(t, func(line string, w io.Writer) { io.WriteString(w, "ERR iostat not available\n") })
	if err := c.Watch(ctx, refusing, 5*time.Second, func(int, string) {}); !errors.Is(err, ErrNoWatch) {
		t.Errorf("Watch of a node without iostat = %v", err)
	}
}

// Size asks over kept side-channel connections: one connection serves
// one request after another, a missing file is NotFound (and the
// connection is kept), and a kept connection the node has closed is
// replaced without the caller seeing an error.
func TestSideSizeKeepsItsConnection(t *testing.T) {
	addr, accepted := countedSideChannel(t, func(line string, w io.Writer) {
		switch line {
		case "size /dev1/f":
			io.WriteString(w, "/dev1/f 10\r\n")
		case "size /dev1/nope":
			io.WriteString(w, "/dev1/nope -1\r\n")
		case "size /dev1/bye":
			io.WriteString(w, "/dev1/bye 3\r\n")
			w.(net.Conn).Close()
		}
	})
	c := New(Options{})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if n, err := c.Size(ctx, addr, "/dev1/f"); err != nil || n != 10 {
			t.Fatalf("Size = %d, %v; want 10", n, err)
		}
	}
	if _, err := c.Size(ctx, addr, "/dev1/nope"); !core.Is(core.NotFound, err) {
		t.Errorf("Size of a missing file: %v; want NotFound", err)
	}
	if n, err := c.Size(ctx, addr, "/dev1/bye"); err != nil || n != 3 {
		t.Fatalf("Size = %d, %v; want 3", n, err)
	}
	// The node closed the kept connection after answering.
	if n, err := c.Size(ctx, addr, "/dev1/f"); err != nil || n != 10 {
		t.Errorf("Size after the node closed the kept connection = %d, %v", n, err)
	}
	if got := accepted.Load(); got != 2 {
		t.Errorf("%d connections for 8 requests; want 2 (one replaced)", got)
	}
}

// DeleteFids reads each fid's status from a node that deletes in batches;
// a node that does not (the original's: no core.FidDeleteHeader) is
// Unsupported, and a garbled answer an error.
func TestDeleteFids(t *testing.T) {
	var answer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch a := answer.Load().(string); a {
		case "original":
			http.Error(w, "", http.StatusMethodNotAllowed)
		default:
			if r.Method != http.MethodPost || r.URL.RequestURI() != "/dev3/?delete_fids=1" || string(b) != "5\n6\n" || r.Header.Get(core.SentHeader) == "" {
				http.Error(w, "unexpected "+r.Method+" "+r.URL.RequestURI()+" "+string(b), http.StatusBadRequest)
				return
			}
			w.Header().Set(core.FidDeleteHeader, "1")
			io.WriteString(w, a)
		}
	}))
	defer srv.Close()
	c := New(Options{})
	ctx := context.Background()
	answer.Store("5 204\n6 404\n")
	got, err := c.DeleteFids(ctx, srv.URL, 3, []int64{5, 6})
	if err != nil || len(got) != 2 || got[5] != 204 || got[6] != 404 {
		t.Errorf("DeleteFids = %v, %v; want 5:204 6:404", got, err)
	}
	answer.Store("original")
	if _, err := c.DeleteFids(ctx, srv.URL, 3, []int64{5, 6}); !core.Is(core.Unsupported, err) {
		t.Errorf("DeleteFids on an original node: %v; want Unsupported", err)
	}
	answer.Store("5 two hundred\n")
	if _, err := c.DeleteFids(ctx, srv.URL, 3, []int64{5, 6}); err == nil || core.Is(core.Unsupported, err) {
		t.Errorf("DeleteFids with a garbled answer: %v; want an error", err)
	}
}
