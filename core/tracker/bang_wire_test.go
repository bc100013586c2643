package tracker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

func TestWireBangCommands(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: func(c *tracker.Config) { c.NoJobs = true; c.ReplicateJobs = 2 }})
	if v := w.bang("!version"); len(v) != 1 || v[0] != tracker.Version {
		t.Errorf("!version = %q", v)
	}
	w.expect("noop", "OK ")
	stats := strings.Join(w.bang("!stats"), "\n")
	for _, want := range []string{"uptime ", "queries "} {
		if !strings.Contains(stats, want) {
			t.Errorf("!stats lacks %q:\n%s", want, stats)
		}
	}
	if jobs := strings.Join(w.bang("!jobs"), "\n"); !strings.Contains(jobs, "replicate count 2") {
		t.Errorf("!jobs = %s", jobs)
	}
	if r := w.bang("!want 1 replicate"); len(r) != 1 || !strings.Contains(r[0], "1") {
		t.Errorf("!want = %q", r)
	}
	if jobs := strings.Join(w.bang("!jobs"), "\n"); !strings.Contains(jobs, "replicate count 1") {
		t.Errorf("!jobs after !want = %s", jobs)
	}
	if r := strings.Join(w.bang("!want 3 monitor"), "\n"); !strings.Contains(strings.ToLower(r), "monitor") {
		t.Errorf("!want for a fixed job = %q", r)
	}
	if recent := strings.Join(w.bang("!recent"), "\n"); !strings.Contains(recent, " noop ") {
		t.Errorf("!recent = %s", recent)
	}
	if help := w.bang("!nosuch"); len(help) < 5 || !strings.Contains(help[0], "Admin commands") {
		t.Errorf("help = %q", help)
	}
	if r := w.bang("!to replicate hello"); len(r) != 1 || !strings.HasPrefix(r[0], "ERROR:") {
		t.Errorf("!to = %q; want a refusal (there are no worker processes)", r)
	}
	if q := w.bang("!queue"); len(q) != 0 {
		t.Errorf("!queue = %q", q)
	}

	// !watch streams log lines to the connection until it is sent again.
	watcher := dialWire(t, w.c.RemoteAddr().String())
	if r := watcher.bang("!watch"); len(r) != 1 || !strings.HasPrefix(r[0], "Added") {
		t.Fatalf("!watch = %q", r)
	}
	// !shutdown is logged (OnShutdown is not set: nothing stops).
	if r := w.bang("!shutdown"); len(r) != 1 || r[0] != "Shutting down." {
		t.Errorf("!shutdown = %q", r)
	}
	watcher.c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := watcher.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":: ") || !strings.Contains(line, "!shutdown received") {
		t.Errorf("the watcher got %q, %v; want the log line of !shutdown", line, err)
	}
	if r := watcher.bang("!watch"); len(r) != 1 || !strings.HasPrefix(r[0], "Removed") {
		t.Errorf("second !watch = %q", r)
	}
}

// A database failure is answered `ERR db` with a reference to the log
// line, not with the driver's text.
func TestWireDatabaseErrorNotEchoed(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	upload(t, w, "d", "k", "one", []byte("x"))
	c.Store.Close()
	reply := w.code("get_paths domain=d&key=k", "db")
	if reply != "ERR db Database+error+%28tracker+log+ref%3D1%29" {
		t.Errorf("reply = %q", reply)
	}
	for _, leak := range []string{"sql", "closed", "store"} {
		if strings.Contains(strings.ToLower(reply), leak) {
			t.Errorf("the reply %q tells the client %q", reply, leak)
		}
	}
}
