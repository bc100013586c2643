package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Defaults for Options fields left zero.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultDeadRetry      = 5 * time.Second
	DefaultMaxIdle        = 8
)

// Options tune a tracker client. Zero values mean the defaults above.
type Options struct {
	// DialTimeout bounds connecting to one tracker.
	DialTimeout time.Duration
	// RequestTimeout bounds one request when the context has no deadline.
	RequestTimeout time.Duration
	// DeadRetry is how long a tracker that failed to connect is skipped.
	DeadRetry time.Duration
	// MaxIdle is the number of idle connections kept per tracker.
	MaxIdle int
	// DeferMetadata sends delete, rename and plugin_meta_set with
	// nosync=1: our tracker answers once the change is committed, and
	// makes it durable with a later durable commit or Sync, as a local
	// file system does its unlinks, renames and attributes until fsync.
	// The original ignores the argument (its changes are durable when
	// answered).
	DeferMetadata bool
	// SyncDelay bounds how long a deferred change waits for a Sync
	// (DefaultSyncDelay when 0).
	SyncDelay time.Duration
}

// Tracker is a client of one or more trackers. It is safe for concurrent
// use; each request uses its own pooled connection.
type Tracker struct {
	opts  Options
	addrs []string

	mu   sync.Mutex           // guards idle and dead
	idle map[string][]*tconn  // addr -> idle connections
	dead map[string]time.Time // addr -> skip until

	deferred atomic.Int64 // changes sent with nosync=1 since the last Sync
	// noSyncUntil (unix ns): until then the trackers are taken to lack
	// sync (the original's, whose changes are durable when answered).
	noSyncUntil atomic.Int64
	syncMu      sync.Mutex  // one Sync at a time: a later one waits for the one in flight
	syncTimer   *time.Timer // guarded by mu: the Sync SyncDelay after a first deferred change
	closed      bool        // guarded by mu
}

// DefaultSyncDelay bounds how long a change sent with
// Options.DeferMetadata waits for a Sync: as long as a local file system
// (ext4) keeps its metadata changes before it writes them out.
const DefaultSyncDelay = 5 * time.Second

// syncRecheck is how long a tracker that answered sync with
// unknown_command is taken to lack it, before it is asked again (it may
// have been upgraded).
const syncRecheck = time.Minute

type tconn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	used bool // served a request before: it may have gone stale
}

// NewTracker returns a client of the trackers at addrs ("host:port";
// a missing port means 7001).
func NewTracker(addrs []string, opts Options) (*Tracker, error) {
	if len(addrs) == 0 {
		return nil, errors.New("mogilefs: no trackers given")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.DeadRetry <= 0 {
		opts.DeadRetry = DefaultDeadRetry
	}
	if opts.SyncDelay <= 0 {
		opts.SyncDelay = DefaultSyncDelay
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = DefaultMaxIdle
	}
	t := &Tracker{opts: opts, idle: map[string][]*tconn{}, dead: map[string]time.Time{}}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "7001")
		}
		t.addrs = append(t.addrs, a)
	}
	if len(t.addrs) == 0 {
		return nil, errors.New("mogilefs: no trackers given")
	}
	return t, nil
}

// Addrs returns the tracker addresses.
func (t *Tracker) Addrs() []string { return append([]string(nil), t.addrs...) }

// Close closes idle connections.
func (t *Tracker) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.syncTimer != nil {
		t.syncTimer.Stop()
	}
	for _, list := range t.idle {
		for _, c := range list {
			c.c.Close()
		}
	}
	t.idle = map[string][]*tconn{}
	return nil
}

// order returns the trackers to try: live ones in random order first,
// then the ones recently dead.
func (t *Tracker) order() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	var live, dead []string
	for _, i := range rand.Perm(len(t.addrs)) {
		a := t.addrs[i]
		if now.Before(t.dead[a]) {
			dead = append(dead, a)
		} else {
			live = append(live, a)
		}
	}
	return append(live, dead...)
}

// get returns a pooled connection to addr, or a new one when fresh is set
// or the pool is empty.
func (t *Tracker) get(ctx context.Context, addr string, fresh bool) (*tconn, error) {
	t.mu.Lock()
	if list := t.idle[addr]; len(list) > 0 && !fresh {
		c := list[len(list)-1]
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	d := net.Dialer{Timeout: t.opts.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.mu.Lock()
		t.dead[addr] = time.Now().Add(t.opts.DeadRetry)
		t.mu.Unlock()
		return nil, err
	}
	return &tconn{addr: addr, c: c, r: bufio.NewReader(c)}, nil
}

func (t *Tracker) put(c *tconn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle[c.addr]) >= t.opts.MaxIdle {
		c.c.Close()
		return
	}
	t.idle[c.addr] = append(t.idle[c.addr], c)
}

// dropIdle closes the idle connections to addr: one of them was found
// closed by the tracker, and the others, as old, are likely closed too.
func (t *Tracker) dropIdle(addr string) {
	t.mu.Lock()
	list := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	for _, c := range list {
		c.c.Close()
	}
}

// MaxReplyBytes bounds one reply line (a list_keys page of 1,000 long
// keys with their metadata is a few MiB).
const MaxReplyBytes = 64 << 20

// ErrReplyTooLong is returned for a reply line longer than MaxReplyBytes.
var ErrReplyTooLong = errors.New("mogilefs: tracker reply longer than 64 MiB")

// readReply reads one reply line of at most MaxReplyBytes.
func readReply(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(buf)+len(frag) > MaxReplyBytes {
			return "", ErrReplyTooLong
		}
		if err == nil {
			if buf == nil {
				return string(frag), nil
			}
			return string(append(buf, frag...)), nil
		}
		buf = append(buf, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return string(buf), err
		}
	}
}

// idempotent commands may be retried on another tracker after a failure
// in the middle of the exchange.
var idempotent = map[string]bool{
	"noop": true, "get_paths": true, "file_info": true, "file_debug": true, "list_keys": true,
	"list_fids": true, "get_domains": true, "get_hosts": true, "get_devices": true,
	"server_setting": true, "server_settings": true, "fsck_status": true, "fsck_getlog": true,
	"rebalance_status": true, "rebalance_test": true, "clear_cache": true, "do_monitor_round": true,
	"create_open": true, // a retried open only leaves a tempfile for the reaper
}

// Do sends one command and returns the reply arguments, or a
// *protocol.Error for an ERR reply. Transport failures move on to the
// next tracker when nothing may have been executed yet, or when the
// command is idempotent.
func (t *Tracker) Do(ctx context.Context, cmd string, args protocol.Args) (protocol.Args, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.RequestTimeout)
		defer cancel()
	}
	line := protocol.RequestLine(cmd, args)
	var lastErr error
	for _, addr := range t.order() {
		for attempt := 0; attempt < 2; attempt++ {
			c, err := t.get(ctx, addr, attempt > 0)
			if err != nil {
				lastErr = core.E(core.Unavailable, "mogilefs: connect to tracker "+addr, err)
				if ctx.Err() != nil {
					lastErr = fmt.Errorf("mogilefs: connect to tracker %s: %w: %w", addr, ctx.Err(), err)
				}
				break
			}
			reply, sent, err := t.exchange(ctx, c, line)
			if err == nil {
				args, rerr := protocol.ParseReply(reply)
				if cmd == "rename" && IsCode(rerr, "key_exists") {
					// MogileFS 2.73 follows this answer with a stray
					// "OK" line (SPEC §1.8.4): the connection is not
					// reused, lest that line answer the next request.
					c.c.Close()
				} else {
					t.put(c)
				}
				return args, rerr
			}
			c.c.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("mogilefs: tracker %s: %s: %w: %w", addr, cmd, ctx.Err(), err)
			}
			lastErr = core.E(core.Unavailable, "mogilefs: tracker "+addr+": "+cmd, err)
			if sent && !idempotent[cmd] {
				return nil, lastErr
			}
			// A pooled connection may have gone stale (the tracker
			// restarted, or closed it while idle): one retry on a newly
			// dialled one, and the rest of the pool goes too.
			t.dropIdle(addr)
		}
	}
	return nil, lastErr
}

// exchange writes line and reads one reply line. sent reports whether the
// request may have reached the tracker.
func (t *Tracker) exchange(ctx context.Context, c *tconn, line string) (reply string, sent bool, err error) {
	dl, _ := ctx.Deadline()
	c.c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c.c, line); err != nil {
		return "", false, err
	}
	reply, err = readReply(c.r)
	if errors.Is(err, ErrReplyTooLong) {
		return "", true, err
	}
	if err != nil {
		// A reused connection the tracker closed while idle answers
		// nothing at all: the request was not executed.
		return "", !(c.used && reply == "" && errors.Is(err, io.EOF)), err
	}
	c.used = true
	return reply, true, nil
}
