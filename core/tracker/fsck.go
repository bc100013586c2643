package tracker

import (
	"context"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// settingInt reads an integer server setting straight from the database.
func settingInt(ctx context.Context, st settingReader, key string) (int64, error) {
	v, _, err := st.Setting(ctx, key)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n, nil
}

func (s *Server) cmdFsckStart(ctx context.Context, c *call) (protocol.Args, error) {
	st := s.store()
	if h, _, err := st.Setting(ctx, "fsck_host"); err != nil {
		return nil, err
	} else if h != "" {
		return nil, protocol.Errf("fsck_running", "fsck is already running")
	}
	if h, _, err := st.Setting(ctx, "rebal_host"); err != nil {
		return nil, err
	} else if h != "" {
		return nil, protocol.Errf("rebal_running", "rebalance running; cannot run fsck at same time")
	}
	highest, err := settingInt(ctx, s.store(), "fsck_highest_fid_checked")
	if err != nil {
		return nil, err
	}
	end, _, err := st.Setting(ctx, "fsck_fid_at_end")
	if err != nil {
		return nil, err
	}
	endN, _ := strconv.ParseInt(end, 10, 64)
	if end == "" || highest >= endN {
		// Never ran, or the last run completed: start over.
		if err := s.fsckResetState(ctx, false, 0); err != nil {
			return nil, err
		}
	}
	now, err := st.Now(ctx)
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]string{"fsck_start_time": i64toa(now), "fsck_fids_checked": "0", "fsck_host": s.cfg.Hostname} {
		if err := st.SetSetting(ctx, k, v); err != nil {
			return nil, err
		}
	}
	if err := st.DeleteSetting(ctx, "fsck_stop_time"); err != nil {
		return nil, err
	}
	kick(s.jobs.fsckKick)
	return nil, s.mon.refresh(ctx)
}

func (s *Server) cmdFsckStop(ctx context.Context, c *call) (protocol.Args, error) {
	st := s.store()
	now, err := st.Now(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.DeleteSetting(ctx, "fsck_host"); err != nil {
		return nil, err
	}
	if err := st.SetSetting(ctx, "fsck_stop_time", i64toa(now)); err != nil {
		return nil, err
	}
	return nil, s.mon.refresh(ctx)
}

// fsckResetState sets fsck progress back to the start (or startpos).
func (s *Server) fsckResetState(ctx context.Context, policyOnly bool, startpos int64) error {
	st := s.store()
	maxFID, err := st.MaxFID(ctx)
	if err != nil {
		return err
	}
	maxLog, err := st.MaxFsckLogID(ctx)
	if err != nil {
		return err
	}
	po := "0"
	if policyOnly {
		po = "1"
	}
	for k, v := range map[string]string{
		"fsck_opt_policy_only":     po,
		"fsck_highest_fid_checked": i64toa(startpos),
		"fsck_fid_at_end":          i64toa(maxFID),
		"fsck_start_maxlogid":      i64toa(maxLog),
		"fsck_logid_processed":     i64toa(maxLog),
	} {
		if err := st.SetSetting(ctx, k, v); err != nil {
			return err
		}
	}
	for _, k := range []string{"fsck_start_time", "fsck_stop_time"} {
		if err := st.DeleteSetting(ctx, k); err != nil {
			return err
		}
	}
	return st.DeleteSettingsPrefix(ctx, "fsck_sum_evcount_")
}

func (s *Server) cmdFsckReset(ctx context.Context, c *call) (protocol.Args, error) {
	start, ok := intArg(c.args, "startpos", 0)
	if !ok || start < 0 {
		return nil, protocol.Errf("bad_params", "startpos must be a fid")
	}
	if err := s.fsckResetState(ctx, c.args.Bool("policy_only"), start); err != nil {
		return nil, err
	}
	return nil, s.mon.refresh(ctx)
}

func (s *Server) cmdFsckClearLog(ctx context.Context, c *call) (protocol.Args, error) {
	return nil, s.store().ClearFsckLog(ctx)
}

func (s *Server) cmdFsckGetLog(ctx context.Context, c *call) (protocol.Args, error) {
	after, _ := intArg(c.args, "after_logid", 0)
	rows, err := s.store().FsckLog(ctx, after, 100)
	if err != nil {
		return nil, err
	}
	out := protocol.Args{"row_count": itoa(len(rows))}
	for i, r := range rows {
		p := "row_" + itoa(i+1) + "_"
		out[p+"logid"], out[p+"utime"], out[p+"evcode"] = i64toa(r.LogID), i64toa(r.UTime), r.EvCode
		if r.FID.Valid {
			out[p+"fid"] = i64toa(r.FID.Int64)
		}
		if r.Devid.Valid {
			out[p+"devid"] = i64toa(r.Devid.Int64)
		}
	}
	return out, nil
}

// foldFsckLog adds log rows not yet counted to fsck_sum_evcount_*.
func (s *Server) foldFsckLog(ctx context.Context) error {
	st := s.store()
	done, err := settingInt(ctx, s.store(), "fsck_logid_processed")
	if err != nil {
		return err
	}
	counts := map[string]int64{}
	for {
		rows, err := st.FsckLog(ctx, done, 1000)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			counts[r.EvCode]++
			done = r.LogID
		}
	}
	for code, n := range counts {
		cur, err := settingInt(ctx, s.store(), "fsck_sum_evcount_"+code)
		if err != nil {
			return err
		}
		if err := st.SetSetting(ctx, "fsck_sum_evcount_"+code, i64toa(cur+n)); err != nil {
			return err
		}
	}
	if len(counts) > 0 {
		return st.SetSetting(ctx, "fsck_logid_processed", i64toa(done))
	}
	return nil
}

func (s *Server) cmdFsckStatus(ctx context.Context, c *call) (protocol.Args, error) {
	if err := s.foldFsckLog(ctx); err != nil {
		return nil, err
	}
	st := s.store()
	all, err := st.Settings(ctx)
	if err != nil {
		return nil, err
	}
	now, err := st.Now(ctx)
	if err != nil {
		return nil, err
	}
	maxLog, err := st.MaxFsckLogID(ctx)
	if err != nil {
		return nil, err
	}
	num := func(k string) string {
		if v := all[k]; v != "" {
			return v
		}
		return "0"
	}
	running := "0"
	if all["fsck_host"] != "" {
		running = "1"
	}
	out := protocol.Args{
		"running": running, "host": all["fsck_host"],
		"max_fid_checked": num("fsck_highest_fid_checked"), "policy_only": num("fsck_opt_policy_only"),
		"end_fid": num("fsck_fid_at_end"), "start_time": num("fsck_start_time"), "stop_time": num("fsck_stop_time"),
		"current_time": i64toa(now), "max_logid": i64toa(maxLog),
	}
	for k, v := range all {
		if code, ok := strings.CutPrefix(k, "fsck_sum_evcount_"); ok {
			out["num_"+code] = v
		}
	}
	return out, nil
}
