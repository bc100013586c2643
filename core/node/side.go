package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// sideIdleMax is how long an idle side-channel connection is kept: well
// within the node's own idle timeout (10 min for ours), so that a kept
// one is seldom found closed.
const sideIdleMax = 30 * time.Second

// sideIdlePerNode bounds the idle side-channel connections kept per node.
const sideIdlePerNode = 16

// sidePool keeps idle side-channel connections by address. The side
// channel answers one line per request line, so a connection serves one
// request at a time, in the caller's goroutine: no handoff to a reader
// and a writer as an HTTP request has.
type sidePool struct {
	mu   sync.Mutex
	idle map[string][]sideConn
}

// sideConn is a side-channel connection with its reader.
type sideConn struct {
	net.Conn
	r    *bufio.Reader
	used time.Time
}

// get returns an idle connection to addr that is fresh enough, if any.
func (p *sidePool) get(addr string) (sideConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for list := p.idle[addr]; len(list) > 0; list = p.idle[addr] {
		c := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		if time.Since(c.used) < sideIdleMax {
			return c, true
		}
		c.Close()
	}
	return sideConn{}, false
}

// put keeps c for the next request to addr, or closes it.
func (p *sidePool) put(addr string, c sideConn) {
	c.SetDeadline(time.Time{})
	c.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]sideConn{}
	}
	if len(p.idle[addr]) >= sideIdlePerNode {
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
}

// closeAll closes every idle connection.
func (p *sidePool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.idle {
		for _, c := range list {
			c.Close()
		}
		delete(p.idle, addr)
	}
}

// Size asks the side channel at addr (host:port) for the size of the
// file at uri (/devN/...), over a kept connection: a missing file is an
// error of kind core.NotFound. Ours and the original's nodes answer it.
func (c *Client) Size(ctx context.Context, addr, uri string) (int64, error) {
	if strings.ContainsAny(uri, " \r\n") {
		return 0, core.Errorf(core.Invalid, "node: bad uri "+strconv.Quote(uri))
	}
	for attempt := 0; ; attempt++ {
		sc, kept := c.sides.get(addr)
		if !kept {
			conn, err := c.side(ctx, addr)
			if err != nil {
				return 0, err
			}
			sc = sideConn{Conn: conn, r: bufio.NewReader(conn)}
		}
		size, err := c.sizeOn(ctx, sc, uri)
		if err == nil || core.KindOf(err) == core.NotFound {
			c.sides.put(addr, sc)
			return size, err
		}
		sc.Close()
		if !kept || attempt > 0 || ctx.Err() != nil {
			return 0, transportError(ctx, "side channel", addr, err)
		}
		// A kept connection the node had closed: once more, afresh.
	}
}

// sizeOn sends one size request on sc and reads its answer.
func (c *Client) sizeOn(ctx context.Context, sc sideConn, uri string) (int64, error) {
	if dl, ok := ctx.Deadline(); ok {
		sc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { sc.SetDeadline(time.Now()) })
	defer stop()
	if _, err := fmt.Fprintf(sc, "size %s\r\n", uri); err != nil {
		return 0, err
	}
	line, err := sc.r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimRight(line, "\r\n")
	v, ok := strings.CutPrefix(line, uri+" ")
	if !ok {
		return 0, fmt.Errorf("unexpected answer %q", line)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("unexpected answer %q", line)
	case n < 0:
		return 0, core.E(core.NotFound, "side channel", fmt.Errorf("%s missing", uri))
	}
	return n, nil
}
