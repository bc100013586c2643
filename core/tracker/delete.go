package tracker

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

func secondsDur(n int64) time.Duration { return time.Duration(n) * time.Second }

// deleteItem removes the bytes of a deleted fid from every device that
// may hold them; what it did is recorded with the rest of its batch
// (recordDeletes): the copies removed, and the queue row done, or due
// again when devices that cannot be reached now are left, as the original
// retries them.
func (j *jobs) deleteItem(ctx context.Context, it store.QueueItem) {
	st := j.db
	devids, err := j.deletes.devidsOf(ctx, st, it.FID)
	if err != nil {
		j.settle(ctx, "delete", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.DeleteQueue, it.FID, 60, it.FailCount+1)
		})
		return
	}
	sn := j.mon.snap()
	var retry int64
	noteRetry := func(d int64) {
		if retry == 0 || d < retry {
			retry = d
		}
	}
	var removed []int
	for _, id := range devids {
		d, ok := sn.devices[id]
		if !ok || d.Status == core.DevDead {
			removed = append(removed, id) // nothing to remove there: forgotten
			continue
		}
		if !j.canDelete(sn, d) {
			noteRetry(3600 * int64(1+it.FailCount))
			continue
		}
		if o, up := j.mon.observed(id, d.HostID); !up || o.state != obsWriteable {
			noteRetry(60 * int64(10+it.FailCount))
			continue
		}
		if status, ok := j.deletes.removedOn(it.FID, id); ok {
			if status == http.StatusNoContent || status == http.StatusNotFound || status/100 == 2 {
				removed = append(removed, id)
				continue
			}
			j.log.Warn("tracker: delete failed; will retry", "fid", it.FID, "devid", id, "status", status)
			noteRetry(1800 * int64(1+it.FailCount))
			continue
		}
		if err := j.deleteURL(ctx, fidURL(sn.hosts[d.HostID], id, it.FID, nil, false, false), true); err != nil {
			j.log.Warn("tracker: delete failed; will retry", "fid", it.FID, "devid", id, "err", err)
			noteRetry(1800 * int64(1+it.FailCount))
			continue
		}
		removed = append(removed, id)
	}
	failcount := it.FailCount
	if retry > 0 {
		failcount++
	}
	j.deletes.add(store.DeleteDone{FID: it.FID, Removed: removed, RetryIn: retry, FailCount: failcount})
}

// deletesDone gathers the delete job's work on the items of a batch, to
// be recorded at once (recordDeletes) when the batch is worked, and holds
// the batch's copies, looked up at once (lookUp).
type deletesDone struct {
	mu     sync.Mutex
	done   []store.DeleteDone
	devids map[int64][]int     // of the batch's fids; nil: not looked up
	status map[fidOnDevice]int // the batch's files removed by device (removeByDevice)
	single sync.Map            // host id -> time.Time: its node deletes one file a request
}

// fidOnDevice names a fid's copy on a device.
type fidOnDevice struct {
	fid   int64
	devid int
}

// singleRetry is how long a node that answered a batch deletion as the
// original's do is sent one DELETE a file before it is asked again.
const singleRetry = 10 * time.Minute

// removeByDevice removes the batch's copies device by device, one
// request each (node.Client.DeleteFids, our nodes only), before the items
// are worked: an item then finds its copy's outcome (removedOn) instead of
// sending a DELETE. Copies it does not try (devices deleteItem would not
// delete on now, nodes that delete one file a request, requests that
// failed) are left to deleteItem.
func (j *jobs) removeByDevice(ctx context.Context, items []store.QueueItem) {
	d := &j.deletes
	d.mu.Lock()
	devids := d.devids
	d.mu.Unlock()
	if devids == nil {
		return
	}
	sn := j.mon.snap()
	byDev := map[int][]int64{}
	for _, it := range items {
		for _, id := range devids[it.FID] {
			dev, ok := sn.devices[id]
			if !ok || dev.Status == core.DevDead || !j.canDelete(sn, dev) {
				continue
			}
			if o, up := j.mon.observed(id, dev.HostID); !up || o.state != obsWriteable {
				continue
			}
			if t, ok := d.single.Load(dev.HostID); ok && time.Since(t.(time.Time)) < singleRetry {
				continue
			}
			byDev[id] = append(byDev[id], it.FID)
		}
	}
	status := map[fidOnDevice]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, fids := range byDev {
		if len(fids) < 2 {
			continue // as cheap one at a time
		}
		dev := sn.devices[id]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, j.cfg.NodeTimeout*5)
			defer cancel()
			got, err := j.nodes.DeleteFids(rctx, hostBase(sn.hosts[dev.HostID], nil, false, true), id, fids)
			switch {
			case core.Is(core.Unsupported, err):
				d.single.Store(dev.HostID, time.Now())
				return
			case err != nil:
				j.log.Warn("tracker: batch delete failed; deleting one file at a time", "devid", id, "files", len(fids), "err", err)
				return
			}
			mu.Lock()
			for fid, st := range got {
				status[fidOnDevice{fid, id}] = st
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	d.mu.Lock()
	d.status = status
	d.mu.Unlock()
}

// removedOn returns the status the batch's removal of fid's copy on devid
// had, if it was removed that way.
func (d *deletesDone) removedOn(fid int64, devid int) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.status[fidOnDevice{fid, devid}]
	return st, ok
}

// lookUp reads the devices of the copies of every item of a batch in one
// query; when it fails, each item asks on its own.
func (d *deletesDone) lookUp(ctx context.Context, db jobStore, items []store.QueueItem) {
	fids := make([]int64, len(items))
	for i, it := range items {
		fids[i] = it.FID
	}
	m, err := db.FilesDevids(ctx, fids)
	d.mu.Lock()
	d.devids = m
	if err != nil {
		d.devids = nil
	}
	d.mu.Unlock()
}

// devidsOf returns the devices of fid's copies: from the batch's look-up
// when there was one, else from the database.
func (d *deletesDone) devidsOf(ctx context.Context, db jobStore, fid int64) ([]int, error) {
	d.mu.Lock()
	m := d.devids
	d.mu.Unlock()
	if m != nil {
		return m[fid], nil
	}
	return db.FileDevids(ctx, fid)
}

func (d *deletesDone) add(x store.DeleteDone) {
	d.mu.Lock()
	d.done = append(d.done, x)
	d.mu.Unlock()
}

// take returns what was gathered and forgets it, and the batch's look-up.
func (d *deletesDone) take() []store.DeleteDone {
	d.mu.Lock()
	defer d.mu.Unlock()
	done := d.done
	d.done, d.devids, d.status = nil, nil, nil
	return done
}

// recordDeletes records the work of the batch just worked in one
// transaction (store.FinishDeletes) instead of one each.
func (j *jobs) recordDeletes(ctx context.Context) {
	done := j.deletes.take()
	if len(done) == 0 {
		return
	}
	var err error
	j.settle(ctx, "delete", done[0].FID, func(ctx context.Context) error {
		err = j.db.FinishDeletes(ctx, done)
		return err
	})
	if err != nil {
		return // left to their leases' end
	}
	for _, d := range done {
		if d.RetryIn <= 0 {
			j.stats.Deleted.Add(1)
		}
	}
}

// runTempfileReaper turns uploads never closed into deletions.
func (j *jobs) runTempfileReaper(ctx context.Context) {
	for ctx.Err() == nil {
		list, err := j.db.StaleTempfiles(ctx, int64(j.cfg.TempfileMaxAge.Seconds()), 100)
		if err == nil {
			for _, t := range list {
				if err := j.db.ReapTempfile(ctx, t); err != nil {
					j.log.Warn("tracker: cannot reap abandoned upload", "fid", t.FID, "err", err)
				}
			}
			if len(list) > 0 {
				kick(j.delKick)
				continue
			}
		}
		sleepCtx(ctx, min(j.cfg.TempfileMaxAge/4, time.Minute), nil)
	}
}

// runDeadDeviceReaper queues every file on a dead device for replication
// and forgets the dead copy.
func (j *jobs) runDeadDeviceReaper(ctx context.Context) {
	for ctx.Err() == nil {
		found := false
		sn := j.mon.snap()
		for _, id := range sn.sortedDeviceIDs() {
			if sn.devices[id].Status != core.DevDead {
				continue
			}
			fids, err := j.db.FIDsOnDevice(ctx, id, 0, 1000)
			if err != nil {
				j.log.Warn("tracker: reaper cannot list a dead device", "devid", id, "err", err)
				continue
			}
			if len(fids) == 0 {
				continue
			}
			if err := j.db.MoveToReplication(ctx, fids, id); err != nil {
				j.log.Warn("tracker: reaper cannot requeue a dead device's files", "devid", id, "files", len(fids), "err", err)
				continue
			}
			found = true
			j.log.Debug("tracker: re-replicating files of a dead device", "devid", id, "files", len(fids))
		}
		if found {
			kick(j.replKick)
			continue
		}
		sleepCtx(ctx, j.cfg.ReaperInterval, nil)
	}
}
