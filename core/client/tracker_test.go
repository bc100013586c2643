package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// fakeTracker answers every request line with reply(line) until closed.
// dropAll closes every connection it has open, as a restarted tracker does.
type fakeTracker struct {
	ln    net.Listener
	reply func(line string) string
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newFakeTracker(t *testing.T, reply func(string) string) *fakeTracker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTracker{ln: ln, reply: reply, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = true
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(f.reply(strings.TrimRight(line, "\r\n")))); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.dropAll(); f.wg.Wait() })
	return f
}

func (f *fakeTracker) addr() string { return f.ln.Addr().String() }

func (f *fakeTracker) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = map[net.Conn]bool{}
}

func okReply(string) string { return "OK fid=1\r\n" }

// After a tracker restart every pooled connection is stale; a request must
// still succeed (it used to take a second stale one for its one retry).
func TestStalePooledConnections(t *testing.T) {
	// The first four requests are answered only once all four arrived,
	// so they hold four connections at once.
	var arrived sync.WaitGroup
	arrived.Add(4)
	var n atomic.Int32
	f := newFakeTracker(t, func(line string) string {
		if n.Add(1) <= 4 {
			arrived.Done()
			arrived.Wait()
		}
		return okReply(line)
	})
	tr, err := NewTracker([]string{f.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	// Four requests at once leave four idle connections in the pool.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tr.Do(ctx, "get_paths", protocol.Args{"domain": "d", "key": "k"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	tr.mu.Lock()
	idle := len(tr.idle[f.addr()])
	tr.mu.Unlock()
	if idle < 2 {
		t.Fatalf("%d idle connections after four concurrent requests; the test needs at least 2", idle)
	}
	f.dropAll()
	time.Sleep(20 * time.Millisecond) // let the closes reach the client's sockets
	for _, cmd := range []string{"get_paths", "create_close"} {
		if _, err := tr.Do(ctx, cmd, protocol.Args{"domain": "d", "key": "k"}); err != nil {
			t.Errorf("%s after the tracker dropped its connections: %v", cmd, err)
		}
	}
}

// A reply line longer than the bound is an error, not unbounded memory.
func TestReplyLineBounded(t *testing.T) {
	long := "OK x=" + strings.Repeat("a", MaxReplyBytes+10) + "\r\n"
	f := newFakeTracker(t, func(string) string { return long })
	tr, err := NewTracker([]string{f.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = tr.Do(context.Background(), "noop", nil)
	if !errors.Is(err, ErrReplyTooLong) {
		t.Fatalf("Do = %v; want ErrReplyTooLong", err)
	}
}

// MogileFS 2.73 answers a rename onto an existing key with ERR key_exists
// and then a stray OK line (SPEC §1.8.4). The stray line must not be
// taken as the answer to the next request on that connection.
func TestRenameKeyExistsStrayOK(t *testing.T) {
	f := newFakeTracker(t, func(line string) string {
		switch {
		case strings.HasPrefix(line, "rename "):
			return "ERR key_exists Target+key+name+already+exists%3B+can%27t+overwrite.\r\nOK\r\n"
		case strings.HasPrefix(line, "file_info "):
			return "ERR unknown_key unknown_key\r\n"
		}
		return "OK\r\n"
	})
	tr, err := NewTracker([]string{f.addr()}, Options{MaxIdle: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if err := tr.Rename(ctx, "d", "a", "b"); !IsCode(err, "key_exists") {
		t.Fatalf("rename onto an existing key: %v; want key_exists", err)
	}
	if _, err := tr.FileInfo(ctx, "d", "x"); !IsCode(err, "unknown_key") {
		t.Errorf("the request after it got %v; want its own answer, unknown_key", err)
	}
}
