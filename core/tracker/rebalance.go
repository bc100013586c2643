package tracker

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// rebalancePolicy is a parsed rebalance policy: the original's keys with
// their defaults, overridden by the policy string.
type rebalancePolicy map[string]string

// rebalanceDefaults are the original's policy keys and default values.
var rebalanceDefaults = map[string]string{
	"from_all_devs": "1", "from_hosts": "", "from_devices": "",
	"from_percent_used": "", "from_percent_free": "", "from_space_used": "", "from_space_free": "",
	"fid_age": "old", "limit_type": "device", "limit_by": "none", "limit": "",
	"to_all_devs": "1", "to_hosts": "", "to_devices": "",
	"to_percent_used": "", "to_percent_free": "", "to_space_used": "", "to_space_free": "",
	"not_to_hosts": "", "not_to_devices": "", "use_dest_devs": "all", "leave_in_drain_mode": "0",
}

var humanSizeRE = regexp.MustCompile(`^(?i)(\d+)([bkmgtp])?$`)

// parseRebalancePolicy parses `key=value key=value,value ...`.
func parseRebalancePolicy(s string) (rebalancePolicy, error) {
	p := rebalancePolicy{}
	for k, v := range rebalanceDefaults {
		p[k] = v
	}
	for _, tuple := range strings.Fields(s) {
		k, v, _ := strings.Cut(tuple, "=")
		if _, ok := rebalanceDefaults[k]; !ok {
			//lint:ignore ST1005 the original's reply text, sent as is
			return nil, fmt.Errorf("Invalid setting %s", k)
		}
		p[k] = v
	}
	for _, k := range []string{"from_hosts", "from_devices", "to_hosts", "to_devices", "not_to_hosts", "not_to_devices"} {
		for _, id := range p.list(k) {
			if _, err := strconv.Atoi(id); err != nil {
				return nil, fmt.Errorf("%s: %q is not an id", k, id)
			}
		}
	}
	for _, k := range []string{"from_percent_used", "from_percent_free", "from_space_used", "from_space_free", "to_percent_used", "to_percent_free", "to_space_used", "to_space_free"} {
		if v := p[k]; v != "" {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", k, v)
			}
		}
	}
	switch p["fid_age"] {
	case "old", "new":
	default:
		return nil, fmt.Errorf("fid_age must be old or new")
	}
	switch p["limit_type"] {
	case "device", "global":
	default:
		return nil, fmt.Errorf("limit_type must be device or global")
	}
	switch p["limit_by"] {
	case "none":
	case "count":
		if _, err := strconv.ParseInt(p["limit"], 10, 64); err != nil {
			return nil, fmt.Errorf("limit_by=count needs limit=N")
		}
	case "size":
		if !humanSizeRE.MatchString(p["limit"]) {
			return nil, fmt.Errorf("limit_by=size needs limit=N[bkmgtp]")
		}
	case "percent":
		return nil, fmt.Errorf("policy size limits by percent are unimplemented")
	default:
		return nil, fmt.Errorf("limit_by must be none, count or size")
	}
	if v := p["use_dest_devs"]; v != "all" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return nil, fmt.Errorf("use_dest_devs must be all or a number")
		}
	}
	return p, nil
}

func (p rebalancePolicy) list(k string) []string {
	if p[k] == "" {
		return nil
	}
	return strings.Split(p[k], ",")
}

func (p rebalancePolicy) num(k string) (float64, bool) {
	v, err := strconv.ParseFloat(p[k], 64)
	return v, err == nil && v != 0
}

func inList(list []string, id int) bool {
	for _, x := range list {
		if x == strconv.Itoa(id) {
			return true
		}
	}
	return false
}

// spaceFilters applies the `<prefix>_percent_used` etc. "more than"
// filters of the original to d.
func (p rebalancePolicy) spaceFilters(prefix string, d core.Device) bool {
	if v, ok := p.num(prefix + "_percent_used"); ok {
		if d.PercentFree() < 0 || (1-d.PercentFree())*100 <= v {
			return false
		}
	}
	if v, ok := p.num(prefix + "_percent_free"); ok {
		if d.PercentFree() <= 0 || d.PercentFree()*100 <= v {
			return false
		}
	}
	if v, ok := p.num(prefix + "_space_used"); ok {
		if d.MBUsed <= 0 || float64(d.MBUsed) <= v {
			return false
		}
	}
	if v, ok := p.num(prefix + "_space_free"); ok {
		if d.MBFree() <= 0 || float64(d.MBFree()) <= v {
			return false
		}
	}
	return true
}

// sourceDevices returns the devices a rebalance would empty.
func rebalanceSources(sn *snapshot, p rebalancePolicy) []int {
	var out []int
	for _, id := range sn.sortedDeviceIDs() {
		d := sn.devices[id]
		h := sn.hosts[d.HostID]
		if h.Status != core.HostAlive || (d.Status != core.DevAlive && d.Status != core.DevDrain) {
			continue
		}
		if l := p.list("from_devices"); l != nil && !inList(l, id) {
			continue
		}
		if l := p.list("from_hosts"); l != nil && !inList(l, d.HostID) {
			continue
		}
		if p.spaceFilters("from", d) {
			out = append(out, id)
		}
	}
	return out
}

// rebalanceDests returns the devices a rebalance may copy to, of those
// canWrite accepts.
func rebalanceDests(sn *snapshot, p rebalancePolicy, exclude []int, canWrite func(*snapshot, core.Device) bool) []int {
	skip := map[int]bool{}
	for _, id := range exclude {
		skip[id] = true
	}
	var out []int
	for _, id := range sn.sortedDeviceIDs() {
		d := sn.devices[id]
		if skip[id] || !canWrite(sn, d) {
			continue
		}
		if l := p.list("to_devices"); l != nil && !inList(l, id) {
			continue
		}
		if l := p.list("to_hosts"); l != nil && !inList(l, d.HostID) {
			continue
		}
		if inList(p.list("not_to_devices"), id) || inList(p.list("not_to_hosts"), d.HostID) {
			continue
		}
		if p.spaceFilters("to", d) {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) cmdRebalanceSetPolicy(ctx context.Context, c *call) (protocol.Args, error) {
	pol := c.args.Get("policy")
	if pol == "" {
		return nil, protocol.Errf("bad_rebal_pol", "no policy given")
	}
	if h, _, err := s.store().Setting(ctx, "rebal_host"); err != nil {
		return nil, err
	} else if h != "" {
		return nil, protocol.Errf("no_set_rebal", "Cannot change policy while rebalance is running")
	}
	if _, err := parseRebalancePolicy(pol); err != nil {
		return nil, protocol.Errf("bad_rebal_pol", "%v", err)
	}
	if err := s.store().SetSetting(ctx, "rebal_policy", pol); err != nil {
		return nil, err
	}
	return nil, s.store().DeleteSetting(ctx, "rebal_state")
}

// loadRebalancePolicy reads and parses the stored policy.
func loadRebalancePolicy(ctx context.Context, st settingReader) (rebalancePolicy, error) {
	v, _, err := st.Setting(ctx, "rebal_policy")
	if err != nil {
		return nil, err
	}
	if v == "" {
		return nil, errf("no_rebal_policy")
	}
	p, err := parseRebalancePolicy(v)
	if err != nil {
		return nil, protocol.Errf("bad_rebal_pol", "%v", err)
	}
	return p, nil
}

func joinIDs(ids []int) string {
	sort.Ints(ids)
	return joinInts(ids)
}

func (s *Server) cmdRebalanceTest(ctx context.Context, c *call) (protocol.Args, error) {
	p, err := loadRebalancePolicy(ctx, s.store())
	if err != nil {
		return nil, err
	}
	sn := s.mon.snap()
	src := rebalanceSources(sn, p)
	return protocol.Args{"sdevs": joinIDs(src), "ddevs": joinIDs(rebalanceDests(sn, p, src, s.mon.canWrite))}, nil
}

// rebalanceStateKeys are the keys of the state string, in order.
var rebalanceStateKeys = []string{"completed_devs", "source_devs", "sdev_current", "sdev_lastfid", "sdev_limit", "limit",
	"fids_queued", "bytes_queued", "time_started", "time_finished", "time_stopped", "time_latest_run", "time_latest_empty_run", "empty_runs"}

func (s *Server) cmdRebalanceStart(ctx context.Context, c *call) (protocol.Args, error) {
	st := s.store()
	if h, _, err := st.Setting(ctx, "rebal_host"); err != nil {
		return nil, err
	} else if h != "" {
		return nil, protocol.Errf("rebal_running", "rebalance is already running")
	}
	if h, _, err := st.Setting(ctx, "fsck_host"); err != nil {
		return nil, err
	} else if h != "" {
		return nil, protocol.Errf("fsck_running", "fsck running; cannot run rebalance at same time")
	}
	p, err := loadRebalancePolicy(ctx, s.store())
	if err != nil {
		return nil, err
	}
	state, _, err := st.Setting(ctx, "rebal_state")
	if err != nil {
		return nil, err
	}
	if state == "" {
		now, err := st.Now(ctx)
		if err != nil {
			return nil, err
		}
		vals := map[string]string{"source_devs": joinIDs(rebalanceSources(s.mon.snap(), p)), "time_started": i64toa(now)}
		var parts []string
		for _, k := range rebalanceStateKeys {
			v := vals[k]
			if v == "" && k != "completed_devs" && k != "source_devs" {
				v = "0"
			}
			parts = append(parts, k+"="+v)
		}
		state = strings.Join(parts, " ")
		if err := st.SetSetting(ctx, "rebal_state", state); err != nil {
			return nil, err
		}
	}
	if err := st.DeleteSetting(ctx, "rebal_signal"); err != nil {
		return nil, err
	}
	if err := st.SetSetting(ctx, "rebal_host", s.cfg.Hostname); err != nil {
		return nil, err
	}
	kick(s.jobs.rebalKick)
	return protocol.Args{"state": state}, nil
}

func (s *Server) cmdRebalanceStop(ctx context.Context, c *call) (protocol.Args, error) {
	h, _, err := s.store().Setting(ctx, "rebal_host")
	if err != nil {
		return nil, err
	}
	if h == "" {
		return nil, errf("rebal_not_started")
	}
	return nil, s.store().SetSetting(ctx, "rebal_signal", "stop")
}

func (s *Server) cmdRebalanceReset(ctx context.Context, c *call) (protocol.Args, error) {
	h, _, err := s.store().Setting(ctx, "rebal_host")
	if err != nil {
		return nil, err
	}
	if h != "" {
		return nil, protocol.Errf("rebal_running", "rebalance is running; stop it first")
	}
	return nil, s.store().DeleteSetting(ctx, "rebal_state")
}

func (s *Server) cmdRebalanceStatus(ctx context.Context, c *call) (protocol.Args, error) {
	v, _, err := s.store().Setting(ctx, "rebal_state")
	if err != nil {
		return nil, err
	}
	if v == "" {
		return nil, errf("no_rebal_state")
	}
	return protocol.Args{"state": v}, nil
}
