package tracker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// A stray is a copy this tracker wrote, or may have written, to a device
// without recording it in file_on: the database went away between the
// copy and its record, the tracker was stopping, the file was deleted
// meanwhile, or the destination failed after it may have stored the
// bytes. Nothing references it and nothing else would ever remove it.
// It is recorded on the stray queue (file_to_queue type 3), where the
// stray remover of any tracker, this one restarted included, finds it;
// while the database cannot take it, this tracker keeps it in memory.
// Once looked at, its bytes are removed unless the record turns out to
// have been written after all.
type stray struct {
	fid   int64
	devid int
	// absent counts the passes that found no bytes to remove: a write
	// held up by a stalled node can still land after the first look, so a
	// stray is looked at again, strayLooks times, strayPause apart.
	absent int
	next   time.Time
	// inMemory: the queue holds a stray of the fid already (on another
	// device): this one is settled from memory.
	inMemory bool
}

const (
	strayLooks = 6
	strayPause = 10 * time.Second
	// strayRetryPause: after a look the database or the node did not
	// answer.
	strayRetryPause = 5 * time.Second
	// strayLease is how long a claimed stray row is this tracker's (a look
	// takes one FileDevids and one DELETE).
	strayLease = 30
)

// strays is the list of copies waiting to be recorded on the queue (or,
// inMemory, checked and removed from here).
type strays struct {
	mu   sync.Mutex
	list []stray
}

// maxStrays bounds the list; past it the oldest are forgotten (and logged).
const maxStrays = 100000

func (j *jobs) noteStray(fid int64, devid int, cause error) {
	j.log.Debug("tracker: a copy may have been written but is not recorded; it will be removed unless it is recorded", "fid", fid, "devid", devid, "err", cause)
	st := stray{fid: fid, devid: devid}
	// Recorded at once where it can be: a tracker stopped or restarted
	// before its next pass would forget it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch err := j.db.EnqueueStray(ctx, fid, devid); {
	case err == nil:
		return
	case errors.Is(err, store.ErrExists):
		st.inMemory = true
	}
	j.keepStrays([]stray{st})
}

// keepStrays puts strays at the front of the in-memory list.
func (j *jobs) keepStrays(l []stray) {
	j.strays.mu.Lock()
	defer j.strays.mu.Unlock()
	j.strays.list = append(l, j.strays.list...)
	if n := len(j.strays.list) - maxStrays; n > 0 {
		for _, st := range j.strays.list[maxStrays:] {
			j.log.Error("tracker: too many unrecorded copies waiting; forgetting one (its bytes stay unreferenced)", "fid", st.fid, "devid", st.devid)
		}
		j.strays.list = j.strays.list[:maxStrays]
	}
}

// runStrayRemover checks and removes the strays every second.
func (j *jobs) runStrayRemover(ctx context.Context) {
	for ctx.Err() == nil {
		j.removeStrays(ctx)
		sleepCtx(ctx, time.Second, nil)
	}
}

// removeStrays records the strays held in memory on the queue, then
// handles the due ones of the queue and of memory; those it cannot settle
// now (database or node unreachable) stay for a later pass.
func (j *jobs) removeStrays(ctx context.Context) {
	j.strays.mu.Lock()
	todo := j.strays.list
	j.strays.list = nil
	j.strays.mu.Unlock()
	var keep []stray
	now := time.Now()
	for i, st := range todo {
		if ctx.Err() != nil {
			keep = append(keep, todo[i:]...)
			break
		}
		if !st.inMemory {
			switch err := j.db.EnqueueStray(ctx, st.fid, st.devid); {
			case err == nil:
				continue
			case errors.Is(err, store.ErrExists):
				st.inMemory = true
			default:
				keep = append(keep, st)
				continue
			}
		}
		if now.Before(st.next) {
			keep = append(keep, st)
			continue
		}
		switch j.settleStray(ctx, st.fid, st.devid) {
		case strayRetry:
			keep = append(keep, st)
		case strayAbsent:
			if st.absent++; st.absent < strayLooks {
				st.next = now.Add(strayPause)
				keep = append(keep, st)
			}
		}
	}
	if len(keep) > 0 {
		j.keepStrays(keep)
	}
	if ctx.Err() != nil {
		return
	}
	items, err := j.db.ClaimQueue(ctx, store.StrayQueue, 100, strayLease)
	if err != nil {
		return
	}
	for _, it := range items {
		var err error
		switch j.settleStray(ctx, it.FID, it.FromDevid) {
		case strayDone:
			err = j.db.DoneQueue(ctx, store.StrayQueue, it.FID)
		case strayRetry:
			err = j.db.RetryQueue(ctx, store.StrayQueue, it.FID, int64(strayRetryPause/time.Second), it.FailCount)
		case strayAbsent:
			if it.FailCount+1 >= strayLooks {
				err = j.db.DoneQueue(ctx, store.StrayQueue, it.FID)
			} else {
				err = j.db.RetryQueue(ctx, store.StrayQueue, it.FID, int64(strayPause/time.Second), it.FailCount+1)
			}
		}
		if err != nil {
			// The lease runs out and the row comes back.
			j.log.Warn("tracker: cannot update the stray queue", "fid", it.FID, "err", err)
		}
	}
}

// strayOutcome is what a look at a stray found.
type strayOutcome int

const (
	strayDone   strayOutcome = iota // removed, or recorded after all: nothing left to do
	strayAbsent                     // no bytes there (yet): look again later
	strayRetry                      // the database or the node did not answer
)

// settleStray looks at the copy of fid on devid: recorded after all, it
// is a copy like any other; else its bytes are removed, and if its file
// is deleted, the node is told so (it refuses the writes of the fid that
// come later).
func (j *jobs) settleStray(ctx context.Context, fid int64, devid int) strayOutcome {
	if !j.copying.tryLock(fid) {
		return strayRetry // a copy of the fid is being written: look after it is recorded
	}
	defer j.copying.unlock(fid)
	_, err := j.db.FileByFID(ctx, fid)
	fileDeleted := errors.Is(err, store.ErrNotFound)
	if err != nil && !fileDeleted {
		return strayRetry
	}
	devids, err := j.db.FileDevids(ctx, fid)
	if err != nil {
		return strayRetry
	}
	if containsInt(devids, devid) {
		return strayDone
	}
	sn := j.mon.snap()
	d, ok := sn.devices[devid]
	if !ok {
		return strayDone // the device is gone from the cluster
	}
	removed, err := j.deleteCopy(ctx, fidURL(sn.hosts[d.HostID], d.ID, fid, nil, false, false), fileDeleted)
	switch {
	case err != nil:
		return strayRetry
	case removed:
		j.log.Info("tracker: removed a copy that was written but never recorded", "fid", fid, "devid", devid)
		j.recheckRemoved(ctx, fid, devid)
		return strayDone
	}
	return strayAbsent
}

// recheckRemoved looks again at the record of a stray just removed.
// Another tracker's copy of the fid to the same device may have landed
// before the removal and been recorded after the check (copying is
// kept apart from stray removal only within a tracker): then the
// recorded copy is gone, and its record is dropped and the file
// queued for replication to make it again.
func (j *jobs) recheckRemoved(ctx context.Context, fid int64, devid int) {
	devids, err := j.db.FileDevids(ctx, fid)
	if err != nil {
		j.log.Warn("tracker: cannot check that a removed stray was not recorded meanwhile (fsck finds it if it was)", "fid", fid, "devid", devid, "err", err)
		return
	}
	if !containsInt(devids, devid) {
		return
	}
	j.log.Error("tracker: a copy recorded while it was being removed as a stray is gone; copying the file again", "fid", fid, "devid", devid)
	err = j.db.RemoveCopy(ctx, fid, devid)
	if err == nil {
		err = j.db.EnqueueReplication(ctx, fid, 0, 0)
	}
	if err != nil {
		j.log.Warn("tracker: cannot drop the record of a removed copy (fsck finds it)", "fid", fid, "devid", devid, "err", err)
	}
}
