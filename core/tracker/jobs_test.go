package tracker

import (
	"context"
	"strings"
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
	if testing.Short() {
		t.Skip("outlasts a lease of 3 s, twice over")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStarted(t, func(c *Config) { c.QueueLease = 3 * time.Second; c.FsckJobs = 1 })
	st := s.cfg.Store
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
		s.jobs.runQueue(ctx, store.FsckQueue, "fsck", nil, perItem(func(ctx context.Context, it store.QueueItem) {
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
		}))
	}()
	// The other tracker, once the first has claimed the batch.
	<-started
	for deadline := time.Now().Add(15 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
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

// `!want 0 replicate` used to answer "Now desiring 0 children" and change
// nothing. Worker counts are real: 0 stops a job kind, a count restarts it,
// !jobs reports it, and what cannot be changed is refused.
func TestWantSetsWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStarted(t, func(c *Config) { c.QueuePoll = 50 * time.Millisecond; c.FsckJobs = 3 })
	st := s.cfg.Store
	defer s.Close(context.Background())
	if out := s.admin("!jobs", nil, true, nil); !strings.Contains(out, "fsck count 3\r\n") {
		t.Errorf("!jobs with --fsck_jobs=3:\n%s", out)
	}
	if got := s.bangWant([]string{"0", "fsck"}); got != "Now desiring 0 children doing 'fsck'." {
		t.Fatalf("!want 0 fsck = %q", got)
	}
	if err := st.EnqueueChecks(ctx, store.FsckQueue, []int64{1, 2, 3}, 0, ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	worked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.jobs.runQueue(ctx, store.FsckQueue, "fsck", nil, perItem(func(ctx context.Context, it store.QueueItem) {
			mu.Lock()
			worked++
			mu.Unlock()
			st.DoneQueue(ctx, store.FsckQueue, it.FID)
		}))
	}()
	// The runner stops before the tracker and its store close.
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	if worked != 0 {
		t.Errorf("%d items worked with 0 fsck workers wanted", worked)
	}
	mu.Unlock()
	s.bangWant([]string{"2", "fsck"})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := worked
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 items worked after !want 2 fsck", n)
		}
	}
	if out := s.admin("!jobs", nil, true, nil); !strings.Contains(out, "fsck count 2\r\n") {
		t.Errorf("!jobs after !want 2 fsck:\n%s", out)
	}
	for _, job := range []string{"queryworker", "monitor", "job_master", "reaper"} {
		if got := s.bangWant([]string{"3", job}); !strings.HasPrefix(got, "ERROR") {
			t.Errorf("!want 3 %s = %q; want a refusal", job, got)
		}
	}
}

// fakeLeaser hands out one batch of items and records lease renewals.
type fakeLeaser struct {
	mu      sync.Mutex
	batch   []store.QueueItem
	renewed map[int64]int
}

func (f *fakeLeaser) ClaimQueue(ctx context.Context, q store.Queue, limit, lease int) ([]store.QueueItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.batch
	f.batch = nil
	return b, nil
}

func (f *fakeLeaser) RenewLease(ctx context.Context, q store.Queue, fid int64, lease int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewed[fid]++
	return nil
}

// The items of a claimed batch that wait behind a slow one keep their
// leases (the fast, in-memory form of TestLeasesHeldWhileQueued).
func TestQueueRenewsLeasesOfWaitingItems(t *testing.T) {
	s := newStarted(t, func(c *Config) { c.QueueLease = 30 * time.Millisecond; c.FsckJobs = 1 })
	defer s.Close(context.Background())
	fl := &fakeLeaser{batch: []store.QueueItem{{FID: 1}, {FID: 2}, {FID: 3}}, renewed: map[int64]int{}}
	s.jobs.leases = fl
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.jobs.runQueue(ctx, store.FsckQueue, "fsck", nil, perItem(func(ctx context.Context, it store.QueueItem) {
			if it.FID == 1 {
				<-release // one worker: 2 and 3 wait behind it
			}
		}))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fl.mu.Lock()
		waiting := fl.renewed[2] > 1 && fl.renewed[3] > 1
		fl.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases of waiting items not renewed: %v", fl.renewed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	cancel()
	<-done
}

// trickleLeaser has one more item due every few milliseconds, as a
// serial copy of small files makes them, and counts the claims.
type trickleLeaser struct {
	mu      sync.Mutex
	start   time.Time
	every   time.Duration
	claimed int64 // items handed out
	claims  int
}

func (f *trickleLeaser) ClaimQueue(ctx context.Context, q store.Queue, limit, lease int) ([]store.QueueItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	due := int64(time.Since(f.start) / f.every)
	var out []store.QueueItem
	for ; f.claimed < due && len(out) < limit; f.claimed++ {
		out = append(out, store.QueueItem{FID: f.claimed + 1})
	}
	return out, nil
}

func (f *trickleLeaser) RenewLease(ctx context.Context, q store.Queue, fid int64, lease int) error {
	return nil
}

// Work that trickles in is claimed in batches: one claim (a write
// transaction, and its lease rows) for many items, not one per item.
func TestQueueGathersTricklingWork(t *testing.T) {
	s := newStarted(t, nil)
	defer s.Close(context.Background())
	fl := &trickleLeaser{start: time.Now(), every: 2 * time.Millisecond}
	s.jobs.leases = fl
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.jobs.runQueue(ctx, store.FsckQueue, "fsck", wake, perItem(func(ctx context.Context, it store.QueueItem) {}))
	}()
	// Each new item kicks the runner, as create_close does.
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		kick(wake)
	}
	cancel()
	<-done
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.claimed < 100 {
		t.Fatalf("only %d items worked in 500 ms", fl.claimed)
	}
	if perClaim := float64(fl.claimed) / float64(fl.claims); perClaim < 5 {
		t.Errorf("%d claims for %d items (%.1f a claim); want them gathered", fl.claims, fl.claimed, perClaim)
	}
}

// claimClock hands out one item a claim (so that each claim drains the
// queue) and records when each claim came.
type claimClock struct {
	mu    sync.Mutex
	times []time.Time
}

func (f *claimClock) ClaimQueue(ctx context.Context, q store.Queue, limit, lease int) ([]store.QueueItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = append(f.times, time.Now())
	return []store.QueueItem{{FID: int64(len(f.times))}}, nil
}

func (f *claimClock) RenewLease(ctx context.Context, q store.Queue, fid int64, lease int) error {
	return nil
}

// claimsIn counts the claims made in [from, to).
func (f *claimClock) claimsIn(from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.times {
		if !c.Before(from) && c.Before(to) {
			n++
		}
	}
	return n
}

// The deletion job gives way to clients: while requests keep coming it
// waits up to DeleteLag, drains the queue, and waits again; once they
// stop it works at once.
func TestDeletionWaitsForClients(t *testing.T) {
	const lag = 300 * time.Millisecond
	s := newStarted(t, func(c *Config) { c.DeleteLag = lag })
	defer s.Close(context.Background())
	fc := &claimClock{}
	s.jobs.leases = fc
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A client's requests every 5 ms for a second.
	start := time.Now()
	busyEnd := start.Add(time.Second)
	s.jobs.clients.mark(start)
	go func() {
		for time.Now().Before(busyEnd) {
			s.jobs.clients.mark(time.Now())
			time.Sleep(5 * time.Millisecond)
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.jobs.runQueue(ctx, store.DeleteQueue, "delete", nil, perItem(func(ctx context.Context, it store.QueueItem) {}))
	}()
	time.Sleep(time.Until(busyEnd) + 600*time.Millisecond)
	cancel()
	<-done
	if n := fc.claimsIn(start, start.Add(lag-50*time.Millisecond)); n > 0 {
		t.Errorf("%d claims in the first %v of a burst of requests; want none before DeleteLag (%v)", n, lag-50*time.Millisecond, lag)
	}
	if n := fc.claimsIn(start, busyEnd); n < 2 || n > 4 {
		t.Errorf("%d claims during a second of requests; want one per DeleteLag (%v): 2 to 4", n, lag)
	}
	if w := time.Duration(s.stats.DeleteWaitNanos.Load()); w < 2*lag-100*time.Millisecond {
		t.Errorf("waits counted: %v; want about the burst's %v", w, 3*lag)
	}
	// Quiet from busyEnd: claims resume within clientsQuiet and a gather.
	if n := fc.claimsIn(busyEnd, busyEnd.Add(clientsQuiet+s.cfg.QueueGather+150*time.Millisecond)); n == 0 {
		t.Errorf("no claim within %v of the requests' end", clientsQuiet+s.cfg.QueueGather+150*time.Millisecond)
	}
}
