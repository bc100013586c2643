package tracker

import (
	"context"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

func secondsDur(n int64) time.Duration { return time.Duration(n) * time.Second }

// deleteItem removes the bytes of a deleted fid from every device that
// may hold them, then its queue row; devices that cannot be reached now
// are retried later, as the original does.
func (j *jobs) deleteItem(ctx context.Context, it store.QueueItem) {
	st := j.db
	retryLater := func() {
		j.settle(ctx, "delete", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.DeleteQueue, it.FID, 60, it.FailCount+1)
		})
	}
	if err := st.ForgetFID(ctx, it.FID); err != nil {
		retryLater()
		return
	}
	devids, err := st.FileDevids(ctx, it.FID)
	if err != nil {
		retryLater()
		return
	}
	sn := j.mon.snap()
	var retry int64
	noteRetry := func(d int64) {
		if retry == 0 || d < retry {
			retry = d
		}
	}
	for _, id := range devids {
		d, ok := sn.devices[id]
		if !ok || d.Status == core.DevDead {
			if err := st.RemoveCopy(ctx, it.FID, id); err != nil {
				j.log.Warn("tracker: cannot forget a copy on a dead device; will retry", "fid", it.FID, "devid", id, "err", err)
				noteRetry(60)
			}
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
		if err := j.deleteURL(ctx, fidURL(sn.hosts[d.HostID], id, it.FID, nil, false, false), true); err != nil {
			j.log.Warn("tracker: delete failed; will retry", "fid", it.FID, "devid", id, "err", err)
			noteRetry(1800 * int64(1+it.FailCount))
			continue
		}
		if err := st.RemoveCopy(ctx, it.FID, id); err != nil {
			j.log.Warn("tracker: cannot forget a deleted copy; will retry", "fid", it.FID, "devid", id, "err", err)
			noteRetry(60)
		}
	}
	if retry > 0 {
		j.settle(ctx, "delete", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.DeleteQueue, it.FID, retry, it.FailCount+1)
		})
		return
	}
	j.settle(ctx, "delete", it.FID, func(ctx context.Context) error { return st.DoneQueue(ctx, store.DeleteQueue, it.FID) })
	j.stats.Deleted.Add(1)
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
