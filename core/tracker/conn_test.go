package tracker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// newStarted returns a started tracker without background jobs on a
// fresh SQLite store (tune adjusts its configuration); the store is
// closed with t, the tracker by the caller.
func newStarted(t *testing.T, tune func(*Config)) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, NoJobs: true}
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// startServing starts a tracker on a fresh SQLite store, serving on a
// loopback port, and returns it with its address.
func startServing(t *testing.T, tune func(*Config)) (*Server, string) {
	t.Helper()
	s := newStarted(t, tune)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
		<-done
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the tracker closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the tracker; a timeout is an error
}

// A connection that sends nothing, or a request line that never ends,
// is closed after its timeout (they were kept forever, each holding up
// to ~1.8 MiB).
func TestIdleAndSlowConnectionsClosed(t *testing.T) {
	_, addr := startServing(t, func(c *Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.RequestReadTimeout = 300 * time.Millisecond
	})
	idle := dial(t, addr)
	slow := dial(t, addr)
	io.WriteString(slow, "get_paths domain=a&key=")
	busy := dial(t, addr)
	r := bufio.NewReader(busy)
	for i := 0; i < 4; i++ { // a client that keeps talking is kept
		io.WriteString(busy, "noop\r\n")
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "OK") {
			t.Fatalf("noop %d: %q, %v", i, l, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle connection was kept past the idle timeout")
	}
	if !closedWithin(slow, 5*time.Second) {
		t.Error("a request line that never ended was kept past the read timeout")
	}
}

// Long request lines are held against one budget for the whole tracker:
// past it, a long line is refused instead of held.
func TestLongLineBudget(t *testing.T) {
	s, addr := startServing(t, func(c *Config) { c.LongLineBudget = 1 << 20 })
	a := dial(t, addr)
	part := "get_paths domain=d&key=" + strings.Repeat("k", 700<<10)
	io.WriteString(a, part)
	deadline := time.Now().Add(5 * time.Second)
	for s.lineBudget.Load() > (1<<20)-(600<<10) {
		if time.Now().After(deadline) {
			t.Fatalf("the tracker holds %d bytes of the long line; want about 700 KiB", (1<<20)-s.lineBudget.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := dial(t, addr)
	io.WriteString(b, part+"\r\n")
	if l, _ := bufio.NewReader(b).ReadString('\n'); !strings.HasPrefix(l, "ERR request_too_long") {
		t.Errorf("a second long line past the budget: %q; want ERR request_too_long", l)
	}
	io.WriteString(a, "\r\n")
	if l, _ := bufio.NewReader(a).ReadString('\n'); !strings.HasPrefix(l, "ERR unreg_domain") {
		t.Errorf("the first long line: %q; want it answered (ERR unreg_domain)", l)
	}
	if got := s.lineBudget.Load(); got != 1<<20 {
		t.Errorf("budget after both lines: %d; want all %d back", got, 1<<20)
	}
}

// A request that arrives as the tracker shuts down is either answered or
// not executed: never committed with its reply lost.
func TestShutdownAnswersOrRefuses(t *testing.T) {
	s, addr := startServing(t, nil)
	const clients = 8
	var mu sync.Mutex
	answered := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("d%d-%d", i, n)
				if _, err := io.WriteString(c, "create_domain domain="+name+"\r\n"); err != nil {
					return
				}
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(l, "OK") {
					mu.Lock()
					answered[name] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	doms, err := s.store().Domains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) == 0 {
		t.Fatal("no domain was created before the shutdown: the test proves nothing")
	}
	for _, d := range doms {
		if !answered[d.Name] {
			t.Errorf("domain %s was created but its client never got the reply", d.Name)
		}
	}
}

// The window the test above can only hit by chance: a request line read
// just before the tracker marks its connection closed is not executed.
func TestShutdownRefusesRequestReadDuringClose(t *testing.T) {
	s, addr := startServing(t, nil)
	read, release := make(chan struct{}), make(chan struct{})
	testHookLineRead = func(line string) {
		if strings.Contains(line, "late") {
			close(read)
			<-release
		}
	}
	defer func() { testHookLineRead = nil }()
	c := dial(t, addr)
	io.WriteString(c, "create_domain domain=late\r\n")
	<-read
	before := s.stats.Queries.Load()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	// Wait until Close has marked the connection.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		marked := false
		for _, st := range s.conns {
			marked = st.state.Load() == connClosed
		}
		s.mu.Unlock()
		if marked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not mark the idle connection")
		}
	}
	close(release)
	reply, _ := bufio.NewReader(c).ReadString('\n')
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	doms, err := s.store().Domains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	created := len(doms) > 0
	if created && !strings.HasPrefix(reply, "OK") {
		t.Fatalf("the domain was created but the client got %q", reply)
	}
	if n := s.stats.Queries.Load() - before; created || n != 0 {
		t.Fatalf("a request read after Close marked its connection was executed (%d queries run, domain created: %v)", n, created)
	}
}

// request sends one line on a new connection and returns the reply.
func request(t *testing.T, addr, line string) string {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, line+"\r\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

// A database error while reading a file's checksum was answered as a
// missing checksum ("MISSING", "NONE"): a wrong answer instead of an error.
func TestDatabaseErrorsAreNotAnswers(t *testing.T) {
	s, addr := startServing(t, nil)
	ctx := context.Background()
	for _, l := range []string{"create_domain domain=d", "create_class domain=d&class=h&mindevcount=1&hashtype=MD5"} {
		if r := request(t, addr, l); !strings.HasPrefix(r, "OK") {
			t.Fatalf("%s: %s", l, r)
		}
	}
	sn := s.mon.snap()
	dom := sn.domains["d"]
	cls, _ := sn.class(dom.ID, "h")
	st := s.cfg.Store
	fid, err := st.RegisterTempfile(ctx, store.Tempfile{DomainID: dom.ID, Key: "k", ClassID: cls.ID, Devids: []int{1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitFile(ctx, store.Commit{FID: fid, DomainID: dom.ID, Key: "k", Length: 3, ClassID: cls.ID, Devid: 1, ClaimTempfile: true}); err != nil {
		t.Fatal(err)
	}
	if r := request(t, addr, "file_info domain=d&key=k"); !strings.Contains(r, "checksum=MISSING") {
		t.Fatalf("file_info before the fault: %s", r)
	}
	if _, err := st.DB().Exec(`DROP TABLE checksum`); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"file_info domain=d&key=k", "file_debug domain=d&key=k"} {
		if r := request(t, addr, l); !strings.HasPrefix(r, "ERR db") {
			t.Errorf("%s with the checksum table gone: %q; want ERR db", l, r)
		}
	}
}

// `!watch` was missing: it makes a connection receive the tracker's log
// lines as ":: <message>", and a second `!watch` ends that.
func TestWatchStreamsLog(t *testing.T) {
	_, addr := startServing(t, nil)
	w := dial(t, addr)
	wr := bufio.NewReader(w)
	io.WriteString(w, "!watch\r\n")
	for _, want := range []string{"Added you to watcher list.\r\n", ".\r\n"} {
		if l, err := wr.ReadString('\n'); err != nil || l != want {
			t.Fatalf("!watch: %q, %v; want %q", l, err, want)
		}
	}
	if r := request(t, addr, "!want 2 fsck"); !strings.HasPrefix(r, "Now desiring 2") {
		t.Fatalf("!want: %q", r)
	}
	w.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := wr.ReadString('\n')
		if err != nil {
			t.Fatalf("no log line for the !want: %v", err)
		}
		if strings.HasPrefix(l, ":: tracker: worker count changed") && strings.Contains(l, "job=fsck") {
			break
		}
	}
	io.WriteString(w, "!watch\r\n")
	for {
		l, err := wr.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "Removed you from watcher list.\r\n" {
			break
		}
	}
}

// get_devices left utilization empty (mogadm's I/O% said N/A): the
// tracker now follows each host's side-channel watch stream.
func TestUtilizationFromWatch(t *testing.T) {
	side, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	go func() {
		for {
			c, err := side.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if l, _ := bufio.NewReader(c).ReadString('\n'); l != "watch\n" {
					return
				}
				for i := 0; i < 50; i++ {
					if _, err := io.WriteString(c, "1\t37.50\n2\t-\n.\n"); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	}()
	port := side.Addr().(*net.TCPAddr).Port
	_, addr := startServing(t, func(c *Config) {
		c.SideChannelPort = port
		c.MonitorInterval = 100 * time.Millisecond
	})
	for _, l := range []string{"create_host host=h1&ip=127.0.0.1&port=1&status=alive", "create_device hostname=h1&devid=1&state=alive", "create_device hostname=h1&devid=2&state=alive"} {
		if r := request(t, addr, l); !strings.HasPrefix(r, "OK") {
			t.Fatalf("%s: %s", l, r)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := request(t, addr, "get_devices")
		if strings.Contains(r, "=37.50") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get_devices never carried the utilization: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A line past MaxLineBytes must give back exactly what it held: it used to
// return bytes it had never taken, so each such line grew the budget.
func TestOverlongLineKeepsBudget(t *testing.T) {
	s, addr := startServing(t, nil)
	before := s.lineBudget.Load()
	for i := 0; i < 3; i++ {
		r := request(t, addr, "noop "+strings.Repeat("x", protocol.MaxLineBytes+(300<<10)))
		if !strings.HasPrefix(r, "ERR request_too_long") {
			t.Fatalf("an over-long line: %q", r)
		}
	}
	if got := s.lineBudget.Load(); got != before {
		t.Errorf("budget after three over-long lines: %d; want %d", got, before)
	}
}
