package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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

	var ops, failed atomic.Int64
	var mu sync.Mutex
	stored := map[string][]byte{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("roll/%d/%d", w, i)
				data := randomBytes(t, 1000+i*13)
				var err error
				for attempt := 0; attempt < 3; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					_, err = cl.Upload(ctx, "test", k, "two", bytes.NewReader(data), int64(len(data)), client.UploadOptions{})
					cancel()
					if err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				ops.Add(1)
				if err != nil {
					failed.Add(1)
					t.Logf("upload %s failed: %v", k, err)
					continue
				}
				mu.Lock()
				stored[k] = data
				mu.Unlock()
				// Read back something stored earlier.
				rk := fmt.Sprintf("roll/%d/%d", w, i/2)
				mu.Lock()
				want := stored[rk]
				mu.Unlock()
				var got []byte
				for attempt := 0; attempt < 6; attempt++ {
					// A file still on one copy is unreadable while its
					// node restarts: reads are retried, as clients do.
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					var r *client.Reader
					r, err = cl.Open(ctx, "test", rk)
					if err == nil {
						got, err = io.ReadAll(r)
						r.Close()
					}
					cancel()
					if err == nil {
						break
					}
					time.Sleep(300 * time.Millisecond)
				}
				ops.Add(1)
				if err != nil || !bytes.Equal(got, want) {
					failed.Add(1)
					t.Logf("read %s failed: %v (%d of %d bytes)", rk, err, len(got), len(want))
				}
			}
		}()
	}
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
	close(stop)
	wg.Wait()
	t.Logf("%d client operations during the rolling restart, %d failed", ops.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d client operations failed", failed.Load(), ops.Load())
	}
	if ops.Load() < 50 {
		t.Errorf("only %d operations ran: the load was not steady", ops.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	verifyAll(t, c, "test", stored)
}
