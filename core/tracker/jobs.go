package tracker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// leaseSeconds is how long a claimed queue row stays with this tracker
// before another may take it (the original's 1000 s).
const leaseSeconds = 1000

// retryDelays are the original's replication back-off steps, in seconds.
var retryDelays = []int64{15, 60, 300, 1800, 3600, 7200, 14400, 28800, 86400}

// backoff returns the delay after the n-th failure, jittered by ±20 %.
func backoff(failcount int) int64 {
	d := retryDelays[min(failcount, len(retryDelays)-1)]
	return int64(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// startJobs starts the background workers: replication, deletion, the
// tempfile reaper and the dead-device reaper.
func (s *Server) startJobs() {
	s.goJob(func(ctx context.Context) {
		s.runQueue(ctx, store.ReplicateQueue, "replicate", s.replKick, s.replicateItem)
	})
	s.goJob(func(ctx context.Context) {
		s.runQueue(ctx, store.DeleteQueue, "delete", s.delKick, s.deleteItem)
	})
	s.goJob(func(ctx context.Context) {
		s.runQueue(ctx, store.FsckQueue, "fsck", s.fsckKick, s.fsckItem)
	})
	s.goJob(s.runFsckInjector)
	s.goJob(func(ctx context.Context) {
		s.runQueue(ctx, store.RebalanceQueue, "replicate", s.rebalKick, s.rebalanceItem)
	})
	s.goJob(s.runRebalanceInjector)
	s.goJob(s.runTempfileReaper)
	s.goJob(s.runDeadDeviceReaper)
	s.goJob(s.runStrayRemover)
}

func (s *Server) goJob(fn func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// kick wakes a queue runner without blocking.
func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// leaser is what the queue runner needs of the store: claiming due work
// items under a lease, and renewing the lease while an item is worked.
type leaser interface {
	ClaimQueue(ctx context.Context, q store.Queue, limit int, lease int) ([]store.QueueItem, error)
	RenewLease(ctx context.Context, q store.Queue, fid int64, lease int) error
}

// runQueue claims due rows of q in batches and works them with at most
// workers goroutines at a time, until ctx ends.
func (s *Server) runQueue(ctx context.Context, q store.Queue, job string, wake chan struct{}, work func(context.Context, store.QueueItem)) {
	if err := s.mon.waitRound(ctx, false); err != nil {
		return
	}
	gather := false
	for ctx.Err() == nil {
		// The worker count may change at any time (!want): read per batch;
		// 0 stops the job kind until it is raised again.
		workers := int(s.jobWorkers[job].Load())
		if workers == 0 {
			sleepCtx(ctx, s.cfg.QueuePoll, wake)
			continue
		}
		batch := max(workers*8, 64)
		if gather {
			// Work trickles in (a kick, or less than a full batch last
			// time): let more come, to claim it in one transaction.
			sleepCtx(ctx, s.cfg.QueueGather, nil)
		}
		items, err := s.leases.ClaimQueue(ctx, q, batch, int(s.cfg.QueueLease.Seconds()))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("tracker: cannot claim work", "queue", q, "err", err)
			}
			sleepCtx(ctx, 2*time.Second, nil)
			continue
		}
		gather = len(items) < batch
		if len(items) == 0 {
			sleepCtx(ctx, s.cfg.QueuePoll, wake)
			continue
		}
		// Every claimed item keeps its lease from now on, not only once a
		// worker takes it: items waiting behind slow ones would otherwise
		// expire and be claimed by another tracker as well.
		stops := make([]func(), len(items))
		for i, it := range items {
			stops[i] = s.keepLease(ctx, q, it.FID)
		}
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		for i, it := range items {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { stops[i](); <-sem; wg.Done() }()
				work(ctx, it)
			}()
		}
		wg.Wait()
	}
}

// sleepCtx waits for d, ctx's end, or a wake-up.
func sleepCtx(ctx context.Context, d time.Duration, wake chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// settle runs a queue-row update (done or retry), retrying for a while if
// the database is away: a row left untouched stays leased and would wait
// the whole lease before another try.
func (s *Server) settle(ctx context.Context, what string, fid int64, update func(context.Context) error) {
	delay := 250 * time.Millisecond
	for deadline := time.Now().Add(2 * time.Minute); ; {
		err := update(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			s.log.Error("tracker: cannot update a work item; it is retried when its lease ends", "queue", what, "fid", fid, "err", err)
			return
		}
		sleepCtx(ctx, delay, nil)
		delay = min(delay*2, 8*time.Second)
	}
}

// keepLease renews an item's lease while it is being worked, so that a
// long copy is never taken over by another tracker; the returned func
// stops the renewals.
func (s *Server) keepLease(ctx context.Context, q store.Queue, fid int64) func() {
	every := s.cfg.QueueLease / 3
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.leases.RenewLease(ctx, q, fid, int(s.cfg.QueueLease.Seconds())); err != nil && ctx.Err() == nil {
					s.log.Warn("tracker: cannot renew a work lease", "queue", q, "fid", fid, "err", err)
				}
			}
		}
	}()
	return cancel
}

// deviceWriteable makes replication that was deferred for want of a
// destination due now, when the monitor sees a device writeable again.
func (s *Server) deviceWriteable(ctx context.Context, d core.Device) {
	if _, err := s.store().ReplicateNow(ctx); err != nil {
		s.log.Warn("tracker: cannot reschedule replication", "devid", d.ID, "err", err)
		return
	}
	kick(s.replKick)
}
