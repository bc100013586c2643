package tracker

import (
	"sort"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// verdict is what a replication policy says of a file's copies.
type verdict int

const (
	allGood  verdict = iota // enough copies, well spread
	tooGood                 // more copies than the policy wants
	noAnswer                // copies are missing but no device can take one now
	needMore                // copy to the first usable device of ideal, else desperate
)

// plan is a policy's answer.
type plan struct {
	verdict          verdict
	ideal, desperate []core.Device
}

// parsePolicy reads "Name(N)" into the policy name and its count (0: the
// class's mindevcount).
func parsePolicy(p string) (name string, n int) {
	m := policyRE.FindStringSubmatch(p)
	if m == nil {
		return "MultipleHosts", 0
	}
	n, _ = strconv.Atoi(m[2])
	return strings.TrimPrefix(m[1], "MogileFS::ReplicationPolicy::"), n
}

// replicationPlan applies the class's policy to a file on the devices
// holders (devids), skipping devices in failed as destinations and
// those canWrite refuses.
func replicationPlan(sn *snapshot, cls core.Class, holders []int, failed map[int]bool, canWrite func(*snapshot, core.Device) bool) plan {
	name, min := parsePolicy(cls.Policy())
	if min == 0 {
		min = cls.MinDevCount
	}
	holding := map[int]bool{}
	hostsOn := map[int]bool{}
	on := 0
	for _, id := range holders {
		d, ok := sn.devices[id]
		if !ok || d.Status == core.DevDead {
			continue
		}
		holding[id] = true
		hostsOn[d.HostID] = true
		on++
	}
	totalDisks := 0
	aliveHosts := map[int]bool{}
	for _, d := range sn.devices {
		if d.Status != core.DevDead {
			totalDisks++
		}
		if d.Status == core.DevAlive {
			aliveHosts[d.HostID] = true
		}
	}
	if name == "MultipleDevices" {
		switch {
		case on == min:
			return plan{verdict: allGood}
		case on > min:
			return plan{verdict: tooGood}
		case on >= 2 && on == totalDisks:
			return plan{verdict: allGood}
		}
	} else {
		if min == 1 && on == 1 {
			return plan{verdict: allGood}
		}
		if len(hostsOn) > min || on > min {
			return plan{verdict: tooGood}
		}
		if len(hostsOn) == min || (len(hostsOn) >= len(aliveHosts) && on >= min) || (on >= 2 && on == totalDisks) {
			return plan{verdict: allGood}
		}
	}
	var cands []core.Device
	for _, d := range sn.devices {
		if !holding[d.ID] && !failed[d.ID] && canWrite(sn, d) {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return plan{verdict: noAnswer}
	}
	sort.Slice(cands, func(i, j int) bool {
		if wi, wj := spaceWeight(cands[i]), spaceWeight(cands[j]); wi != wj {
			return wi > wj
		}
		return cands[i].ID < cands[j].ID
	})
	var ideal, desperate []core.Device
	if name != "MultipleDevices" && len(hostsOn) < len(aliveHosts) {
		for _, d := range cands {
			if hostsOn[d.HostID] {
				desperate = append(desperate, d)
			} else {
				ideal = append(ideal, d)
			}
		}
	} else {
		ideal = cands
	}
	if on >= min && len(ideal) == 0 {
		return plan{verdict: noAnswer}
	}
	top := func(l []core.Device) []core.Device {
		if len(l) > 20 {
			l = l[:20]
		}
		return weightedOrder(l, spaceWeight)
	}
	return plan{verdict: needMore, ideal: top(ideal), desperate: top(desperate)}
}
