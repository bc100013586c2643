package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// BenchmarkCommitFile measures a small file's metadata work on SQLite
// without fsyncs: its tempfile row, a read of it, then the commit of two copies with two
// metadata entries, as the mount's create_close of a new file makes it.
func BenchmarkCommitFile(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "m.db"), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("dir/file%d", i)
		fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: key, Devids: []int{1, 2}}, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.TempfileByFID(ctx, fid); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: key, Length: 4096, Devid: 1, Copies: []int{2},
			Meta: map[string]string{"mtime": "1765000000", "mode": "644"}, ClaimTempfile: true, Satisfied: true}); err != nil {
			b.Fatal(err)
		}
	}
}
