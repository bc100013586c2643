package tracker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
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

// jobStore is what the background jobs need from the database: the
// work queues and the file, copy, tempfile, setting and device rows they
// change.
type jobStore interface {
	leaser
	settingReader
	DoneQueue(ctx context.Context, q store.Queue, fid int64) error
	RetryQueue(ctx context.Context, q store.Queue, fid int64, delay int64, failcount int) error
	QueueLength(ctx context.Context, q store.Queue) (int64, error)
	EnqueueChecks(ctx context.Context, q store.Queue, fids []int64, devid int, arg string) error
	EnqueueReplication(ctx context.Context, fid int64, fromDevid int, delay int64) error
	ReplicateNow(ctx context.Context) (int64, error)
	MoveToReplication(ctx context.Context, fids []int64, deadDevid int) error
	EnqueueStray(ctx context.Context, fid int64, devid int) error
	Unreferenced(ctx context.Context, devid int, fids []int64) ([]int64, error)

	FileByFID(ctx context.Context, fid int64) (core.File, error)
	FileDevids(ctx context.Context, fid int64) ([]int, error)
	FilesDevids(ctx context.Context, fids []int64) (map[int64][]int, error)
	FIDsAfter(ctx context.Context, after, upTo int64, limit int) ([]int64, error)
	FIDsOnDevice(ctx context.Context, devid int, after int64, limit int) ([]int64, error)
	FIDsOnDeviceDesc(ctx context.Context, devid int, before int64, limit int) ([]int64, error)
	AddCopy(ctx context.Context, fid int64, devid int) error
	AddCopyDone(ctx context.Context, fid int64, devid int, q store.Queue) error
	RemoveCopy(ctx context.Context, fid int64, devid int) error
	FixDevcount(ctx context.Context, fid int64) error
	FinishDeletes(ctx context.Context, done []store.DeleteDone) error
	Checksum(ctx context.Context, fid int64) (hashType int, sum []byte, err error)
	SetChecksum(ctx context.Context, fid int64, hashType int, sum []byte) error
	AddFsckLog(ctx context.Context, fid int64, evcode string, devid int) error

	StaleTempfiles(ctx context.Context, age int64, limit int) ([]store.Tempfile, error)
	ReapTempfile(ctx context.Context, t store.Tempfile) error
	SetDeviceState(ctx context.Context, devid int, state string) error
	SetSetting(ctx context.Context, key, value string) error
	DeleteSetting(ctx context.Context, key string) error
	Now(ctx context.Context) (int64, error)
}

// settingReader reads one server setting.
type settingReader interface {
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
}

// jobs is the tracker's background work: the queue runners (replicate,
// delete, fsck, rebalance), their injectors, and the reapers of stale
// tempfiles, dead devices and stray copies. It reads the cluster through
// the monitor and the database through jobStore; the query handlers
// wake it and set its worker counts.
type jobs struct {
	cfg *Config
	log *slog.Logger
	db  jobStore
	// leases is the queue runner's part of db, apart so that a test can
	// put a fake there.
	leases leaser
	nodes  nodeCalls
	mon    *monitor
	stats  *Stats
	ctx    context.Context // canceled when the tracker closes
	wg     *sync.WaitGroup // the tracker's background goroutines

	replKick, delKick, fsckKick, rebalKick chan struct{} // wake the runners
	orphanKick                             chan struct{} // wakes the orphan sweep (a device's setting changed)

	// workers are the worker counts of the queue jobs (replicate, also
	// used by rebalance; delete; fsck): from the configuration, changed by
	// !want.
	workers map[string]*atomic.Int32
	strays  strays // copies written but not recorded, to remove
	// copying holds the fids whose copies are being written and recorded,
	// or checked and removed as strays.
	copying fidLocks
	// clients is when the tracker last served a client (see
	// Config.DeleteLag).
	clients *activity
	// singleDelete holds the hosts whose nodes delete one file a request
	// (the original's): host id -> when one said so.
	singleDelete sync.Map
}

// activity is when a tracker last began a client's request.
type activity struct{ last atomic.Int64 } // Unix nanoseconds

// mark records a request begun at now.
func (a *activity) mark(now time.Time) { a.last.Store(now.UnixNano()) }

// idle returns how long no request has begun, at now.
func (a *activity) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, a.last.Load()))
}

// clientsQuiet is how long without a client request ends a burst.
const clientsQuiet = 250 * time.Millisecond

// waitForClients waits while clients are being served (a request began
// in the last clientsQuiet), for at most lag. It returns false when ctx
// ends.
func waitForClients(ctx context.Context, a *activity, lag time.Duration) bool {
	deadline := time.Now().Add(lag)
	for {
		now := time.Now()
		idle := a.idle(now)
		if idle >= clientsQuiet || !now.Before(deadline) {
			return ctx.Err() == nil
		}
		t := time.NewTimer(min(clientsQuiet-idle, deadline.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func newJobs(cfg *Config, log *slog.Logger, db jobStore, nodes nodeCalls, mon *monitor, stats *Stats, ctx context.Context, wg *sync.WaitGroup) *jobs {
	j := &jobs{
		cfg: cfg, log: log, db: db, leases: db, nodes: nodes, mon: mon, stats: stats, ctx: ctx, wg: wg,
		replKick:   make(chan struct{}, 1),
		delKick:    make(chan struct{}, 1),
		fsckKick:   make(chan struct{}, 1),
		rebalKick:  make(chan struct{}, 1),
		orphanKick: make(chan struct{}, 1),
		workers:    map[string]*atomic.Int32{},
		clients:    new(activity),
	}
	for job, n := range map[string]int{"replicate": cfg.ReplicateJobs, "delete": cfg.DeleteJobs, "fsck": cfg.FsckJobs} {
		j.workers[job] = new(atomic.Int32)
		j.workers[job].Store(int32(n))
	}
	return j
}

// start starts the background workers: replication, deletion, the
// tempfile reaper and the dead-device reaper.
func (j *jobs) start() {
	j.goJob(func(ctx context.Context) {
		j.runQueue(ctx, store.ReplicateQueue, "replicate", j.replKick, perItem(j.replicateItem))
	})
	j.goJob(func(ctx context.Context) {
		j.runQueue(ctx, store.DeleteQueue, "delete", j.delKick, j.deleteBatch)
	})
	j.goJob(func(ctx context.Context) {
		j.runQueue(ctx, store.FsckQueue, "fsck", j.fsckKick, perItem(j.fsckItem))
	})
	j.goJob(j.runFsckInjector)
	j.goJob(func(ctx context.Context) {
		j.runQueue(ctx, store.RebalanceQueue, "replicate", j.rebalKick, perItem(j.rebalanceItem))
	})
	j.goJob(j.runRebalanceInjector)
	j.goJob(j.runTempfileReaper)
	j.goJob(j.runDeadDeviceReaper)
	j.goJob(j.runStrayRemover)
	j.goJob(j.runOrphanSweep)
}

func (j *jobs) goJob(fn func(context.Context)) {
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		fn(j.ctx)
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

// batchWork is a queue job's work on a claimed batch: it runs before the
// batch's items are worked and returns the work of each item and what to
// do once all are worked (nil: nothing).
type batchWork func(ctx context.Context, items []store.QueueItem) (item func(context.Context, store.QueueItem), done func(context.Context))

// perItem is the batchWork of a job whose items are worked alone.
func perItem(item func(context.Context, store.QueueItem)) batchWork {
	return func(context.Context, []store.QueueItem) (func(context.Context, store.QueueItem), func(context.Context)) {
		return item, nil
	}
}

// runQueue claims due rows of q in batches and works them with at most
// workers goroutines at a time, until ctx ends.
func (j *jobs) runQueue(ctx context.Context, q store.Queue, job string, wake chan struct{}, work batchWork) {
	if err := j.mon.waitRound(ctx, false); err != nil {
		return
	}
	gather := false
	// Deletion gives way to clients (Config.DeleteLag): it waits out a
	// burst of their requests, then works until the queue is drained.
	yield := q == store.DeleteQueue && j.cfg.DeleteLag > 0
	draining := false
	for ctx.Err() == nil {
		// The worker count may change at any time (!want): read per batch;
		// 0 stops the job kind until it is raised again.
		workers := int(j.workers[job].Load())
		if workers == 0 {
			sleepCtx(ctx, j.cfg.QueuePoll, wake)
			continue
		}
		batch := max(workers*8, 64)
		if yield && !draining {
			t0 := time.Now()
			if !waitForClients(ctx, j.clients, j.cfg.DeleteLag) {
				return
			}
			j.stats.DeleteWaitNanos.Add(int64(time.Since(t0)))
			draining = true
		}
		if gather {
			// Work trickles in (a kick, or less than a full batch last
			// time): let more come, to claim it in one transaction.
			sleepCtx(ctx, j.cfg.QueueGather, nil)
		}
		items, err := j.leases.ClaimQueue(ctx, q, batch, int(j.cfg.QueueLease.Seconds()))
		if err != nil {
			if ctx.Err() == nil {
				j.log.Warn("tracker: cannot claim work", "queue", q, "err", err)
			}
			sleepCtx(ctx, 2*time.Second, nil)
			continue
		}
		gather = len(items) < batch
		draining = draining && !gather
		if len(items) == 0 {
			sleepCtx(ctx, j.cfg.QueuePoll, wake)
			continue
		}
		// Every claimed item keeps its lease from now on, not only once a
		// worker takes it: items waiting behind slow ones would otherwise
		// expire and be claimed by another tracker as well.
		stops := make([]func(), len(items))
		for i, it := range items {
			stops[i] = j.keepLease(ctx, q, it.FID)
		}
		item, done := work(ctx, items)
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		for i, it := range items {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { stops[i](); <-sem; wg.Done() }()
				item(ctx, it)
			}()
		}
		wg.Wait()
		if done != nil {
			done(ctx)
		}
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
func (j *jobs) settle(ctx context.Context, what string, fid int64, update func(context.Context) error) {
	delay := 250 * time.Millisecond
	for deadline := time.Now().Add(2 * time.Minute); ; {
		err := update(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			j.log.Error("tracker: cannot update a work item; it is retried when its lease ends", "queue", what, "fid", fid, "err", err)
			return
		}
		sleepCtx(ctx, delay, nil)
		delay = min(delay*2, 8*time.Second)
	}
}

// keepLease renews an item's lease while it is being worked, so that a
// long copy is never taken over by another tracker; the returned func
// stops the renewals.
func (j *jobs) keepLease(ctx context.Context, q store.Queue, fid int64) func() {
	every := j.cfg.QueueLease / 3
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
				if err := j.leases.RenewLease(ctx, q, fid, int(j.cfg.QueueLease.Seconds())); err != nil && ctx.Err() == nil {
					j.log.Warn("tracker: cannot renew a work lease", "queue", q, "fid", fid, "err", err)
				}
			}
		}
	}()
	return cancel
}

// deviceWriteable makes replication that was deferred for want of a
// destination due now, when the monitor sees a device writeable again.
func (j *jobs) deviceWriteable(ctx context.Context, d core.Device) {
	if _, err := j.db.ReplicateNow(ctx); err != nil {
		j.log.Warn("tracker: cannot reschedule replication", "devid", d.ID, "err", err)
		return
	}
	kick(j.replKick)
}
