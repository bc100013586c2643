package tracker

import (
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Usage reports are up to a usage interval old: what this tracker placed
// since a report was measured counts against the device's free space, so
// that a device about to fill stops getting files before its report says
// so (89 of 160 new files went to one about to fill).
func TestPlacementsCountUntilReported(t *testing.T) {
	s, _ := startServing(t, nil)
	m := s.mon
	const mib = 1 << 10 // KiB per MiB, the usage file's unit
	now := time.Now()
	// The node's clock runs 100 s ahead of the tracker's.
	skew := 100 * time.Second
	m.noteUsage(1, usage{total: 100 * mib, used: 10 * mib, measured: now.Add(skew - 3*time.Second), nodeNow: now.Add(skew), received: now})
	d := core.Device{ID: 1, MBTotal: -1, MBUsed: -1}
	if free := m.withPlacements(d).MBFree(); free != 90 {
		t.Fatalf("free after the first report = %d MB; want 90", free)
	}
	m.notePlaced(1, 50<<20)
	m.notePlaced(1, 1) // rounds up
	if free := m.withPlacements(d).MBFree(); free != 39 {
		t.Errorf("free after placing 50 MiB and a byte = %d MB; want 39", free)
	}
	if free := m.withPlacements(core.Device{ID: 2, MBTotal: 7, MBUsed: 2}).MBFree(); free != 5 {
		t.Errorf("a device without a report keeps the database's figures: %d MB free; want 5", free)
	}
	// A report measured before the placements still leaves them counted.
	later := time.Now()
	m.noteUsage(1, usage{total: 100 * mib, used: 12 * mib, measured: later.Add(skew - 10*time.Second), nodeNow: later.Add(skew), received: later})
	if free := m.withPlacements(d).MBFree(); free != 37 {
		t.Errorf("free after a report older than the placements = %d MB; want 37", free)
	}
	// A report measured after them includes them: they are dropped.
	time.Sleep(10 * time.Millisecond)
	last := time.Now().Add(3 * time.Second)
	m.noteUsage(1, usage{total: 100 * mib, used: 61 * mib, measured: last.Add(skew), nodeNow: last.Add(skew), received: last})
	if free := m.withPlacements(d).MBFree(); free != 39 {
		t.Errorf("free after a report that counts the placements = %d MB; want 39", free)
	}
}
