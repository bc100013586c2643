package tracker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/node"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// fakeNode is a storage node that serves usage files and keeps what is
// PUT; refusePuts makes its disks read-only.
type fakeNode struct {
	mu         sync.Mutex
	files      map[string][]byte
	refusePuts atomic.Bool
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case "MKCOL":
		w.WriteHeader(http.StatusCreated)
	case http.MethodPut:
		if n.refusePuts.Load() {
			http.Error(w, "read-only file system", http.StatusInternalServerError)
			return
		}
		b, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		n.files[r.URL.Path] = b
		n.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		if filepath.Base(r.URL.Path) == "usage" {
			io.WriteString(w, "available: 900\ntime: "+strconv.FormatInt(time.Now().Unix(), 10)+"\ntotal: 1000000\nused: 100000\n")
			return
		}
		n.mu.Lock()
		b, ok := n.files[r.URL.Path]
		n.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// The monitor runs alone, over a real SQLite store and an HTTP storage
// node, with no Server: it publishes the configuration tables, records
// usage, and tells its owner when a read-only device is writeable again.
func TestMonitorAlone(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fn := &fakeNode{files: map[string][]byte{}}
	fn.refusePuts.Store(true)
	srv := httptest.NewServer(fn)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	hostid, err := st.CreateHost(ctx, core.Host{Name: "h1", IP: "127.0.0.1", HTTPPort: p, Status: core.HostAlive})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(ctx, core.Device{ID: 7, HostID: hostid, Status: core.DevAlive}); err != nil {
		t.Fatal(err)
	}

	cfg := Config{Store: st}
	cfg.setDefaults()
	cfg.WriteProbeInterval = 0 // probe every round
	var wg sync.WaitGroup
	m := newMonitor(&cfg, slog.New(slog.DiscardHandler), st, node.New(node.Options{}), &wg)
	var writeable []int
	m.onWriteable = func(_ context.Context, d core.Device) { writeable = append(writeable, d.ID) }
	var snaps atomic.Int32
	m.onSnapshot = func(context.Context, *snapshot) { snaps.Add(1) }

	m.doRound(ctx)
	sn := m.snap()
	d, ok := sn.devices[7]
	if !ok {
		t.Fatalf("the round published no device 7: %+v", sn.devices)
	}
	if got := m.state(7); got != obsReadable {
		t.Errorf("a device refusing writes is %q; want %q", got, obsReadable)
	}
	if !m.canRead(sn, d) || m.canWrite(sn, d) {
		t.Errorf("read-only device: canRead %v canWrite %v; want true, false", m.canRead(sn, d), m.canWrite(sn, d))
	}
	if total, used, _, ok := m.space(7); !ok || total != 976 || used != 97 {
		t.Errorf("space = %d, %d, %v; want 976 MB total, 97 used", total, used, ok)
	}
	devs, _ := st.Devices(ctx)
	if len(devs) != 1 || devs[0].MBTotal != 976 {
		t.Errorf("usage not recorded in the database: %+v", devs)
	}

	fn.refusePuts.Store(false)
	m.doRound(ctx)
	if got := m.state(7); got != obsWriteable {
		t.Errorf("a device accepting writes is %q; want %q", got, obsWriteable)
	}
	if !m.canWrite(m.snap(), d) {
		t.Error("writeable device refused for new files")
	}
	if len(writeable) != 1 || writeable[0] != 7 {
		t.Errorf("onWriteable called for %v; want [7] once", writeable)
	}
	m.doRound(ctx)
	if len(writeable) != 1 {
		t.Errorf("onWriteable called again for a device that stayed writeable: %v", writeable)
	}
	if snaps.Load() != 3 {
		t.Errorf("onSnapshot called %d times in 3 rounds", snaps.Load())
	}

	// The device view is published whole: one taken stays as it was.
	before := m.devices()
	m.setState(7, obsUnreachable)
	if before.obs[7].state != obsWriteable || m.devices().obs[7].state != obsUnreachable {
		t.Errorf("view taken before = %q, after = %q; want writeable, unreachable", before.obs[7].state, m.devices().obs[7].state)
	}
	// Utilization reports, published at most every 500 ms, are all in
	// the view after a round.
	m.noteUtilization(7, "10.00")
	m.noteUtilization(7, "42.00")
	m.doRound(ctx)
	if u, ok := m.utilization(7); !ok || u != 42 {
		t.Errorf("utilization after a round = %v, %v; want 42", u, ok)
	}
}
