package tracker

import (
	"math/rand/v2"
	"sort"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// weightedOrder returns items in a random order where each next item is
// drawn with probability proportional to its weight (without
// replacement). Items of weight <= 0 are dropped.
func weightedOrder[T any](items []T, weight func(T) float64) []T {
	type wi struct {
		item T
		w    float64
	}
	var pool []wi
	total := 0.0
	for _, it := range items {
		if w := weight(it); w > 0 {
			pool = append(pool, wi{it, w})
			total += w
		}
	}
	out := make([]T, 0, len(pool))
	for len(pool) > 0 {
		r := rand.Float64() * total
		i := 0
		for ; i < len(pool)-1; i++ {
			r -= pool[i].w
			if r < 0 {
				break
			}
		}
		out = append(out, pool[i].item)
		total -= pool[i].w
		pool = append(pool[:i], pool[i+1:]...)
	}
	return out
}

// unknownSpaceWeight is the placement weight of a device whose size is not
// known yet (the original never chose such devices; we give them an
// average chance so that a fresh cluster takes files at once).
const unknownSpaceWeight = 50

// spaceWeight is a device's placement weight: 100 × fraction free.
func spaceWeight(d core.Device) float64 {
	p := d.PercentFree()
	if p < 0 {
		return unknownSpaceWeight
	}
	return 100 * p
}

// orderForNewFile sorts writable devices by free space, keeps the 20
// emptiest and orders them by weighted chance.
func orderForNewFile(devs []core.Device) []core.Device {
	sort.Slice(devs, func(i, j int) bool { return spaceWeight(devs[i]) > spaceWeight(devs[j]) })
	if len(devs) > 20 {
		devs = devs[:20]
	}
	return weightedOrder(devs, spaceWeight)
}

// pickSpread takes up to n devices from ordered, on distinct hosts first,
// then filling from the rest.
func pickSpread(ordered []core.Device, n int) []core.Device {
	var out []core.Device
	usedHost := map[int]bool{}
	used := map[int]bool{}
	for _, d := range ordered {
		if len(out) == n {
			return out
		}
		if !usedHost[d.HostID] {
			out = append(out, d)
			usedHost[d.HostID], used[d.ID] = true, true
		}
	}
	for _, d := range ordered {
		if len(out) == n {
			break
		}
		if !used[d.ID] {
			out = append(out, d)
			used[d.ID] = true
		}
	}
	return out
}
