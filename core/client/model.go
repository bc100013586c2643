package client

import (
	"context"
	"sort"
	"strconv"

	"github.com/mogilefs-go/mogilefs-go/core"
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
