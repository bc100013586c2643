package tracker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

func secondsDur(n int64) time.Duration { return time.Duration(n) * time.Second }

// deleteRun is the delete job's work on one claimed batch: the copies of
// its fids, read at once; the outcome of removing them device by device;
// and what was done to each fid, recorded at once when all are worked.
type deleteRun struct {
	j      *jobs
	devids map[int64][]int     // the fids' copies; nil: the look-up failed, each item asks alone
	status map[fidOnDevice]int // copies removed device by device (removeByDevice)
	mu     sync.Mutex
	done   []store.DeleteDone
}

// fidOnDevice names a fid's copy on a device.
type fidOnDevice struct {
	fid   int64
	devid int
}

// deleteBatch is the delete job's batchWork: the batch's copies are read
// in one query and removed with one request per device (removeByDevice),
// each item then settles its fid from those outcomes (item), and what was
// done is recorded in one transaction (record).
func (j *jobs) deleteBatch(ctx context.Context, items []store.QueueItem) (func(context.Context, store.QueueItem), func(context.Context)) {
	r := &deleteRun{j: j}
	fids := make([]int64, len(items))
	for i, it := range items {
		fids[i] = it.FID
	}
	if m, err := j.db.FilesDevids(ctx, fids); err == nil {
		r.devids = m
		r.status = r.removeByDevice(ctx, items)
	}
	return r.item, r.record
}

// copyAction is what the delete job can do now about a copy.
type copyAction int

const (
	copyForget copyAction = iota // its device is gone or dead: nothing to remove
	copyRemove                   // remove it now
	copyLater                    // not now: try again later
)

// copyAction says what can be done now about fid's copy on device id,
// and, when not now, in how many seconds to try again (after failcount
// failures).
func (j *jobs) copyAction(sn *snapshot, id, failcount int) (copyAction, int64) {
	d, ok := sn.devices[id]
	switch {
	case !ok || d.Status == core.DevDead:
		return copyForget, 0
	case !j.canDelete(sn, d):
		return copyLater, 3600 * int64(1+failcount)
	}
	if o, up := j.mon.observed(id, d.HostID); !up || o.state != obsWriteable {
		return copyLater, 60 * int64(10+failcount)
	}
	return copyRemove, 0
}

// item removes the bytes of a deleted fid from every device that may
// hold them (a DELETE each, unless removeByDevice did it); what it did is
// recorded with the rest of its batch: the copies removed, and the queue
// row done, or due again when devices that cannot be reached now are
// left, as the original retries them.
func (r *deleteRun) item(ctx context.Context, it store.QueueItem) {
	j := r.j
	devids, err := r.devids[it.FID], error(nil)
	if r.devids == nil {
		devids, err = j.db.FileDevids(ctx, it.FID)
	}
	if err != nil {
		j.settle(ctx, "delete", it.FID, func(ctx context.Context) error {
			return j.db.RetryQueue(ctx, store.DeleteQueue, it.FID, 60, it.FailCount+1)
		})
		return
	}
	sn := j.mon.snap()
	var retry int64
	var removed []int
	for _, id := range devids {
		action, later := j.copyAction(sn, id, it.FailCount)
		if action == copyRemove {
			if status, ok := r.status[fidOnDevice{it.FID, id}]; ok {
				err = deletedStatus(status)
			} else {
				err = j.deleteURL(ctx, fidURL(sn.hosts[sn.devices[id].HostID], id, it.FID, nil, false, false), true)
			}
			if err != nil {
				j.log.Warn("tracker: delete failed; will retry", "fid", it.FID, "devid", id, "err", err)
				action, later = copyLater, 1800*int64(1+it.FailCount)
			}
		}
		switch {
		case action != copyLater:
			removed = append(removed, id)
		case retry == 0 || later < retry:
			retry = later
		}
	}
	failcount := it.FailCount
	if retry > 0 {
		failcount++
	}
	r.mu.Lock()
	r.done = append(r.done, store.DeleteDone{FID: it.FID, Removed: removed, RetryIn: retry, FailCount: failcount})
	r.mu.Unlock()
}

// deletedStatus is the error of a copy's removal answered status: none
// for a 2xx or a 404 (there was none), as deleteCopy counts them.
func deletedStatus(status int) error {
	if status/100 == 2 || status == http.StatusNotFound {
		return nil
	}
	return fmt.Errorf("node answered %d", status)
}

// singleRetry is how long a node that answered a batch deletion as the
// original's do is sent one DELETE a file before it is asked again.
const singleRetry = 10 * time.Minute

// removeByDevice removes the batch's copies device by device, one
// request each (node.Client.DeleteFids, our nodes only), before the items
// are worked, and returns each copy's status. Copies it does not try
// (devices the job would not remove from now, a device with one copy in
// the batch, nodes that delete one file a request, requests that failed)
// are left to item.
func (r *deleteRun) removeByDevice(ctx context.Context, items []store.QueueItem) map[fidOnDevice]int {
	j := r.j
	sn := j.mon.snap()
	byDev := map[int][]int64{}
	for _, it := range items {
		for _, id := range r.devids[it.FID] {
			if action, _ := j.copyAction(sn, id, it.FailCount); action != copyRemove {
				continue
			}
			if t, ok := j.singleDelete.Load(sn.devices[id].HostID); ok && time.Since(t.(time.Time)) < singleRetry {
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
		host := sn.devices[id].HostID
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, j.cfg.NodeTimeout*5)
			defer cancel()
			got, err := j.nodes.DeleteFids(rctx, hostBase(sn.hosts[host], nil, false, true), id, fids)
			switch {
			case core.Is(core.Unsupported, err):
				j.singleDelete.Store(host, time.Now())
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
	return status
}

// record records the batch's work in one transaction
// (store.FinishDeletes) instead of one each.
func (r *deleteRun) record(ctx context.Context) {
	if len(r.done) == 0 {
		return
	}
	j := r.j
	var err error
	j.settle(ctx, "delete", r.done[0].FID, func(ctx context.Context) error {
		err = j.db.FinishDeletes(ctx, r.done)
		return err
	})
	if err != nil {
		return // left to their leases' end
	}
	for _, d := range r.done {
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
