package tracker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// rebalanceState is the parsed rebal_state setting.
type rebalanceState map[string]string

func parseRebalanceState(s string) rebalanceState {
	st := rebalanceState{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		st[k] = v
	}
	return st
}

func (st rebalanceState) String() string {
	var parts []string
	for _, k := range rebalanceStateKeys {
		parts = append(parts, k+"="+st[k])
	}
	return strings.Join(parts, " ")
}

func (st rebalanceState) int(k string) int64 { n, _ := strconv.ParseInt(st[k], 10, 64); return n }

func (st rebalanceState) list(k string) []string {
	if st[k] == "" {
		return nil
	}
	return strings.Split(st[k], ",")
}

// runRebalanceInjector queues the files of the source devices while this
// tracker runs a rebalance.
func (j *jobs) runRebalanceInjector(ctx context.Context) {
	for ctx.Err() == nil {
		busy, err := j.rebalanceCycle(ctx)
		if err != nil && ctx.Err() == nil {
			j.log.Warn("tracker: rebalance cycle failed", "err", err)
		}
		if busy {
			kick(j.rebalKick)
			continue
		}
		sleepCtx(ctx, j.cfg.QueuePoll, nil)
	}
}

// rebalanceCycle does one step of the rebalance this tracker runs; busy
// means more work was queued.
func (j *jobs) rebalanceCycle(ctx context.Context) (busy bool, err error) {
	st := j.db
	host, _, err := st.Setting(ctx, "rebal_host")
	if err != nil || host != j.cfg.Hostname {
		return false, err
	}
	pol, err := loadRebalancePolicy(ctx, j.db)
	if err != nil {
		return false, err
	}
	raw, _, err := st.Setting(ctx, "rebal_state")
	if err != nil {
		return false, err
	}
	state := parseRebalanceState(raw)
	now, err := st.Now(ctx)
	if err != nil {
		return false, err
	}
	save := func() error { return st.SetSetting(ctx, "rebal_state", state.String()) }
	state["time_latest_run"] = i64toa(now)
	if sig, _, _ := st.Setting(ctx, "rebal_signal"); sig == "stop" {
		if cur := int(state.int("sdev_current")); cur > 0 && pol["leave_in_drain_mode"] != "1" {
			j.setDeviceState(ctx, cur, core.DevAlive)
		}
		state["time_stopped"] = i64toa(now)
		st.DeleteSetting(ctx, "rebal_signal")
		st.DeleteSetting(ctx, "rebal_host")
		j.log.Info("tracker: rebalance stopped")
		return false, save()
	}
	if n, err := st.QueueLength(ctx, store.RebalanceQueue); err != nil || n >= j.mon.snap().settingDefault("queue_size_for_rebal", 10000) {
		return false, err
	}
	cur := int(state.int("sdev_current"))
	if cur == 0 {
		srcs := state.list("source_devs")
		if len(srcs) == 0 {
			state["time_finished"] = i64toa(now)
			st.DeleteSetting(ctx, "rebal_host")
			j.log.Info("tracker: rebalance finished", "fids_queued", state["fids_queued"])
			return false, save()
		}
		cur, _ = strconv.Atoi(srcs[0])
		state["source_devs"] = strings.Join(srcs[1:], ",")
		state["sdev_current"], state["sdev_lastfid"] = strconv.Itoa(cur), "0"
		switch pol["limit_by"] {
		case "count":
			state["sdev_limit"] = pol["limit"]
		case "size":
			state["sdev_limit"] = strconv.FormatInt(humanBytes(pol["limit"]), 10)
		default:
			state["sdev_limit"] = "none"
		}
		// The device takes no new files while it is being emptied.
		j.setDeviceState(ctx, cur, core.DevDrain)
	}
	rate := int(j.mon.snap().settingDefault("queue_rate_for_rebal", 500))
	var fids []int64
	if pol["fid_age"] == "new" {
		fids, err = st.FIDsOnDeviceDesc(ctx, cur, state.int("sdev_lastfid"), rate)
	} else {
		fids, err = st.FIDsOnDevice(ctx, cur, state.int("sdev_lastfid"), rate)
	}
	if err != nil {
		return false, err
	}
	sn := j.mon.snap()
	exclude := []int{cur}
	for _, d := range state.list("completed_devs") {
		n, _ := strconv.Atoi(d)
		exclude = append(exclude, n)
	}
	dests := rebalanceDests(sn, pol, exclude, j.mon.canWrite)
	limitLeft := state["sdev_limit"]
	var batch []int64
	var batchBytes int64
	for _, fid := range fids {
		state["sdev_lastfid"] = i64toa(fid)
		f, err := st.FileByFID(ctx, fid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if limitLeft != "none" {
			left, _ := strconv.ParseInt(limitLeft, 10, 64)
			cost := int64(1)
			if pol["limit_by"] == "size" {
				cost = f.Length
			}
			if left < cost {
				fids = nil // limit reached: this device is done
				break
			}
			limitLeft = i64toa(left - cost)
		}
		batch = append(batch, fid)
		batchBytes += f.Length
	}
	state["sdev_limit"] = limitLeft
	if len(batch) > 0 {
		rand.Shuffle(len(dests), func(i, j int) { dests[i], dests[j] = dests[j], dests[i] })
		if n, err := strconv.Atoi(pol["use_dest_devs"]); err == nil && n < len(dests) {
			dests = dests[:n]
		}
		if err := st.EnqueueChecks(ctx, store.RebalanceQueue, batch, cur, joinInts(dests)); err != nil {
			return false, err
		}
		state["fids_queued"] = i64toa(state.int("fids_queued") + int64(len(batch)))
		state["bytes_queued"] = i64toa(state.int("bytes_queued") + batchBytes)
	}
	if len(fids) == 0 || len(batch) == 0 && limitLeft != "none" {
		// This source device is done.
		if pol["leave_in_drain_mode"] != "1" {
			j.setDeviceState(ctx, cur, core.DevAlive)
		}
		comp := state.list("completed_devs")
		state["completed_devs"] = strings.Join(append(comp, strconv.Itoa(cur)), ",")
		state["sdev_current"], state["sdev_lastfid"], state["sdev_limit"] = "0", "0", "0"
		state["time_latest_empty_run"] = i64toa(now)
		state["empty_runs"] = i64toa(state.int("empty_runs") + 1)
	}
	return true, save()
}

// humanBytes parses 100g-style sizes.
func humanBytes(s string) int64 {
	m := humanSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch strings.ToLower(m[2]) {
	case "k":
		n <<= 10
	case "m":
		n <<= 20
	case "g":
		n <<= 30
	case "t":
		n <<= 40
	case "p":
		n <<= 50
	}
	return n
}

// setDeviceState changes a device's state from a background job.
func (j *jobs) setDeviceState(ctx context.Context, devid int, state string) {
	if err := j.db.SetDeviceState(ctx, devid, state); err != nil {
		j.log.Warn("tracker: cannot change device state", "devid", devid, "state", state, "err", err)
		return
	}
	j.mon.refresh(ctx)
}

// rebalanceItem moves one copy off its source device: a new copy on one
// of the listed destinations first, then the source copy is deleted.
// The row is removed whatever happens (a rebalance is re-run to retry).
func (j *jobs) rebalanceItem(ctx context.Context, it store.QueueItem) {
	defer j.db.DoneQueue(ctx, store.RebalanceQueue, it.FID)
	if err := j.moveCopy(ctx, it.FID, it.FromDevid, parseIDs(it.Arg)); err != nil && ctx.Err() == nil {
		j.log.Warn("tracker: rebalance left a copy in place", "fid", it.FID, "devid", it.FromDevid, "err", err)
	}
}

func parseIDs(s string) []int { return store.ParseDevids(s) }

// moveCopy moves fid's copy on src to one of dests.
func (j *jobs) moveCopy(ctx context.Context, fid int64, src int, dests []int) error {
	st := j.db
	if err := j.copying.lock(ctx, fid); err != nil {
		return err
	}
	defer j.copying.unlock(fid)
	f, err := st.FileByFID(ctx, fid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	holders, err := st.FileDevids(ctx, fid)
	if err != nil {
		return err
	}
	if !containsInt(holders, src) {
		return nil // already gone from the source
	}
	sn := j.mon.snap()
	hostsOn := map[int]bool{}
	for _, id := range holders {
		if id != src {
			if d, ok := sn.devices[id]; ok {
				hostsOn[d.HostID] = true
			}
		}
	}
	// Prefer a destination on a host without a copy; never worsen spreading.
	var dest core.Device
	found := false
	for pass := 0; pass < 2 && !found; pass++ {
		for _, id := range dests {
			d, ok := sn.devices[id]
			if !ok || containsInt(holders, id) || !j.mon.canWrite(sn, d) {
				continue
			}
			srcHost := sn.devices[src].HostID
			if pass == 0 && hostsOn[d.HostID] || pass == 1 && hostsOn[d.HostID] && d.HostID != srcHost {
				continue
			}
			dest, found = d, true
			break
		}
	}
	if !found {
		return errors.New("no destination would keep the file as well spread (would_worsen)")
	}
	source, ok := j.pickSource(sn, holders, src, nil)
	if !ok {
		return errSourceDown
	}
	if err := j.copyFID(ctx, sn, f, source, dest); err != nil {
		var se *sourceError
		if !errors.As(err, &se) {
			j.noteStray(fid, dest.ID, err)
		}
		return err
	}
	if err := st.AddCopy(ctx, fid, dest.ID); err != nil {
		j.noteStray(fid, dest.ID, err)
		return err
	}
	sd := sn.devices[src]
	if err := j.deleteURL(ctx, fidURL(sn.hosts[sd.HostID], src, fid, nil, false, false), false); err != nil {
		return err
	}
	return st.RemoveCopy(ctx, fid, src)
}

func containsInt(l []int, x int) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}
