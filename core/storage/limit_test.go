package storage

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 1)
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
