package tracker

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// orphanPage is how many fid files one listing of a device returns.
const orphanPage = 1000

// orphanProgressEvery is how many listed files a sweep logs progress at.
const orphanProgressEvery = 100 * orphanPage

// orphanSweepPrefix starts the names of the server settings that hold
// when each device was last swept (orphan_sweep_devN, Unix seconds),
// shared by the trackers so that one sweeps each device per interval.
const orphanSweepPrefix = "orphan_sweep_dev"

// runOrphanSweep looks at each readable device once per
// OrphanSweepInterval for fid files nothing in the database refers to:
// copies written but never recorded, and files whose removal was lost
// (a stray noted only in memory by a tracker that then stopped, a node's
// refusal of late writes forgotten in its restart). Files younger than
// OrphanMinAge are left, being possibly on their way to being recorded.
// Each is settled like a stray: removed unless recorded after all. An
// operator's set_server_setting of orphan_sweep_devN (0: sweep it now)
// wakes it.
func (j *jobs) runOrphanSweep(ctx context.Context) {
	if j.cfg.OrphanSweepInterval <= 0 {
		return
	}
	check := min(j.cfg.OrphanSweepInterval/4, time.Hour)
	for {
		sleepCtx(ctx, check/2+time.Duration(rand.Int64N(int64(check))), j.orphanKick)
		if ctx.Err() != nil {
			return
		}
		j.sweepDueDevices(ctx)
	}
}

// sweepDueDevices sweeps each readable device not swept within the
// interval, one after another.
func (j *jobs) sweepDueDevices(ctx context.Context) {
	sn := j.mon.snap()
	for _, d := range sn.devices {
		if ctx.Err() != nil || !j.mon.canRead(sn, d) {
			continue
		}
		now, err := j.db.Now(ctx)
		if err != nil {
			return
		}
		key := orphanSweepPrefix + strconv.Itoa(d.ID)
		last, ok, err := j.db.Setting(ctx, key)
		if err != nil {
			return
		}
		if t, perr := strconv.ParseInt(last, 10, 64); ok && perr == nil && now-t < int64(j.cfg.OrphanSweepInterval.Seconds()) {
			continue
		}
		// Noted before the sweep: another tracker looking now leaves the
		// device to this one.
		if err := j.db.SetSetting(ctx, key, strconv.FormatInt(now, 10)); err != nil {
			return
		}
		if err := j.sweepDevice(ctx, sn.hosts[d.HostID], d.ID, time.Unix(now, 0)); err != nil && ctx.Err() == nil {
			// Swept again at the next look.
			if ok {
				j.db.SetSetting(ctx, key, last)
			} else {
				j.db.DeleteSetting(ctx, key)
			}
		}
	}
}

// sweepCounts counts one device's sweep, for its log line.
type sweepCounts struct {
	listed       int // fid files on the device
	old          int // of them, older than OrphanMinAge
	unreferenced int // of them, tied to the device by no row
	settled      int // of them, removed (or found recorded after all)
}

// sweepDevice lists the fid files of device devid on host h and settles
// as a stray each one older than OrphanMinAge at now that the database
// does not tie to the device.
func (j *jobs) sweepDevice(ctx context.Context, h core.Host, devid int, now time.Time) error {
	var r sweepCounts
	base := hostBase(h, nil, false, true)
	started := time.Now()
	after := ""
	for {
		lctx, cancel := context.WithTimeout(ctx, j.cfg.NodeTimeout+30*time.Second)
		page, err := j.nodes.ListFids(lctx, base, devid, after, orphanPage)
		cancel()
		if core.Is(core.Unsupported, err) {
			j.log.Debug("tracker: no orphan sweep of a device whose node does not list its files", "devid", devid, "host", h.Name)
			return nil
		}
		if err != nil {
			j.log.Warn("tracker: orphan sweep stopped: cannot list the device's files", "devid", devid, "after", after, "err", err)
			return err
		}
		r.listed += len(page)
		var old []int64
		for _, f := range page {
			if now.Sub(f.MTime) >= j.cfg.OrphanMinAge {
				old = append(old, f.FID)
			}
		}
		r.old += len(old)
		un, err := j.db.Unreferenced(ctx, devid, old)
		if err != nil {
			j.log.Warn("tracker: orphan sweep stopped: cannot read the database", "devid", devid, "err", err)
			return err
		}
		r.unreferenced += len(un)
		j.stats.Orphans.Add(int64(len(un)))
		for _, fid := range un {
			if j.settleStray(ctx, fid, devid) == strayDone {
				r.settled++
			}
		}
		if len(page) < orphanPage {
			break
		}
		after = page[len(page)-1].Path
		if r.listed%orphanProgressEvery == 0 {
			j.log.Info("tracker: orphan sweep in progress", "devid", devid, "listed", r.listed, "unreferenced", r.unreferenced)
		}
		sleepCtx(ctx, 10*time.Millisecond, nil) // leave the node and the database room
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	j.log.Info("tracker: orphan sweep done", "devid", devid, "files", r.listed, "older_than_min_age", r.old,
		"unreferenced", r.unreferenced, "settled", r.settled, "took", time.Since(started).Round(time.Millisecond))
	return nil
}
