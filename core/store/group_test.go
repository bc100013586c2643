package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A batch of lazy writes only is committed without an fsync
// (synchronous=NORMAL, 1), a batch with any durable write with one (FULL,
// 2), and the pool's connections stay FULL whatever the committer did.
func TestGroupCommitLazyBatches(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: "DBI:SQLite:dbname=" + filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	syncMode := func(tx *sql.Tx) int {
		var n int
		if err := tx.QueryRow("PRAGMA synchronous").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var seen int
	record := func(ctx context.Context, tx *sql.Tx) error { seen = syncMode(tx); return nil }
	if err := s.lazyTx(ctx, "lazy", record); err != nil {
		t.Fatal(err)
	}
	if seen != 1 {
		t.Errorf("a lazy batch ran with synchronous=%d, want 1 (NORMAL)", seen)
	}
	if err := s.writeTx(ctx, "durable", record); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("a durable batch ran with synchronous=%d, want 2 (FULL)", seen)
	}
	// A batch mixing both is durable. (Run here as the committer's
	// goroutine would: it is idle, and its last batch happened before.)
	var modes []int
	mixed := func(ctx context.Context, tx *sql.Tx) error { modes = append(modes, syncMode(tx)); return nil }
	s.group.runBatch([]*commitReq{
		{op: "lazy", lazy: true, fn: mixed, done: make(chan struct{})},
		{op: "durable", fn: mixed, done: make(chan struct{})},
	})
	if len(modes) != 2 || modes[0] != 2 || modes[1] != 2 {
		t.Errorf("a batch of a lazy and a durable write ran with synchronous=%v, want 2 (FULL) each", modes)
	}
	if err := s.lazyTx(ctx, "lazy", record); err != nil || seen != 1 {
		t.Errorf("a lazy batch: synchronous=%d (%v), want 1", seen, err)
	}
	// Every connection of the pool is FULL, the committer's too once given
	// back.
	s.group.stop()
	s.group = nil
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		var n int
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("pool connection %d: synchronous=%d, want 2 (FULL)", i, n)
		}
	}
}

// A Deferred change is committed without an fsync, a Durable one with
// it, and Sync writes a page in a durable commit (a commit that writes
// nothing is not synced), whose fsync of the write-ahead log takes the
// deferred commits before it along.
func TestDeferredChangesAndSync(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: "DBI:SQLite:dbname=" + filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a", "b", "c"} {
		fid, err := s.RegisterTempfile(ctx, Tempfile{DomainID: 1, Key: k}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, Commit{FID: fid, DomainID: 1, Key: k, Devid: 1, ClaimTempfile: true}); err != nil {
			t.Fatal(err)
		}
	}
	relaxed := func() bool { return s.group.relaxed }
	if _, err := s.DeleteKey(ctx, 1, "a", Deferred); err != nil || !relaxed() {
		t.Errorf("a deferred delete: relaxed=%v (%v), want a commit without fsync", relaxed(), err)
	}
	if err := s.RenameKey(ctx, 1, "b", "b2", Deferred); err != nil || !relaxed() {
		t.Errorf("a deferred rename: relaxed=%v (%v), want a commit without fsync", relaxed(), err)
	}
	if err := s.RenameKey(ctx, 1, "b2", "b3", Durable); err != nil || relaxed() {
		t.Errorf("a durable rename: relaxed=%v (%v), want an fsynced commit", relaxed(), err)
	}
	if err := s.SetFileMeta(ctx, 3, map[string]string{"mode": "600"}, Deferred); err != nil || !relaxed() {
		t.Errorf("deferred metadata: relaxed=%v (%v), want a commit without fsync", relaxed(), err)
	}
	var busy, frames, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	if err := s.Sync(ctx); err != nil || relaxed() {
		t.Errorf("Sync: relaxed=%v (%v), want an fsynced commit", relaxed(), err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil || frames == 0 {
		t.Errorf("Sync wrote %d frames to the log (%v), want a page", frames, err)
	}
}
