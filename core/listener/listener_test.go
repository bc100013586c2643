package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Limit(inner, 1, nil)
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	if _, ok := first.(io.ReaderFrom); !ok {
		t.Errorf("accepted %T does not implement io.ReaderFrom: GET responses would lose sendfile", first)
	}
	dial()
	select {
	case c := <-accepted:
		t.Fatalf("second connection %v accepted while the only slot is taken", c.RemoteAddr())
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close must not give back a second slot
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the freed slot was not given to the waiting connection")
	}
	dial()
	select {
	case <-accepted:
		t.Fatal("a slot was given back twice")
	case <-time.After(200 * time.Millisecond):
	}
	ln.Close()
	select {
	case _, ok := <-accepted:
		if ok {
			t.Fatal("accepted after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// scriptedListener fails its first Accepts with errs, then hands out one
// end of a pipe.
type scriptedListener struct {
	net.Listener
	errs []error
}

func (s *scriptedListener) Accept() (net.Conn, error) {
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	a, _ := net.Pipe()
	return a, nil
}

func (s *scriptedListener) Close() error { return nil }

func (s *scriptedListener) Addr() net.Addr { return &net.TCPAddr{} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// Out of descriptors, Accept waits and tries again instead of returning
// the error (which ended the accept loop and the daemon).
func TestLimitRetriesPassingErrors(t *testing.T) {
	ln := Limit(&scriptedListener{errs: []error{emfile(), emfile(), emfile()}}, 4, nil)
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v; want a connection once descriptors come back", err)
	}
	c.Close()
}

// An error that will not pass is returned, and its slot given back.
func TestLimitReturnsLastingErrors(t *testing.T) {
	bad := errors.New("listener broken")
	ln := Limit(&scriptedListener{errs: []error{bad, bad}}, 1, nil)
	for i := 0; i < 2; i++ {
		if _, err := ln.Accept(); !errors.Is(err, bad) {
			t.Fatalf("Accept %d returned %v; want %v", i, err, bad)
		}
	}
}

// Close ends an Accept that is waiting out an error.
func TestLimitCloseEndsBackoff(t *testing.T) {
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = emfile()
	}
	ln := Limit(&scriptedListener{errs: errs}, 1, nil)
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept returned %v after Close; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept kept waiting after Close")
	}
}

func TestDefaultMaxConns(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip(err)
	}
	one, two := DefaultMaxConns(1), DefaultMaxConns(2)
	if one < 64 || uint64(one) >= rl.Cur && rl.Cur > 128 {
		t.Errorf("DefaultMaxConns(1) = %d with a limit of %d descriptors", one, rl.Cur)
	}
	if two > one {
		t.Errorf("DefaultMaxConns(2) = %d > DefaultMaxConns(1) = %d", two, one)
	}
}
