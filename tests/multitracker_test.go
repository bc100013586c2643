package tests

import (
	"context"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// TestTrackerKilledMidReplication runs two trackers on one database
// (MariaDB when configured): the first is killed while it replicates a
// backlog; the second takes its work over when the leases run out. Every
// file ends with two intact copies, and no file was copied more than the
// work in flight at the kill allows.
func TestTrackerKilledMidReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dsn := storetest.DSNs(t)["mysql"]
	if dsn == "" {
		t.Log("no MOGILEFS_TEST_MYSQL_DSN: running on SQLite")
	}
	const jobs = 4
	lease := func(cfg *tracker.Config) {
		cfg.QueueLease = 2 * time.Second
		cfg.ReplicateJobs = jobs
	}
	// Tracker A takes the uploads with its jobs off, so that a backlog
	// builds up; then A2 (jobs on) starts replicating it and is killed.
	c := clustertest.Start(t, clustertest.Options{DSN: dsn, Domain: "test", Hosts: 2,
		Tune: func(cfg *tracker.Config) { cfg.NoJobs = true }})
	files := uploadMany(t, c, "test", "two", "mt/", 300, 20000)
	a2, _ := c.StartTracker(lease)
	waitFor(t, 30*time.Second, "replication under way", func() bool {
		n := 0
		for _, node := range c.Nodes {
			n += int(node.Server.Stats().Puts.Load())
		}
		return n > len(files)+20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	a2.Close(ctx) // killed: in-flight claims are left to expire
	cancel()
	if copiesOK(t, c, "test", files, 2, nil) {
		t.Log("the first tracker finished before it was stopped; the take-over is not exercised")
	}
	b, _ := c.StartTracker(lease)
	waitFor(t, 90*time.Second, "every file at 2 copies", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	verifyAll(t, c, "test", files)
	// Each file was copied once; only the batch in flight when the first
	// tracker died may have been copied again (never at the same time:
	// the lease keeps the second tracker off it until it expires).
	copies := a2.Stats().Replicated.Load() + b.Stats().Replicated.Load()
	if copies > int64(len(files)+jobs*8) {
		t.Errorf("%d replications for %d files", copies, len(files))
	}
	if b.Stats().Replicated.Load() == 0 {
		t.Log("the second tracker had nothing left to do")
	}
}
