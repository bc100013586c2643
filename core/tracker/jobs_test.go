package tracker

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// TestLeasesHeldWhileQueued: a tracker claims a batch of work items and
// works through them with fewer workers than items; the items still
// waiting keep their leases, so a second tracker polling the same queue
// claims none of them, even though the batch outlasts the lease.
func TestLeasesHeldWhileQueued(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Store: st, NoJobs: true, QueueLease: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	fids := []int64{101, 102, 103}
	if err := st.EnqueueChecks(ctx, store.FsckQueue, fids, 0, ""); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	worked := map[int64]int{}
	started := make(chan struct{}, len(fids))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.runQueue(ctx, store.FsckQueue, 1, nil, func(ctx context.Context, it store.QueueItem) {
			mu.Lock()
			worked[it.FID]++
			n := len(worked)
			mu.Unlock()
			started <- struct{}{}
			time.Sleep(2500 * time.Millisecond) // three items: 7.5 s, more than twice the lease
			if err := st.DoneQueue(ctx, store.FsckQueue, it.FID); err != nil {
				t.Error(err)
			}
			if n == len(fids) {
				cancel()
			}
		})
	}()
	// The other tracker, once the first has claimed the batch.
	<-started
	for deadline := time.Now().Add(15 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		items, err := st.ClaimQueue(context.Background(), store.FsckQueue, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			t.Errorf("fid %d was claimed by a second tracker while the first one held it", it.FID)
		}
	}
	cancel() // a batch that did not finish in time ends here (and fails below)
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, f := range fids {
		if worked[f] != 1 {
			t.Errorf("fid %d worked %d times; want 1", f, worked[f])
		}
	}
}
