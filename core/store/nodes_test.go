package store_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
)

// Both DSN forms may name several servers.
func TestDSNWithSeveralServers(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"DBI:mysql:mogilefs:host=db1,db2, db3;port=3307", "db1:3307,db2:3307,db3:3307"},
		{"mysql:mog@tcp(db1:3306,db2:3306)/mogilefs", "db1:3306,db2:3306"},
		{"DBI:mysql:mogilefs:host=db1", "db1:3306"},
	} {
		kind, dsn, err := store.ParseDSN(tt.dsn, "mog", "")
		if err != nil || kind != store.MySQL {
			t.Fatalf("ParseDSN(%q) = %v, %v", tt.dsn, kind, err)
		}
		if !strings.Contains(dsn, "tcp("+tt.want+")/mogilefs") {
			t.Errorf("ParseDSN(%q) = %q; want the servers %s", tt.dsn, dsn, tt.want)
		}
	}
}

// testMySQLConfig makes a fresh MariaDB test database and returns its
// DSN's configuration; the test is skipped without MOGILEFS_TEST_MYSQL_DSN.
func testMySQLConfig(t *testing.T) *mysql.Config {
	t.Helper()
	if os.Getenv(storetest.MySQLEnv) == "" {
		t.Skip("no " + storetest.MySQLEnv)
	}
	dsn := strings.TrimPrefix(storetest.NewMySQLDatabase(t, os.Getenv(storetest.MySQLEnv)), "mysql:")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A store whose first server is down opens on the next one, and keeps
// going there.
func TestStoreSkipsADeadServer(t *testing.T) {
	cfg := testMySQLConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that refuses: listen, then close
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	two := strings.Replace(cfg.FormatDSN(), "tcp("+cfg.Addr+")", "tcp("+dead+","+cfg.Addr+")", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{DSN: "mysql:" + two})
	if err != nil {
		t.Fatalf("open with %s dead first: %v", dead, err)
	}
	defer st.Close()
	for i := 0; i < 20; i++ {
		if _, err := st.CreateDomain(ctx, "d"+strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	doms, err := st.Domains(ctx)
	if err != nil || len(doms) != 20 {
		t.Errorf("Domains = %d, %v", len(doms), err)
	}
}

// cutProxy forwards TCP connections to a server until it is cut: then it
// forwards nothing more and answers nothing, as a server cut off the
// network does (connections neither fail nor answer; new ones hang).
type cutProxy struct {
	ln       net.Listener
	to       string
	cut      atomic.Bool
	accepted atomic.Int64
	done     chan struct{}
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, to: to, done: make(chan struct{})}
	var (
		mu    sync.Mutex
		open  []net.Conn
		pipes sync.WaitGroup
	)
	keep := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		pipes.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			keep(c)
			if p.cut.Load() {
				continue // held open, never answered
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			keep(s)
			pipes.Add(2)
			go func() { defer pipes.Done(); p.pipe(s, c) }()
			go func() { defer pipes.Done(); p.pipe(c, s) }()
		}
	}()
	return p
}

// pipe copies src to dst until either fails, or holds the bytes once cut.
func (p *cutProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.cut.Load() {
			<-p.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// A server cut off the network (no answer, no error) costs one read
// timeout, not one per pooled connection: once a connection to it is
// lost, the others to it are dropped instead of being handed out to
// wait for their own timeouts, and new connections go to the next
// server. (Two trackers on a Galera cluster stalled for over a minute
// when the node both used was cut off: the pool held dozens of its
// connections.)
func TestStoreLeavesACutOffServer(t *testing.T) {
	cfg := testMySQLConfig(t)
	a, b := newCutProxy(t, cfg.Addr), newCutProxy(t, cfg.Addr)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, time.Second, time.Second
	two := strings.Replace(cfg.FormatDSN(), "tcp("+cfg.Addr+")", "tcp("+a.ln.Addr().String()+","+b.ln.Addr().String()+")", 1)
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: "mysql:" + two})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Fill the pool with connections to the first server: concurrent
	// statements that each hold a connection for a moment.
	for round := 0; a.accepted.Load() < 8 && round < 20; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.CreateDomain(ctx, fmt.Sprintf("d%d-%d", round, i))
			}()
		}
		wg.Wait()
	}
	if a.accepted.Load() < 3 {
		t.Fatalf("only %d connections to the first server after the warm-up", a.accepted.Load())
	}
	a.cut.Store(true)
	failed, slow := 0, 0
	for i := 0; i < 10; i++ {
		start := time.Now()
		if _, err := st.Domains(ctx); err != nil {
			failed++
		}
		if time.Since(start) > 700*time.Millisecond {
			slow++
		}
	}
	if failed > 1 || slow > 1 {
		t.Errorf("after the first server was cut off (%d connections to it), %d of 10 reads failed and %d took a read timeout; want at most one of each",
			a.accepted.Load(), failed, slow)
	}
	if b.accepted.Load() == 0 {
		t.Error("no connection went to the second server")
	}
}
