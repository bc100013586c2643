package tracker

import (
	"context"
	"errors"
	"sync"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// fsck event codes (fsck_log.evcode).
const (
	evNoPaths   = "NOPA" // no copies recorded
	evPolicy    = "POVI" // copies violate the class policy
	evMissing   = "MISS" // a copy is missing
	evBadLength = "BLEN" // a copy has the wrong length
	evGone      = "GONE" // no copy found anywhere
	evSearch    = "SRCH" // exhaustive search started
	evFound     = "FOND" // a copy found by the search
	evRepl      = "REPL" // replication queued
	evDevcount  = "BCNT" // devcount was wrong
	evBadSum    = "BSUM" // a copy has the wrong checksum
	evNewSum    = "NSUM" // a missing checksum was stored
	evMultiSum  = "MSUM" // copies disagree, no reference
	evBadAlg    = "BALG" // checksum algorithm differs from the class's
)

// errStall: a copy cannot be checked now (its device is unreachable).
var errStall = errors.New("a device holding a copy is unreachable")

// runFsckInjector feeds the fsck queue while this tracker runs fsck.
func (j *jobs) runFsckInjector(ctx context.Context) {
	st := j.db
	for ctx.Err() == nil {
		host, _, err := st.Setting(ctx, "fsck_host")
		if err != nil || host != j.cfg.Hostname {
			sleepCtx(ctx, j.cfg.QueuePoll*5, nil)
			continue
		}
		queued, err := st.QueueLength(ctx, store.FsckQueue)
		if err != nil || queued >= j.mon.snap().settingDefault("queue_size_for_fsck", 20000) {
			sleepCtx(ctx, j.cfg.QueuePoll, nil)
			continue
		}
		highest, _ := settingInt(ctx, j.db, "fsck_highest_fid_checked")
		end, _ := settingInt(ctx, j.db, "fsck_fid_at_end")
		fids, err := st.FIDsAfter(ctx, highest, end, int(j.mon.snap().settingDefault("queue_rate_for_fsck", 1000)))
		if err != nil {
			sleepCtx(ctx, j.cfg.QueuePoll, nil)
			continue
		}
		if len(fids) == 0 {
			now, _ := st.Now(ctx)
			st.DeleteSetting(ctx, "fsck_host")
			st.SetSetting(ctx, "fsck_stop_time", i64toa(now))
			j.log.Info("tracker: fsck has queued every file", "highest_fid", highest)
			continue
		}
		if err := st.EnqueueChecks(ctx, store.FsckQueue, fids, 0, ""); err != nil {
			j.log.Warn("tracker: cannot queue fsck work", "err", err)
			sleepCtx(ctx, j.cfg.QueuePoll, nil)
			continue
		}
		st.SetSetting(ctx, "fsck_highest_fid_checked", i64toa(fids[len(fids)-1]))
		kick(j.fsckKick)
	}
}

// fsckItem checks one fid from the fsck queue.
func (j *jobs) fsckItem(ctx context.Context, it store.QueueItem) {
	err := j.fsckFID(ctx, it.FID)
	st := j.db
	switch {
	case errors.Is(err, errStall):
		j.settle(ctx, "fsck", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.FsckQueue, it.FID, 60, it.FailCount+1)
		})
	case err != nil && ctx.Err() == nil:
		j.log.Warn("tracker: fsck of a file failed; will retry", "fid", it.FID, "err", err)
		delay := backoff(it.FailCount)
		j.settle(ctx, "fsck", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.FsckQueue, it.FID, delay, it.FailCount+1)
		})
	case err == nil:
		j.settle(ctx, "fsck", it.FID, func(ctx context.Context) error { return st.DoneQueue(ctx, store.FsckQueue, it.FID) })
		j.stats.FsckChecked.Add(1)
	}
}

// fsckFID checks one file and repairs what it finds.
func (j *jobs) fsckFID(ctx context.Context, fid int64) error {
	st := j.db
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
	sn := j.mon.snap()
	cls, _ := sn.classByID(f.DomainID, f.ClassID)
	log := func(code string, devid int) { st.AddFsckLog(ctx, fid, code, devid) }
	needFix := false
	if len(holders) == 0 {
		log(evNoPaths, 0)
		needFix = true
	} else if p := replicationPlan(sn, cls, holders, nil, j.mon.canWrite); p.verdict != allGood {
		log(evPolicy, 0)
		needFix = true
	}
	if f.DevCount != len(holders) {
		log(evDevcount, 0)
		if !sn.settingBool("skip_devcount") {
			st.FixDevcount(ctx, fid)
		}
	}
	_, _, sumErr := st.Checksum(ctx, fid)
	if cls.HashType != core.HashNone && errors.Is(sumErr, store.ErrNotFound) {
		needFix = true
	}
	checkSums := false
	if sn.settings["fsck_opt_policy_only"] != "1" {
		switch v := sn.settings["fsck_checksum"]; {
		case v == "MD5" || v == "SHA-1":
			checkSums, needFix = true, true
		case v != "off" && cls.HashType != core.HashNone:
			checkSums = true
		}
		if !needFix {
			bad, err := j.checkCopies(ctx, sn, f, holders)
			if err != nil {
				return err
			}
			needFix = bad || checkSums
		}
	}
	if !needFix {
		return nil
	}
	return j.fsckFix(ctx, sn, f, cls, holders, checkSums)
}

// checkCopies HEADs every copy in parallel; bad is true when one is
// missing or has the wrong length.
func (j *jobs) checkCopies(ctx context.Context, sn *snapshot, f core.File, holders []int) (bad bool, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range holders {
		d, ok := sn.devices[id]
		if !ok || d.Status == core.DevDead {
			mu.Lock()
			bad = true
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			size, missing, herr := j.nodes.headSize(ctx, fidURL(sn.hosts[d.HostID], id, f.FID, nil, false, true))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case herr != nil:
				err = errStall
			case missing || size != f.Length:
				bad = true
			}
		}()
	}
	wg.Wait()
	return bad, err
}

// fsckFix verifies every copy, drops bad ones, finds lost ones, settles
// checksums, and queues replication when the policy is not met.
func (j *jobs) fsckFix(ctx context.Context, sn *snapshot, f core.File, cls core.Class, holders []int, checkSums bool) error {
	st := j.db
	log := func(code string, devid int) { st.AddFsckLog(ctx, f.FID, code, devid) }
	storedType, stored, _ := st.Checksum(ctx, f.FID)
	hashType := cls.HashType
	switch v := sn.settings["fsck_checksum"]; v {
	case "MD5", "SHA-1":
		hashType, _ = core.HashType(v)
	}
	if stored != nil && hashType == core.HashNone {
		hashType = storedType
	}
	type copyState struct {
		devid int
		sum   string
	}
	var good []copyState
	for _, id := range holders {
		d, ok := sn.devices[id]
		if !ok || d.Status == core.DevDead {
			if err := st.RemoveCopy(ctx, f.FID, id); err != nil {
				return err
			}
			continue
		}
		h := sn.hosts[d.HostID]
		url := fidURL(h, id, f.FID, nil, false, true)
		size, missing, err := j.nodes.headSize(ctx, url)
		switch {
		case err != nil:
			return errStall
		case missing:
			log(evMissing, id)
			if err := st.RemoveCopy(ctx, f.FID, id); err != nil {
				return err
			}
			continue
		case size != f.Length:
			log(evBadLength, id)
			if err := st.RemoveCopy(ctx, f.FID, id); err != nil {
				return err
			}
			continue
		}
		cs := copyState{devid: id}
		if checkSums && hashType != core.HashNone {
			sum, err := j.nodes.digest(ctx, h, core.FIDPath(id, f.FID), url, hashType, f.Length)
			if err != nil {
				return errStall
			}
			cs.sum = string(sum)
		}
		good = append(good, cs)
	}
	if len(good) == 0 {
		// Search every device for the fid's path.
		log(evSearch, 0)
		for _, id := range sn.sortedDeviceIDs() {
			d := sn.devices[id]
			if d.Status == core.DevDead {
				continue
			}
			size, missing, err := j.nodes.headSize(ctx, fidURL(sn.hosts[d.HostID], id, f.FID, nil, false, true))
			if err == nil && !missing && size == f.Length {
				log(evFound, id)
				st.AddCopy(ctx, f.FID, id)
				good = append(good, copyState{devid: id})
			}
		}
		if len(good) == 0 {
			log(evGone, 0)
			return nil
		}
	}
	if checkSums && hashType != core.HashNone && len(good) > 0 && good[0].sum != "" {
		agree := true
		for _, g := range good[1:] {
			agree = agree && g.sum == good[0].sum
		}
		switch {
		case stored != nil && storedType != hashType:
			log(evBadAlg, 0)
		case stored != nil:
			// Drop copies that disagree with the stored checksum.
			kept := good[:0]
			for _, g := range good {
				if g.sum != string(stored) {
					log(evBadSum, g.devid)
					if err := st.RemoveCopy(ctx, f.FID, g.devid); err != nil {
						return err
					}
				} else {
					kept = append(kept, g)
				}
			}
			good = kept
		case !agree:
			if sn.settings["fsck_checksum"] != "" {
				log(evMultiSum, 0)
			} else {
				log(evBadSum, 0)
			}
		case cls.HashType == hashType:
			st.SetChecksum(ctx, f.FID, hashType, []byte(good[0].sum))
			log(evNewSum, 0)
		}
	}
	var devids []int
	for _, g := range good {
		devids = append(devids, g.devid)
	}
	st.FixDevcount(ctx, f.FID)
	if p := replicationPlan(j.mon.snap(), cls, devids, nil, j.mon.canWrite); p.verdict != allGood {
		from := 0
		if len(devids) > 0 {
			from = devids[0]
		}
		if err := st.EnqueueReplication(ctx, f.FID, from, 0); err != nil {
			return err
		}
		log(evRepl, 0)
		kick(j.replKick)
	}
	return nil
}
