package tracker

import (
	"context"
	"sync"
	"time"
)

// A stray is a copy this tracker wrote, or may have written, to a device
// without recording it in file_on: the database went away between the
// copy and its record, the tracker was stopping, or the destination
// failed after it may have stored the bytes. Nothing references it
// and nothing else would ever remove it, so the tracker remembers it and,
// once the database answers, removes the bytes unless the record turns
// out to have been written after all.
type stray struct {
	fid   int64
	devid int
	// absent counts the passes that found no bytes to remove: a write
	// held up by a stalled node can still land after the first look, so a
	// stray is looked at again, strayLooks times, strayPause apart.
	absent int
	next   time.Time
}

const (
	strayLooks = 6
	strayPause = 10 * time.Second
)

// strays is the list of copies waiting to be checked and removed.
type strays struct {
	mu   sync.Mutex
	list []stray
}

// maxStrays bounds the list; past it the oldest are forgotten (and logged).
const maxStrays = 100000

func (j *jobs) noteStray(fid int64, devid int, cause error) {
	j.log.Debug("tracker: a copy may have been written but is not recorded; it will be removed unless it is recorded", "fid", fid, "devid", devid, "err", cause)
	j.strays.mu.Lock()
	defer j.strays.mu.Unlock()
	if len(j.strays.list) >= maxStrays {
		j.log.Error("tracker: too many unrecorded copies waiting; forgetting one (its bytes stay unreferenced)", "fid", j.strays.list[0].fid, "devid", j.strays.list[0].devid)
		j.strays.list = j.strays.list[1:]
	}
	j.strays.list = append(j.strays.list, stray{fid: fid, devid: devid})
}

// runStrayRemover checks and removes the strays every second.
func (j *jobs) runStrayRemover(ctx context.Context) {
	for ctx.Err() == nil {
		j.removeStrays(ctx)
		sleepCtx(ctx, time.Second, nil)
	}
}

// removeStrays handles the strays noted so far; those it cannot settle
// now (database or node unreachable) stay for the next pass.
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
		if now.Before(st.next) {
			keep = append(keep, st)
			continue
		}
		devids, err := j.db.FileDevids(ctx, st.fid)
		if err != nil {
			keep = append(keep, st)
			continue
		}
		if containsInt(devids, st.devid) {
			continue // recorded after all: a copy like any other
		}
		sn := j.mon.snap()
		d, ok := sn.devices[st.devid]
		if !ok {
			continue
		}
		removed, err := j.deleteCopy(ctx, fidURL(sn.hosts[d.HostID], d.ID, st.fid, nil, false, false))
		switch {
		case err != nil:
			keep = append(keep, st)
		case removed:
			j.log.Info("tracker: removed a copy that was written but never recorded", "fid", st.fid, "devid", st.devid)
		case st.absent+1 < strayLooks:
			st.absent++
			st.next = now.Add(strayPause)
			keep = append(keep, st)
		}
	}
	if len(keep) > 0 {
		j.strays.mu.Lock()
		j.strays.list = append(keep, j.strays.list...)
		j.strays.mu.Unlock()
	}
}
