package tracker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// gone reports whether url answers 404.
func gone(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNotFound
}

// A file of a two-copy class gets its second copy from the replicator;
// a deleted file's copies are removed from the nodes by the delete job.
func TestWireReplicateAndDelete(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d"})
	upload(t, w, "d", "k", "two", []byte("replicate me"))
	var paths []string
	waitFor(t, "a second copy", func() bool {
		a := w.ok("get_paths domain=d&key=k")
		paths = []string{a["path1"], a["path2"]}
		return a["paths"] == "2"
	})
	if fi := w.ok("file_info domain=d&key=k"); fi["devcount"] != "2" {
		t.Errorf("file_info after replication = %v", fi)
	}
	for _, p := range paths {
		resp, err := http.Get(p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	w.expect("delete domain=d&key=k", "OK ")
	waitFor(t, "the copies removed", func() bool { return gone(paths[0]) && gone(paths[1]) })
	// The delete job told the nodes the fid is deleted: a late write of
	// it, even from a client that does not say when it sent it (the
	// original's), is refused rather than put back with nothing to
	// remove it.
	for _, p := range paths {
		if code := putStatus(t, p, []byte("late"), nil); code != http.StatusConflict || !gone(p) {
			t.Errorf("PUT %s after its file was deleted: %d; want 409 and nothing stored", p, code)
		}
	}
}

// A file deleted while the replicator copies it: the copy that lands
// afterwards is not recorded for the deleted fid (the delete job has
// already removed the others and would never see it) but removed from its
// node.
func TestWireCopyOfFileDeletedDuringReplicationRemoved(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	o := w.ok("create_open domain=d&key=k&class=two")
	dest := c.Nodes[0]
	if o["devid"] == strconv.Itoa(c.Nodes[0].Devids[0]) {
		dest = c.Nodes[1]
	}
	destDev := dest.Devids[0]
	body := []byte("deleted while copied")
	put(t, o["path"], body)
	dest.Stall()
	w.expect(fmt.Sprintf("create_close domain=d&key=k&fid=%s&devid=%s&path=%s&size=%d", o["fid"], o["devid"], o["path"], len(body)), "OK ")
	waitFor(t, "the replicator's PUT to the stalled node", func() bool { return dest.Uploads() > 0 })
	w.expect("delete domain=d&key=k", "OK ")
	waitFor(t, "the first copy removed", func() bool { return gone(o["path"]) })
	dest.Resume()
	fid, _ := strconv.ParseInt(o["fid"], 10, 64)
	copyURL := nodeURL(dest) + core.FIDPath(destDev, fid)
	waitFor(t, "the late copy removed", func() bool { return dest.Uploads() == 0 && gone(copyURL) })
	// Stays removed: nothing records it and puts it back.
	time.Sleep(300 * time.Millisecond)
	if !gone(copyURL) {
		t.Errorf("%s exists: the deleted file's late copy stayed", copyURL)
	}
}

// A copy the replicator may have written but could not record outlives
// the tracker: the stray is on the stray queue, and the next tracker
// removes the bytes that land late. Kept in the stopped tracker's memory,
// they stayed (the netns chaos test's orphans after a tracker restart).
func TestWireStrayOutlivesTracker(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	o := w.ok("create_open domain=d&key=k&class=two")
	dest := c.Nodes[0]
	if o["devid"] == strconv.Itoa(c.Nodes[0].Devids[0]) {
		dest = c.Nodes[1]
	}
	body := []byte("written late")
	put(t, o["path"], body)
	dest.Stall()
	w.expect(fmt.Sprintf("create_close domain=d&key=k&fid=%s&devid=%s&path=%s&size=%d", o["fid"], o["devid"], o["path"], len(body)), "OK ")
	waitFor(t, "the replicator's PUT to the stalled node", func() bool { return dest.Uploads() > 0 })
	w.expect("delete domain=d&key=k", "OK ")
	waitFor(t, "the first copy removed", func() bool { return gone(o["path"]) })
	// The node goes down with the PUT unanswered (cut off, as far as the
	// tracker knows): nothing can be removed there now.
	dest.Stop()
	waitFor(t, "the stray recorded", func() bool {
		n, err := c.Store.QueueLength(context.Background(), store.StrayQueue)
		return err == nil && n > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Tracker.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c.Restart(dest)
	// The PUT's bytes land late (as a delivery held up by the network
	// would: here they are put again).
	fid, _ := strconv.ParseInt(o["fid"], 10, 64)
	late := nodeURL(dest) + core.FIDPath(dest.Devids[0], fid)
	put(t, late, body)
	c.StartTracker(nil)
	waitFor(t, "the next tracker to remove the late copy", func() bool { return gone(late) })
}

// A stray copy of a file that still exists is removed; a delivery of it
// sent before the removal and arriving after it is refused, and the
// tracker's next copy to that device is taken. Refused after any DELETE,
// the copy could never be made again on a device a stray had been
// removed from (CI: a tracker killed mid-replication left strays; the
// next tracker's copies to the same devices got 409 until the test gave
// up). Taken, the late delivery stayed unrecorded, and stayed for good
// once its file was deleted (the netns chaos test's orphans).
func TestWireCopyAfterStrayOfLiveFileRemoved(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	fid, dest := oneCopy(t, c, w, []byte("one copy, then two"))
	stray := nodeURL(dest) + core.FIDPath(dest.Devids[0], fid)
	sentEarly := time.Now()
	put(t, stray, []byte("a copy never recorded"))
	if err := c.Store.EnqueueStray(context.Background(), fid, dest.Devids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stray removed", func() bool { return gone(stray) })
	// The same copy delivered late: sent before the removal.
	sent := http.Header{core.SentHeader: {strconv.FormatInt(sentEarly.UnixNano(), 10)}}
	if code := putStatus(t, stray, []byte("a copy never recorded"), sent); code != http.StatusConflict || !gone(stray) {
		t.Errorf("a delivery sent before the stray's removal: %d; want 409 and nothing stored", code)
	}
	w.expect("updateclass domain=d&key=k&class=two", "OK ")
	waitFor(t, "the second copy, on the stray's device", func() bool {
		return w.ok("get_paths domain=d&key=k")["paths"] == "2"
	})
}

// A stray of a file on a device is settled while the replicator's copy
// of the same file to that device has landed but is not yet recorded: the
// stray remover must not take the new copy for the stray. It did (CI: a
// replication that failed while a host was down left strays; once the
// host was back, its new copies were removed as those strays and then
// recorded, and the file was unreadable when the other host died).
func TestWireStrayNotTakenForCopyInFlight(t *testing.T) {
	// The held answer must not time out.
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: func(cfg *tracker.Config) { cfg.NodeTimeout = 20 * time.Second }})
	fid, dest := oneCopy(t, c, w, []byte("copied while a stray waits"))
	copyURL := nodeURL(dest) + core.FIDPath(dest.Devids[0], fid)
	dest.HoldReplies()
	w.expect("updateclass domain=d&key=k&class=two", "OK ")
	waitFor(t, "the replicator's copy stored, its answer held", func() bool {
		return dest.HeldReplies() > 0 && !gone(copyURL)
	})
	// An earlier failed copy of the fid to that device left a stray.
	if err := c.Store.EnqueueStray(context.Background(), fid, dest.Devids[0]); err != nil {
		t.Fatal(err)
	}
	// The stray remover passes once a second.
	time.Sleep(2500 * time.Millisecond)
	dest.ReleaseReplies()
	waitFor(t, "the second copy recorded", func() bool {
		return w.ok("get_paths domain=d&key=k")["paths"] == "2"
	})
	waitFor(t, "the stray settled", func() bool {
		n, err := c.Store.QueueLength(context.Background(), store.StrayQueue)
		return err == nil && n == 0
	})
	if gone(copyURL) {
		t.Fatalf("%s recorded as a copy but removed as a stray", copyURL)
	}
}

// A copy recorded by another tracker between the stray remover's check
// and its removal of the bytes: the removed copy is not left recorded
// (readers would be sent to a missing copy, and the file would count a
// copy it does not have).
func TestWireStrayRecordedDuringRemoval(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	fid, dest := oneCopy(t, c, w, []byte("recorded while removed"))
	path := core.FIDPath(dest.Devids[0], fid)
	put(t, nodeURL(dest)+path, []byte("recorded while removed"))
	var recorded atomic.Bool
	dest.BeforeEach(func(r *http.Request) {
		if r.Method == http.MethodDelete && r.URL.Path == path && !recorded.Swap(true) {
			// Another tracker records its copy there.
			if err := c.Store.AddCopy(context.Background(), fid, dest.Devids[0]); err != nil {
				t.Error(err)
			}
		}
	})
	if err := c.Store.EnqueueStray(context.Background(), fid, dest.Devids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stray removed", func() bool { return recorded.Load() && gone(nodeURL(dest)+path) })
	waitFor(t, "only copies that exist recorded", func() bool {
		a := w.ok("get_paths domain=d&key=k")
		n, _ := strconv.Atoi(a["paths"])
		for i := 1; i <= n; i++ {
			if gone(a[fmt.Sprintf("path%d", i)]) {
				return false
			}
		}
		fi := w.ok("file_info domain=d&key=k")
		return n == 1 && fi["devcount"] == "1"
	})
}

// oneCopy uploads body as key k of domain d in class one and returns its
// fid and the node that holds no copy of it.
func oneCopy(t *testing.T, c *clustertest.Cluster, w *wire, body []byte) (int64, *clustertest.Node) {
	t.Helper()
	fidS, devid, _ := upload(t, w, "d", "k", "one", body)
	dest := c.Nodes[0]
	if devid == strconv.Itoa(c.Nodes[0].Devids[0]) {
		dest = c.Nodes[1]
	}
	fid, _ := strconv.ParseInt(fidS, 10, 64)
	return fid, dest
}

// fsck finds a copy removed behind the tracker's back, logs it, and
// replication restores it.
func TestWireFsck(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	for _, k := range []string{"a", "b", "c"} {
		upload(t, w, "d", k, "two", []byte("file "+k))
	}
	waitFor(t, "every file at two copies", func() bool {
		for _, k := range []string{"a", "b", "c"} {
			if w.ok("get_paths domain=d&key=" + k)["paths"] != "2" {
				return false
			}
		}
		return true
	})
	fi := w.ok("file_info domain=d&key=b&devices=1")
	fid := fi["fid"]
	// Remove b's copy on the first node.
	n := c.Nodes[0]
	fidN, err := strconv.ParseInt(fid, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(n.DocRoot, core.FIDPath(n.Devids[0], fidN))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}

	st := w.ok("fsck_status")
	if st["running"] != "0" {
		t.Fatalf("fsck_status before start = %v", st)
	}
	w.expect("fsck_start", "OK ")
	w.code("fsck_start", "fsck_running")
	w.code("rebalance_start", "fsck_running")
	waitFor(t, "fsck to check every fid", func() bool {
		st = w.ok("fsck_status")
		return st["max_fid_checked"] == st["end_fid"] && st["end_fid"] != "0"
	})
	waitFor(t, "fsck to log the missing copy", func() bool {
		log := w.ok("fsck_getlog")
		return strings.Contains(protocolLine(log), "evcode=MISS") && strings.Contains(protocolLine(log), "_fid="+fid)
	})
	waitFor(t, "the copy restored", func() bool {
		_, err := os.Stat(p)
		return err == nil
	})
	if st := w.ok("fsck_status"); st["num_MISS"] != "1" {
		t.Errorf("fsck_status counts = %v; want num_MISS=1", st)
	}
	w.expect("fsck_stop", "OK ")
	w.expect("fsck_clearlog", "OK ")
	if log := w.ok("fsck_getlog"); log["row_count"] != "0" {
		t.Errorf("fsck_getlog after clearlog = %v", log)
	}
	w.expect("fsck_reset", "OK ")
	if st := w.ok("fsck_status"); st["max_fid_checked"] != "0" || st["running"] != "0" {
		t.Errorf("fsck_status after reset = %v", st)
	}
}

// rebalance moves copies off the source device to the others.
func TestWireRebalance(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Layout: [][]int{{1, 2}, {3}}})
	for _, k := range []string{"a", "b", "c", "d"} {
		upload(t, w, "d", k, "one", []byte("file "+k))
	}
	w.code("rebalance_status", "no_rebal_state")
	w.code("rebalance_start", "no_rebal_policy")
	w.code("rebalance_set_policy", "bad_rebal_pol")
	w.code("rebalance_set_policy policy=nope%3D1", "bad_rebal_pol")
	w.code("rebalance_stop", "rebal_not_started")
	w.expect("rebalance_set_policy policy=from_devices%3D1+to_devices%3D2%2C3", "OK ")
	w.expect("rebalance_test", "OK ddevs=2,3&sdevs=1")
	if a := w.ok("rebalance_start"); a["state"] == "" {
		t.Errorf("rebalance_start = %v", a)
	}
	w.code("rebalance_start", "rebal_running")
	w.code("fsck_start", "rebal_running")
	w.code("rebalance_set_policy policy=from_devices%3D2", "no_set_rebal")
	w.code("rebalance_reset", "rebal_running")
	waitFor(t, "device 1 emptied", func() bool {
		for _, k := range []string{"a", "b", "c", "d"} {
			if strings.Contains(w.ok("file_info domain=d&key=" + k + "&devices=1")["devids"], "1") {
				return false
			}
		}
		return true
	})
	if a := w.ok("rebalance_status"); a["state"] == "" {
		t.Errorf("rebalance_status = %v", a)
	}
	w.do("rebalance_stop")
	waitFor(t, "rebalance to stop", func() bool { return !strings.HasPrefix(w.do("rebalance_reset"), "ERR") })
	w.code("rebalance_status", "no_rebal_state")
}

// BenchmarkDelete deletes b.N files of two copies each and waits until
// the delete job has removed their bytes: the tracker's delete command
// and its background work, with the nodes' DELETEs, in one process.
// cpu-µs/op is that process's CPU per file (go test -bench=Delete
// -benchtime=2000x ./core/tracker).
func BenchmarkDelete(b *testing.B) {
	c := clustertest.Start(b, clustertest.Options{Domain: "d"})
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := c.Client.Upload(ctx, "d", fmt.Sprint("k", i), "two", strings.NewReader("small"), 5, client.UploadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for {
		n, err := c.Store.QueueLength(ctx, store.ReplicateQueue)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := c.Tracker.Stats().Deleted.Load()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Client.Tracker.Delete(ctx, "d", fmt.Sprint("k", i)); err != nil {
			b.Fatal(err)
		}
	}
	for c.Tracker.Stats().Deleted.Load()-before < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The orphan sweep removes a device's fid files that no row ties to the
// device once they are older than its minimum age, and leaves recorded
// copies, uploads under way and young files alone.
func TestWireOrphanSweep(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: func(cfg *tracker.Config) {
		cfg.OrphanSweepInterval = time.Second
		cfg.OrphanMinAge = time.Hour
	}})
	old := time.Now().Add(-2 * time.Hour)
	age := func(url string) {
		t.Helper()
		for _, n := range c.Nodes {
			if rest, ok := strings.CutPrefix(url, nodeURL(n)); ok {
				if err := os.Chtimes(filepath.Join(n.DocRoot, rest), old, old); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("%s is on no node", url)
	}
	_, _, recorded := upload(t, w, "d", "kept", "one", []byte("recorded"))
	age(recorded)
	o := w.ok("create_open domain=d&key=open&class=one")
	put(t, o["path"], []byte("an upload not closed yet"))
	age(o["path"])
	n := c.Nodes[0]
	orphan := nodeURL(n) + core.FIDPath(n.Devids[0], 900000)
	put(t, orphan, []byte("no row refers to it"))
	age(orphan)
	young := nodeURL(n) + core.FIDPath(n.Devids[0], 900001)
	put(t, young, []byte("perhaps on its way to a row"))
	waitFor(t, "the sweep to remove the old orphan", func() bool { return gone(orphan) })
	time.Sleep(2500 * time.Millisecond) // more sweeps
	for what, url := range map[string]string{"a recorded copy": recorded, "an upload under way": o["path"], "a young file": young} {
		if gone(url) {
			t.Errorf("the sweep removed %s (%s)", what, url)
		}
	}
}

// create_close checks each copy's size on its node's side channel, over
// a kept connection, instead of by an HTTP HEAD; by HEAD where the side
// channel does not answer.
func TestWireCreateCloseSizesOnSideChannel(t *testing.T) {
	for _, side := range []bool{true, false} {
		opts := clustertest.Options{Domain: "d", Tune: noJobs}
		if !side {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close() // nothing listens there now
			opts.Tune = func(cfg *tracker.Config) { noJobs(cfg); cfg.SideChannelPort = port }
		}
		c, w := startWire(t, opts)
		heads := func() (n int64) {
			for _, nd := range c.Nodes {
				n += nd.Server.Stats().Heads.Load()
			}
			return n
		}
		before := heads()
		for i := range 3 {
			upload(t, w, "d", fmt.Sprint("k", i), "one", []byte("sized"))
		}
		switch got := heads() - before; {
		case side && got != 0:
			t.Errorf("%d HEADs for 3 create_close with the side channel up; want none", got)
		case !side && got != 3:
			t.Errorf("%d HEADs for 3 create_close without a side channel; want 3", got)
		}
	}
}

// An operator has a device swept now by setting its orphan_sweep_devN
// to 0 (the sweep otherwise looks every quarter interval, here 15 min).
func TestWireOrphanSweepOnDemand(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: func(cfg *tracker.Config) {
		cfg.OrphanSweepInterval = time.Hour
		cfg.OrphanMinAge = time.Hour
	}})
	n := c.Nodes[0]
	orphan := nodeURL(n) + core.FIDPath(n.Devids[0], 900000)
	put(t, orphan, []byte("no row refers to it"))
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(n.DocRoot, core.FIDPath(n.Devids[0], 900000)), old, old); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprint("orphan_sweep_dev", n.Devids[0])
	w.code("set_server_setting key="+key+"&value=soon", "invalid_format")
	w.code("set_server_setting key=orphan_sweep_devX&value=0", "not_writable")
	w.expect("set_server_setting key="+key+"&value=0", "OK ")
	waitFor(t, "the sweep asked for to remove the orphan", func() bool { return gone(orphan) })
}

// The delete job removes a batch's copies with one request per device on
// our nodes, each as a DELETE with the fid-deleted header would: gone,
// and a late write of one refused. Nodes that refuse batches (the
// original's) get a DELETE a copy.
func TestWireDeletesInBatches(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprint("plain=", plain), func(t *testing.T) { testDeletesInBatches(t, plain) })
	}
}

func testDeletesInBatches(t *testing.T, plain bool) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	if plain {
		for _, nd := range c.Nodes {
			nd.PlainDeletes()
		}
	}
	const n = 10
	var paths []string
	for i := range n {
		upload(t, w, "d", fmt.Sprint("k", i), "two", []byte("delete me"))
	}
	for i := range n {
		waitFor(t, "a second copy", func() bool { return w.ok(fmt.Sprintf("get_paths domain=d&key=k%d", i))["paths"] == "2" })
		a := w.ok(fmt.Sprintf("get_paths domain=d&key=k%d", i))
		paths = append(paths, a["path1"], a["path2"])
	}
	// Deleted within one poll of the job, so that they are claimed together.
	for i := range n {
		w.expect(fmt.Sprintf("delete domain=d&key=k%d", i), "OK ")
	}
	waitFor(t, "the copies removed", func() bool {
		for _, p := range paths {
			if !gone(p) {
				return false
			}
		}
		return true
	})
	var batches, deletes int64
	for _, nd := range c.Nodes {
		batches += nd.Server.Stats().DeleteBatches.Load()
		deletes += nd.Server.Stats().Deletes.Load()
	}
	switch {
	case deletes != 2*n:
		t.Errorf("%d files deleted; want %d", deletes, 2*n)
	case plain && batches != 0:
		t.Errorf("%d batches on nodes that refuse them", batches)
	case !plain && (batches == 0 || batches > 4):
		t.Errorf("%d files deleted in %d batches; want a few", deletes, batches)
	}
	if code := putStatus(t, paths[0], []byte("late"), nil); code != http.StatusConflict || !gone(paths[0]) {
		t.Errorf("PUT %s after its file was deleted in a batch: %d; want 409 and nothing stored", paths[0], code)
	}
}
