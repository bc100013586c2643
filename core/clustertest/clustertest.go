// Package clustertest starts a real MogileFS cluster inside a test: a
// tracker on a fresh database (SQLite, or MySQL when asked) and storage
// nodes on their own loopback addresses (127.0.0.1, 127.0.0.2, ...),
// each with its own docroot and devices, all on ephemeral ports.
package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/storage"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// Options shape a test cluster.
type Options struct {
	// DSN of the metadata database; "" makes a fresh SQLite file.
	DSN string
	// Hosts is the number of storage nodes (default 2); DevsPerHost the
	// devices on each (default 1).
	Hosts, DevsPerHost int
	// Domain, when set, is created with a class "two" (mindevcount 2)
	// and "one" (mindevcount 1).
	Domain string
	// Tune, when set, adjusts the tracker's configuration before start.
	Tune func(*tracker.Config)
	// Layout, when set, gives the devids of each host (overrides Hosts
	// and DevsPerHost).
	Layout [][]int
	// NoRegister leaves hosts and devices unregistered with the tracker.
	NoRegister bool
	// NodesNoSync runs the storage nodes without fsync (mogstored
	// --fsync=false).
	NodesNoSync bool
}

// Node is one running storage node.
type Node struct {
	Name     string
	IP       string
	Port     int
	DocRoot  string
	Devids   []int
	Server   *storage.Server
	http     *http.Server
	handlers *handlers // requests being handled
	side     net.Listener
	cancel   context.CancelFunc
}

// Cluster is a running test cluster.
type Cluster struct {
	TB          testing.TB
	TrackerAddr string
	Tracker     *tracker.Server
	Store       *store.Store
	Nodes       []*Node
	Client      *client.Client
	sidePort    int
	sideMu      sync.Mutex
	sideLns     map[string]net.Listener // bound at start, each taken by its node's first serve; guarded by sideMu
	nodesNoSync bool
}

// TestLogger returns a logger that writes to t.Log at the given level.
func TestLogger(tb testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: level}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}

// Start brings up a cluster and registers its shutdown with tb.Cleanup.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Hosts == 0 {
		opts.Hosts = 2
	}
	if opts.DevsPerHost == 0 {
		opts.DevsPerHost = 1
	}
	if opts.DSN == "" {
		opts.DSN = "sqlite:" + filepath.Join(tb.TempDir(), "mogilefs.db")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: opts.DSN})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	c := &Cluster{TB: tb, Store: st, nodesNoSync: opts.NodesNoSync}

	// The side channel must share one port number across nodes, as the
	// tracker has one mogstored_stream_port: find one free on every IP.
	if opts.Layout == nil {
		devid := 1
		for i := 0; i < opts.Hosts; i++ {
			var devs []int
			for j := 0; j < opts.DevsPerHost; j++ {
				devs = append(devs, devid)
				devid++
			}
			opts.Layout = append(opts.Layout, devs)
		}
	}
	c.sidePort, c.sideLns = commonPortListeners(tb, len(opts.Layout))
	for i, devs := range opts.Layout {
		n := c.startNode(fmt.Sprintf("127.0.0.%d", i+1), fmt.Sprintf("host%d", i+1), devs)
		c.Nodes = append(c.Nodes, n)
	}
	c.Tracker, c.TrackerAddr = c.StartTracker(opts.Tune)
	c.Client, err = client.New([]string{c.TrackerAddr}, client.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Client.Close() })
	if opts.NoRegister {
		return c
	}
	ndev := 0
	for _, n := range c.Nodes {
		c.Must("create_host", protocol.Args{"host": n.Name, "ip": n.IP, "port": strconv.Itoa(n.Port), "status": "alive"})
		for _, d := range n.Devids {
			c.Must("create_device", protocol.Args{"hostname": n.Name, "devid": strconv.Itoa(d), "state": "alive"})
			ndev++
		}
	}
	if opts.Domain != "" {
		c.Must("create_domain", protocol.Args{"domain": opts.Domain})
		c.Must("create_class", protocol.Args{"domain": opts.Domain, "class": "two", "mindevcount": "2"})
		c.Must("create_class", protocol.Args{"domain": opts.Domain, "class": "one", "mindevcount": "1"})
	}
	c.WaitWritable(ndev)
	return c
}

// SidePort is the side-channel port the trackers expect on every
// storage node (their mogstored_stream_port).
func (c *Cluster) SidePort() int { return c.sidePort }

// StartTracker starts another tracker on the cluster's database, on an
// ephemeral port, and returns it with its address.
func (c *Cluster) StartTracker(tune func(*tracker.Config)) (*tracker.Server, string) {
	c.TB.Helper()
	return c.StartTrackerAt("127.0.0.1:0", tune)
}

// StartTrackerAt starts a tracker listening on addr (e.g. the address of
// one that was stopped, to restart it).
func (c *Cluster) StartTrackerAt(addr string, tune func(*tracker.Config)) (*tracker.Server, string) {
	tb := c.TB
	tb.Helper()
	ctx := context.Background()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	cfg := tracker.Config{
		Store:              c.Store,
		MonitorInterval:    200 * time.Millisecond,
		WriteProbeInterval: 2 * time.Second,
		SideChannelPort:    c.sidePort,
		MinFreeSpaceMB:     1,
		QueuePoll:          100 * time.Millisecond,
		ReaperInterval:     200 * time.Millisecond,
		Logger:             TestLogger(tb, slog.LevelWarn),
	}
	if tune != nil {
		tune(&cfg)
	}
	tr, err := tracker.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tr.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	go tr.Serve(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	return tr, ln.Addr().String()
}

// commonPortListeners binds one TCP port on each of 127.0.0.1..127.0.0.n
// and returns it with its listeners, by address. They are kept bound:
// a port found free and closed again could be taken by another test
// process before the node bound it.
func commonPortListeners(tb testing.TB, n int) (int, map[string]net.Listener) {
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		lns := map[string]net.Listener{"127.0.0.1": ln}
		for i := 2; i <= n; i++ {
			ip := fmt.Sprintf("127.0.0.%d", i)
			l2, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				break
			}
			lns[ip] = l2
		}
		if len(lns) == n {
			return port, lns
		}
		for _, l := range lns {
			l.Close()
		}
	}
	tb.Fatal("no common free port for the side channel")
	return 0, nil
}

func (c *Cluster) startNode(ip, name string, devids []int) *Node {
	tb := c.TB
	tb.Helper()
	root := tb.TempDir()
	n := &Node{Name: name, IP: ip, DocRoot: root}
	for _, d := range devids {
		if err := os.Mkdir(filepath.Join(root, "dev"+strconv.Itoa(d)), 0o755); err != nil {
			tb.Fatal(err)
		}
		n.Devids = append(n.Devids, d)
	}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		tb.Fatalf("listen on %s (loopback aliases needed): %v", ip, err)
	}
	n.Port = ln.Addr().(*net.TCPAddr).Port
	c.serveNode(n, ln)
	return n
}

func (c *Cluster) serveNode(n *Node, ln net.Listener) {
	tb := c.TB
	srv, err := storage.New(storage.Config{DocRoot: n.DocRoot, UsageInterval: time.Second, NoSync: c.nodesNoSync, Logger: TestLogger(tb, slog.LevelWarn)})
	if err != nil {
		tb.Fatal(err)
	}
	n.Server = srv
	srv.WriteUsage()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go srv.RunUsage(ctx)
	n.http = srv.NewHTTPServer()
	// Stop waits for the handlers of the killed server: in a process that
	// is killed they end with it, and one that went on after the node was
	// back would write where the new one already answered.
	hs := &handlers{}
	hs.idle = sync.NewCond(&hs.mu)
	n.handlers = hs
	inner := n.http.Handler
	n.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			// A stalled node reads no more of the bodies in progress.
			r.Body = &stallBody{ReadCloser: r.Body, h: hs}
			hs.mu.Lock()
			hs.puts++
			hs.mu.Unlock()
			defer func() {
				hs.mu.Lock()
				hs.puts--
				hs.mu.Unlock()
			}()
		}
		if r.Method == http.MethodPost && hs.plainDeletes.Load() {
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		if !hs.enter() {
			http.Error(w, "node stopped", http.StatusServiceUnavailable)
			return
		}
		defer hs.leave()
		if f := hs.before.Load(); f != nil {
			(*f)(r)
		}
		inner.ServeHTTP(w, r)
		if r.Method == http.MethodPut {
			hs.waitToAnswer()
		}
	})
	go n.http.Serve(ln)
	c.sideMu.Lock()
	side := c.sideLns[n.IP]
	delete(c.sideLns, n.IP)
	c.sideMu.Unlock()
	if side == nil {
		var err error
		if side, err = net.Listen("tcp", fmt.Sprintf("%s:%d", n.IP, c.sidePort)); err != nil {
			tb.Fatal(err)
		}
	}
	n.side = side
	go srv.ServeSide(ctx, side)
	tb.Cleanup(func() { n.Stop() })
}

// Shutdown stops a storage node gracefully: no new connections, and the
// transfers in progress finish (until ctx ends).
func (n *Node) Shutdown(ctx context.Context) error {
	if n.cancel == nil {
		return nil
	}
	n.side.Close()
	err := n.http.Shutdown(ctx)
	n.cancel()
	n.cancel = nil
	return err
}

// Stop kills a storage node: its listeners close and connections drop.
func (n *Node) Stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	n.http.Close()
	n.side.Close()
	n.handlers.stopAndWait()
}

// handlers counts a node's requests in progress; once stopped it takes
// no more.
type handlers struct {
	mu      sync.Mutex
	idle    *sync.Cond
	active  int
	puts    int // PUT requests among the active
	stopped bool
	stalled bool // requests wait, as on a node stopped with SIGSTOP
	// holdReplies: a PUT that has stored its bytes waits to answer.
	holdReplies bool
	held        int // PUTs waiting to answer

	plainDeletes atomic.Bool // POSTs refused, as the original's nodes do
	before       atomic.Pointer[func(*http.Request)]
}

// BeforeEach makes the node call f with each HTTP request before serving
// it (nil: no more calls): a test's way to act at a chosen point of
// another party's work.
func (n *Node) BeforeEach(f func(*http.Request)) {
	if f == nil {
		n.handlers.before.Store(nil)
		return
	}
	n.handlers.before.Store(&f)
}

// PlainDeletes makes the node refuse batch deletions (POST
// /devN/?delete_fids=1) as the original's storage nodes do: 405, without
// core.FidDeleteHeader. DELETE works as before.
func (n *Node) PlainDeletes() { n.handlers.plainDeletes.Store(true) }

// Stall makes the node answer no HTTP request until Resume, as a node
// whose process was stopped (SIGSTOP) or whose disk hangs: connections
// are accepted, requests wait, and uploads in progress take no more bytes.
func (n *Node) Stall() { n.handlers.setStalled(true) }

// Uploads returns the number of PUT requests the node has received and
// not answered, those waiting out a Stall included.
func (n *Node) Uploads() int {
	n.handlers.mu.Lock()
	defer n.handlers.mu.Unlock()
	return n.handlers.puts
}

// Resume ends a Stall: the waiting requests go on.
func (n *Node) Resume() { n.handlers.setStalled(false) }

// HoldReplies makes the node store the bytes of each upload and then
// hold its answer until ReleaseReplies, as a node whose reply is held up
// in the network: the copy is on disk while its writer still waits.
func (n *Node) HoldReplies() {
	n.handlers.mu.Lock()
	n.handlers.holdReplies = true
	n.handlers.mu.Unlock()
}

// HeldReplies returns the number of uploads stored and waiting to answer.
func (n *Node) HeldReplies() int {
	n.handlers.mu.Lock()
	defer n.handlers.mu.Unlock()
	return n.handlers.held
}

// ReleaseReplies ends HoldReplies: the held answers are sent.
func (n *Node) ReleaseReplies() {
	n.handlers.mu.Lock()
	n.handlers.holdReplies = false
	n.handlers.idle.Broadcast()
	n.handlers.mu.Unlock()
}

// waitToAnswer holds an upload's answer while replies are held (the
// server sends a handler's small answer once it returns).
func (h *handlers) waitToAnswer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held++
	for h.holdReplies && !h.stopped {
		h.idle.Wait()
	}
	h.held--
}

// stallBody is a request body that is not read while its node stalls.
type stallBody struct {
	io.ReadCloser
	h *handlers
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.h.mu.Lock()
	for b.h.stalled && !b.h.stopped {
		b.h.idle.Wait()
	}
	b.h.mu.Unlock()
	return b.ReadCloser.Read(p)
}

func (h *handlers) setStalled(v bool) {
	h.mu.Lock()
	h.stalled = v
	h.idle.Broadcast()
	h.mu.Unlock()
}

func (h *handlers) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.stalled && !h.stopped {
		h.idle.Wait()
	}
	if h.stopped {
		return false
	}
	h.active++
	return true
}

func (h *handlers) leave() {
	h.mu.Lock()
	h.active--
	h.idle.Broadcast()
	h.mu.Unlock()
}

func (h *handlers) stopAndWait() {
	h.mu.Lock()
	h.stopped = true
	h.idle.Broadcast()
	for h.active > 0 {
		h.idle.Wait()
	}
	h.mu.Unlock()
}

// Restart brings a stopped node back on the same address and docroot.
func (c *Cluster) Restart(n *Node) {
	c.TB.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", fmt.Sprintf("%s:%d", n.IP, n.Port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.TB.Fatal(err)
	}
	c.serveNode(n, ln)
}

// Do sends one tracker command through the cluster's client.
func (c *Cluster) Do(cmd string, args protocol.Args) (protocol.Args, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Client.Tracker.Do(ctx, cmd, args)
}

// Must sends one tracker command and fails the test on an error.
func (c *Cluster) Must(cmd string, args protocol.Args) protocol.Args {
	c.TB.Helper()
	r, err := c.Do(cmd, args)
	if err != nil {
		c.TB.Fatalf("%s %v: %v", cmd, args, err)
	}
	return r
}

// WaitWritable waits until n devices are observed writeable.
func (c *Cluster) WaitWritable(n int) {
	c.TB.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r := c.Must("get_devices", nil)
		w := 0
		for _, d := range client.Records(r, "devices", "dev") {
			if d["observed_state"] == "writeable" {
				w++
			}
		}
		if w >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.TB.Fatalf("fewer than %d devices became writeable", n)
}
