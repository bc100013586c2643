package tests

import (
	"context"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// TestRollingRestart restarts every daemon one by one (graceful stop,
// then start again) under a steady load of uploads and reads from
// clients that know both trackers, and counts failed operations: there
// must be none. A client operation is an upload or a verified read; the
// client library fails over between trackers and copies, and an upload
// whose commit was refused is sent again (a re-upload of a key is safe).
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 3})
	trackerB, addrB := c.StartTracker(nil)
	addrA := c.TrackerAddr
	cl, err := client.New([]string{addrA, addrB}, client.Options{DeadRetry: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	l := startLoad(t, cl, loadOptions{Workers: 3, Prefix: "roll", Size: func(i int) int { return 1000 + i*13 },
		UploadTries: 3, ReadBack: true, ReadTries: 6, Log: true})
	pause := func() { time.Sleep(700 * time.Millisecond) }
	pause()
	// Trackers, one by one: a graceful stop, then a start on the same address.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	c.Tracker.Close(ctx)
	cancel()
	pause()
	c.Tracker, _ = c.StartTrackerAt(addrA, nil)
	pause()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	trackerB.Close(ctx)
	cancel()
	pause()
	c.StartTrackerAt(addrB, nil)
	pause()
	// Storage nodes, one by one.
	for _, n := range c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("graceful stop of %s: %v", n.Name, err)
		}
		cancel()
		pause()
		c.Restart(n)
		c.WaitWritable(3)
	}
	pause()
	stored := l.Stop()
	ops, failed := l.ops.Load(), l.failed.Load()
	t.Logf("%d client operations during the rolling restart, %d failed", ops, failed)
	if failed != 0 {
		t.Errorf("%d of %d client operations failed", failed, ops)
	}
	if ops < 50 {
		t.Errorf("only %d operations ran: the load was not steady", ops)
	}
	verifyAll(t, c, "test", stored)
}
