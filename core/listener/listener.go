// Package listener is how the daemons accept connections: a cap on
// connections held at once, and accept errors that pass (out of file
// descriptors, a connection reset before it was accepted) waited out with
// backoff instead of ending the accept loop and with it the daemon.
package listener

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Limit accepts at most n connections at once; the next waits until one
// closes. Accept errors that pass (EMFILE, ENFILE, ECONNABORTED, ...) are
// logged and retried with backoff (5 ms doubling to 1 s, as net/http
// does), so Accept returns only a connection, net.ErrClosed after Close,
// or an error that will not pass. Its connections are still
// *net.TCPConn underneath with ReadFrom exposed, so that GET responses
// keep the kernel's sendfile path (net/http only uses it when the
// connection implements io.ReaderFrom). log may be nil.
func Limit(ln net.Listener, n int, log *slog.Logger) net.Listener {
	if n <= 0 {
		n = DefaultMaxConns(1)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), log: log}
}

// DefaultMaxConns is a connection cap that fits the process's file
// descriptor limit when each connection holds perConn descriptors (a
// storage node's GET holds the socket and the file): what the limit
// leaves after a reserve for the daemon's own files and outgoing
// connections, divided by perConn, and at least 64.
func DefaultMaxConns(perConn int) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	if perConn < 1 {
		perConn = 1
	}
	avail := int64(rl.Cur)
	if avail > 1<<20 {
		avail = 1 << 20
	}
	reserve := avail / 8
	if reserve < 64 {
		reserve = 64
	}
	n := (avail - reserve) / int64(perConn)
	if n < 64 {
		n = 64
	}
	return int(n)
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	log       *slog.Logger
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			release := sync.OnceFunc(func() { <-l.sem })
			if tc, ok := c.(*net.TCPConn); ok {
				return &limitedTCPConn{TCPConn: tc, release: release}, nil
			}
			return &limitedConn{Conn: c, release: release}, nil
		}
		if !passing(err) {
			<-l.sem
			return nil, err
		}
		if delay == 0 {
			delay = 5 * time.Millisecond
			l.log.Warn("listener: accept failed; retrying", "addr", l.Addr().String(), "err", err)
		} else if delay *= 2; delay > time.Second {
			delay = time.Second
		}
		select {
		case <-time.After(delay):
		case <-l.done:
			<-l.sem
			return nil, net.ErrClosed
		}
	}
}

// passing reports whether an accept error is one that goes away by
// itself: descriptors run out and come back, a connection can be reset
// before it is accepted.
func passing(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close stops accepting; waiting Accepts return.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedTCPConn gives its slot back when closed; the embedded
// *net.TCPConn keeps ReadFrom (sendfile) and WriteTo (splice).
type limitedTCPConn struct {
	*net.TCPConn
	release func()
}

func (c *limitedTCPConn) Close() error {
	err := c.TCPConn.Close()
	c.release()
	return err
}

// limitedConn is limitedTCPConn for other kinds of connection.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
