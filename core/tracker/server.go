package tracker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/listener"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// call is one request being answered.
type call struct {
	args     protocol.Args
	clientIP net.IP
	raw      string
}

// handler answers one command. A *protocol.Error result becomes an ERR
// line; any other error becomes `ERR failure` (or `db` for the store).
type handler func(ctx context.Context, c *call) (protocol.Args, error)

// Server is one tracker.
type Server struct {
	cfg      Config
	log      *slog.Logger
	mon      *monitor
	db       queryStore // the database
	nodes    nodeCalls  // the storage nodes
	jobs     *jobs      // the background work
	handlers map[string]handler
	started  time.Time
	minFID   int64
	keyLimit int // longest key the database stores, read at start

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines and connections

	mu        sync.Mutex           // guards listeners, conns and recent
	listeners []net.Listener       // open listeners
	conns     map[net.Conn]*connSt // open client connections
	recent    []recentQuery        // last 50 queries, oldest first

	watchers   watchers     // connections following the log (!watch)
	lineBudget atomic.Int64 // bytes of long request lines the connections may still hold

	stats            Stats
	metrics          *metrics
	replicas         replicas
	hasAdminListener atomic.Bool
	errRefs          atomic.Int64 // numbers the database errors logged, for the replies
}

// connSt is where one client connection stands: idle (waiting for a
// request), busy (answering one) or closed (the tracker is shutting down
// and will execute nothing more from it). The change from idle to busy
// and from idle to closed are compare-and-swaps, so that a request read
// just as the tracker shuts down is either answered or not executed at
// all, never committed with its reply lost.
type connSt struct {
	state atomic.Int32
	admin bool
	wmu   sync.Mutex    // guards w: replies, and log lines for !watch
	w     *bufio.Writer // set by serveConn
}

const (
	connIdle int32 = iota
	connBusy
	connClosed
)

// Stats are the tracker's counters.
type Stats struct {
	Queries    atomic.Int64
	Errors     atomic.Int64
	Processing atomic.Int64
	Conns      atomic.Int64

	Replicated, ReplicateFailures, ReplicatedBytes, Deleted, FsckChecked atomic.Int64
	// Orphans counts fid files the orphan sweep found tied to their
	// device by no row.
	Orphans atomic.Int64
	// DeleteWaitNanos is how long the delete job waited for bursts of
	// client requests to end (Config.DeleteLag), in nanoseconds.
	DeleteWaitNanos atomic.Int64
}

// New returns a tracker over cfg.Store. Call Start to run its monitor,
// then Serve on one or more listeners.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("tracker: no store configured")
	}
	cfg.setDefaults()
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	s := &Server{
		cfg:     cfg,
		started: time.Now(),
		conns:   map[net.Conn]*connSt{},
		metrics: newMetrics(),
	}
	s.log = slog.New(&watchHandler{inner: cfg.Logger.Handler(), w: &s.watchers})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lineBudget.Store(cfg.LongLineBudget)
	s.db = cfg.Store
	s.nodes = nodeCalls{Client: newNodeClient(cfg), cfg: &s.cfg, log: s.log, sideDown: new(sync.Map)}
	s.mon = newMonitor(&s.cfg, s.log, cfg.Store, s.nodes.Client, &s.wg)
	s.jobs = newJobs(&s.cfg, s.log, cfg.Store, s.nodes, s.mon, &s.stats, s.ctx, &s.wg)
	s.mon.onSnapshot = s.refreshReplicas
	s.mon.onWriteable = s.jobs.deviceWriteable
	s.handlers = s.commandTable()
	return s, nil
}

// Start loads the configuration tables and starts the monitor. It fails
// when the database cannot be read.
func (s *Server) Start(ctx context.Context) error {
	if err := s.mon.refresh(ctx); err != nil {
		return fmt.Errorf("tracker: read configuration: %w", err)
	}
	max, err := s.db.MaxFID(ctx)
	if err != nil {
		return fmt.Errorf("tracker: read max fid: %w", err)
	}
	s.minFID = max
	if s.keyLimit, err = s.db.KeyLimit(ctx); err != nil {
		return fmt.Errorf("tracker: read the key width: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mon.run(s.ctx)
	}()
	if !s.cfg.NoJobs {
		s.jobs.start()
	}
	return nil
}

// Serve accepts client connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeAdmin accepts connections on an admin listener. Once a tracker has
// one, admin and "!" commands are refused on every other listener (roles
// by address: queries on the public address, administration on another).
func (s *Server) ServeAdmin(ln net.Listener) error {
	s.hasAdminListener.Store(true)
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, admin bool) error {
	ln = listener.Limit(ln, s.cfg.MaxConns, s.log)
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			tc.SetKeepAlive(true)
		}
		st := &connSt{admin: admin}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = st
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c, st)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, lets requests in progress finish (until ctx
// ends), closes every connection and stops the monitor.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	// Wait for busy connections to go idle, then close them all.
	for {
		busy := 0
		s.mu.Lock()
		for c, st := range s.conns {
			if st.state.CompareAndSwap(connIdle, connClosed) {
				c.SetReadDeadline(time.Now())
			} else if st.state.Load() == connBusy {
				busy++
			}
		}
		s.mu.Unlock()
		if busy == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		// Copies written but not recorded by jobs cut short: one last try.
		s.jobs.removeStrays(ctx)
		s.nodes.CloseIdle()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connBufBytes is the size of each connection's read and write buffers:
// what an idle connection holds.
const connBufBytes = 16 << 10

// readLine reads one request line of at most protocol.MaxLineBytes.
// tooLong is true (and the rest of the line discarded) when the line was
// longer, or when holding more of it would take the tracker past its
// budget for long lines: the part of a line beyond the read buffer is
// counted against budget while it is held.
func readLine(r *bufio.Reader, budget *atomic.Int64) (line string, tooLong bool, err error) {
	var buf []byte
	var held int64
	defer func() { budget.Add(held) }()
	for first := true; ; first = false {
		frag, err := r.ReadSlice('\n')
		if err == nil && first {
			return strings.TrimRight(string(frag), "\r\n"), false, nil
		}
		if !tooLong {
			n := int64(len(frag))
			if len(buf)+len(frag) <= protocol.MaxLineBytes && budget.Add(-n) >= 0 {
				held += n
				buf = append(buf, frag...)
			} else {
				// Past the line limit or the budget: let go of the line
				// (and of this fragment, if it was taken).
				if len(buf)+len(frag) <= protocol.MaxLineBytes {
					budget.Add(n)
				}
				budget.Add(held)
				tooLong, held, buf = true, 0, nil
			}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", false, err
		}
	}
	return strings.TrimRight(string(buf), "\r\n"), tooLong, nil
}

// writeTimeout is how long a client may leave a reply unread.
const writeTimeout = 120 * time.Second

func (s *Server) serveConn(c net.Conn, st *connSt) {
	defer c.Close()
	s.stats.Conns.Add(1)
	defer s.stats.Conns.Add(-1)
	ip := net.IPv4zero
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip = ta.IP
	}
	r := bufio.NewReaderSize(c, connBufBytes)
	w := bufio.NewWriterSize(c, connBufBytes)
	st.w = w
	defer func() {
		s.watchers.drop(st)
		st.wmu.Lock()
		w.Flush() // replies held back for pipelined requests
		st.wmu.Unlock()
	}()
	for {
		// An idle connection may wait IdleTimeout for its next request;
		// once the request has begun, the rest of its line must come
		// within RequestReadTimeout.
		if r.Buffered() == 0 {
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if _, err := r.Peek(1); err != nil {
				s.readFailed(c, err)
				return
			}
		}
		c.SetReadDeadline(time.Now().Add(s.cfg.RequestReadTimeout))
		line, tooLong, err := readLine(r, &s.lineBudget)
		if err != nil {
			s.readFailed(c, err)
			return
		}
		if line == "" && !tooLong {
			continue
		}
		if testHookLineRead != nil {
			testHookLineRead(line)
		}
		if !st.state.CompareAndSwap(connIdle, connBusy) {
			return // shutting down: this request is not executed
		}
		var reply string
		switch {
		case tooLong:
			reply = protocol.ErrLine("request_too_long", fmt.Sprintf("request line longer than %d bytes", protocol.MaxLineBytes), "")
		case line[0] == '!':
			reply = s.admin(line, ip, st.admin, func() bool { return s.watchers.toggle(st, c) })
		default:
			s.jobs.clients.mark(time.Now())
			reply = s.query(line, ip, st.admin)
		}
		st.wmu.Lock()
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		w.WriteString(reply)
		// Flush unless more pipelined requests are already buffered.
		var werr error
		if r.Buffered() == 0 || w.Available() < 4096 {
			werr = w.Flush()
		}
		st.wmu.Unlock()
		if werr != nil {
			st.state.Store(connIdle)
			return
		}
		st.state.Store(connIdle)
		if s.ctx.Err() != nil {
			return
		}
	}
}

// testHookLineRead, when set by a test, runs after each request line is
// read and before it is executed.
var testHookLineRead func(line string)

// readFailed logs a connection's read error unless it is the ordinary
// end of a connection.
func (s *Server) readFailed(c net.Conn, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Debug("tracker: closing a connection that sent nothing in time", "client", c.RemoteAddr())
	default:
		s.log.Debug("tracker: client read failed", "client", c.RemoteAddr(), "err", err)
	}
}

// queryTimeout bounds one query, like the original's 30 s watchdog.
const queryTimeout = 30 * time.Second

// query answers one query line.
func (s *Server) query(line string, ip net.IP, adminConn bool) string {
	s.stats.Queries.Add(1)
	s.stats.Processing.Add(1)
	defer s.stats.Processing.Add(-1)
	start := time.Now()
	req, ok := protocol.ParseRequest(line)
	if !ok {
		s.stats.Errors.Add(1)
		s.metrics.observe("", "unknown_command", time.Since(start))
		return protocol.ErrLine("unknown_command", "", "")
	}
	callid := req.Args.Get("callid")
	if adminCommands[req.Command] && !s.adminAllowed(ip, adminConn) {
		s.stats.Errors.Add(1)
		s.log.Warn("tracker: refused an admin command from a client outside the admin networks", "client", ip.String(), "command", req.Command)
		s.metrics.observe(req.Command, "access_denied", time.Since(start))
		return protocol.ErrLine("access_denied", "Admin commands are not allowed from "+ip.String()+" on this address (see admin_networks and admin_listen)", callid)
	}
	h, ok := s.handlers[req.Command]
	if !ok {
		s.stats.Errors.Add(1)
		s.metrics.observe("unknown", "unknown_command", time.Since(start))
		return protocol.ErrLine("unknown_command", "", callid)
	}
	ctx, cancel := context.WithTimeout(s.ctx, queryTimeout)
	defer cancel()
	out, err := h(ctx, &call{args: req.Args, clientIP: ip, raw: req.Raw})
	s.noteRecent(recentQuery{ip: ip, cmd: req.Command, raw: req.Raw, took: time.Since(start)})
	if err != nil {
		s.stats.Errors.Add(1)
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			pe = s.internalError(req.Command, err)
		}
		s.metrics.observe(req.Command, pe.Code, time.Since(start))
		if s.cfg.Plain && req.Command == "rename" && pe.Code == "key_exists" {
			// 2.73 follows this answer with a stray OK line (SPEC §1.8.4);
			// a plain tracker reproduces it for the clients tested on it.
			return protocol.ErrLine(pe.Code, pe.Text, callid) + "OK\r\n"
		}
		return protocol.ErrLine(pe.Code, pe.Text, callid)
	}
	s.metrics.observe(req.Command, "ok", time.Since(start))
	if callid != "" {
		if out == nil {
			out = protocol.Args{}
		}
		out["callid"] = callid
	}
	return protocol.OKLine(out)
}

// kindCodes is the reply code for an error of each kind that a handler
// did not answer with a wire error of its own; kinds not listed answer
// `failure`.
var kindCodes = map[core.Kind]string{
	core.Database:    "db",
	core.NoSpace:     "no_devices",
	core.Invalid:     "bad_params",
	core.Unsupported: "unknown_command",
	core.Permission:  "access_denied",
}

// internalError turns an error that is not a wire error into a reply by
// its kind, and logs it. Database errors are not echoed to the client
// (their text may name tables, users and hosts): the reply carries a
// reference to the log line instead.
func (s *Server) internalError(cmd string, err error) *protocol.Error {
	k := core.KindOf(err)
	if errors.Is(err, context.DeadlineExceeded) {
		k = core.Timeout
	}
	code, ok := kindCodes[k]
	if !ok {
		code = "failure"
	}
	switch k {
	case core.Database:
		ref := s.errRefs.Add(1)
		s.log.Error("tracker: database error", "command", cmd, "ref", ref, "err", err)
		return &protocol.Error{Code: code, Text: fmt.Sprintf("Database error (tracker log ref=%d)", ref)}
	case core.Timeout:
		s.log.Error("tracker: command timed out", "command", cmd, "err", err)
		return &protocol.Error{Code: code, Text: "Operation timed out: " + err.Error()}
	}
	s.log.Error("tracker: command failed", "command", cmd, "kind", k, "err", err)
	return &protocol.Error{Code: code, Text: "Operation failed: " + err.Error()}
}

// recentQuery is one entry of !recent.
type recentQuery struct {
	ip   net.IP
	cmd  string
	raw  string
	took time.Duration
}

func (q recentQuery) String() string {
	return fmt.Sprintf("%s %s %s %.4f %.4f", q.ip, q.cmd, q.raw, q.took.Seconds(), q.took.Seconds())
}

func (s *Server) noteRecent(q recentQuery) {
	s.mu.Lock()
	s.recent = append(s.recent, q)
	if len(s.recent) > 50 {
		s.recent = s.recent[len(s.recent)-50:]
	}
	s.mu.Unlock()
}

// Stats returns the tracker's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// store returns the metadata store.
func (s *Server) store() queryStore { return s.db }
