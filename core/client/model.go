package client

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// DeviceInfo is a device as get_devices reports it: its row, and what
// the tracker observes of it.
type DeviceInfo struct {
	core.Device
	// Observed is the tracker's view: writeable, readable, unreachable,
	// or "" before its first look.
	Observed string
	// Utilization is the device's I/O utilization in percent as the node
	// reports it, "" when unknown.
	Utilization string
}

// Devices returns every device, by devid.
func (t *Tracker) Devices(ctx context.Context) ([]DeviceInfo, error) {
	r, err := t.Do(ctx, "get_devices", nil)
	if err != nil {
		return nil, err
	}
	recs := Records(r, "devices", "dev")
	out := make([]DeviceInfo, 0, len(recs))
	for _, d := range recs {
		out = append(out, DeviceInfo{
			Device: core.Device{
				ID: num(d["devid"]), HostID: num(d["hostid"]), Status: d["status"], Weight: num(d["weight"]),
				MBTotal: mb(d["mb_total"]), MBUsed: mb(d["mb_used"]), MBAsOf: int64(num(d["mb_asof"])),
			},
			Observed: d["observed_state"], Utilization: d["utilization"],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Hosts returns every host, by hostid.
func (t *Tracker) Hosts(ctx context.Context) ([]core.Host, error) {
	r, err := t.Do(ctx, "get_hosts", nil)
	if err != nil {
		return nil, err
	}
	recs := Records(r, "hosts", "host")
	out := make([]core.Host, 0, len(recs))
	for _, h := range recs {
		out = append(out, core.Host{
			ID: num(h["hostid"]), Name: h["hostname"], Status: h["status"], IP: h["hostip"],
			HTTPPort: num(h["http_port"]), HTTPGetPort: num(h["http_get_port"]), AltIP: h["altip"], AltMask: h["altmask"],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// num parses a decimal field; 0 when absent or malformed.
func num(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// mb parses a megabyte figure; -1 (unknown) when absent or malformed.
func mb(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// DomainClasses is a domain and its classes as get_domains reports them.
type DomainClasses struct {
	Name    string
	Classes []core.Class // Name, MinDevCount, HashType and ReplPolicy set
}

// DomainsWithClasses returns every domain with its classes.
func (t *Tracker) DomainsWithClasses(ctx context.Context) ([]DomainClasses, error) {
	r, err := t.Do(ctx, "get_domains", nil)
	if err != nil {
		return nil, err
	}
	n := num(r["domains"])
	out := make([]DomainClasses, 0, n)
	for i := 1; i <= n; i++ {
		p := "domain" + strconv.Itoa(i)
		d := DomainClasses{Name: r[p]}
		for j := 1; j <= num(r[p+"classes"]); j++ {
			q := p + "class" + strconv.Itoa(j)
			ht, _ := core.HashType(r[q+"hashtype"])
			d.Classes = append(d.Classes, core.Class{Name: r[q+"name"], MinDevCount: num(r[q+"mindevcount"]), HashType: ht, ReplPolicy: r[q+"replpolicy"]})
		}
		out = append(out, d)
	}
	return out, nil
}

// Space returns the cluster's total and used megabytes over the devices
// not dead: from the tracker's get_space extension, which counts a disk
// shared by several devices once; from a tracker without it, the sum over
// the devices.
func (t *Tracker) Space(ctx context.Context) (totalMB, usedMB int64, err error) {
	r, err := t.Do(ctx, "get_space", nil)
	if err == nil {
		totalMB, _ = strconv.ParseInt(r["total_mb"], 10, 64)
		usedMB, _ = strconv.ParseInt(r["used_mb"], 10, 64)
		return totalMB, usedMB, nil
	}
	if !core.Is(core.Unsupported, err) {
		return 0, 0, err
	}
	devs, err := t.Devices(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, d := range devs {
		if d.Status == core.DevDead || d.MBTotal < 0 || d.MBUsed < 0 {
			continue
		}
		totalMB, usedMB = totalMB+d.MBTotal, usedMB+d.MBUsed
	}
	return totalMB, usedMB, nil
}

// ServerSettings returns every server setting the tracker reports.
func (t *Tracker) ServerSettings(ctx context.Context) (map[string]string, error) {
	r, err := t.Do(ctx, "server_settings", nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := 1; i <= num(r["key_count"]); i++ {
		out[r["key_"+strconv.Itoa(i)]] = r["value_"+strconv.Itoa(i)]
	}
	return out, nil
}

// FsckStatus is where the cluster's fsck stands, as fsck_status reports it.
type FsckStatus struct {
	Running    bool
	Host       string // the tracker running it, when running
	MaxChecked int64  // the highest fid checked
	EndFID     int64  // the highest fid when it started
	Start      int64  // unix times; 0 when unknown or never
	Stop       int64
	Now        int64            // the tracker's clock
	PolicyOnly bool             // checks replication policy only, not the files
	Counts     map[string]int64 // event code (MISS, NOPA, ...) -> events logged
}

// Elapsed is how long the fsck ran (until now when not stopped), in
// seconds; 0 when it never started.
func (f FsckStatus) Elapsed() int64 {
	if f.Start <= 0 {
		return 0
	}
	stop := f.Stop
	if stop == 0 {
		stop = f.Now
	}
	return stop - f.Start
}

// FsckStatus reports the fsck's progress and event counts.
func (t *Tracker) FsckStatus(ctx context.Context) (FsckStatus, error) {
	r, err := t.Do(ctx, "fsck_status", nil)
	if err != nil {
		return FsckStatus{}, err
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(r[k], 10, 64); return v }
	f := FsckStatus{
		Running: r["running"] == "1", Host: r["host"],
		MaxChecked: n("max_fid_checked"), EndFID: n("end_fid"),
		Start: n("start_time"), Stop: n("stop_time"), Now: n("current_time"),
		PolicyOnly: r["policy_only"] == "1",
		Counts:     map[string]int64{},
	}
	for k := range r {
		if code, ok := strings.CutPrefix(k, "num_"); ok {
			f.Counts[code] = n(k)
		}
	}
	return f, nil
}

// FsckEvent is one line of the fsck log.
type FsckEvent struct {
	LogID  int64
	UTime  int64
	EvCode string
	FID    int64
	Devid  int // 0 when the event is not about one device
}

// FsckLog returns the fsck log's events after logid after, oldest first
// (a page of the tracker's choosing; ask again after the last one).
func (t *Tracker) FsckLog(ctx context.Context, after int64) ([]FsckEvent, error) {
	r, err := t.Do(ctx, "fsck_getlog", protocol.Args{"after_logid": strconv.FormatInt(after, 10)})
	if err != nil {
		return nil, err
	}
	n := num(r["row_count"])
	out := make([]FsckEvent, 0, n)
	for i := 1; i <= n; i++ {
		p := "row_" + strconv.Itoa(i) + "_"
		v := func(k string) int64 { x, _ := strconv.ParseInt(r[p+k], 10, 64); return x }
		out = append(out, FsckEvent{LogID: v("logid"), UTime: v("utime"), EvCode: r[p+"evcode"], FID: v("fid"), Devid: int(v("devid"))})
	}
	return out, nil
}
