package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// BenchmarkCommitFile measures a small file's metadata work on SQLite
// without fsyncs: its tempfile row, a read of it, then the commit of two copies with two
// metadata entries, as the mount's create_close of a new file makes it.
func BenchmarkCommitFile(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, true)
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

// commitFiles commits n small files named dir/fileI and returns them.
func commitFiles(b *testing.B, s *store.Store, n int) []string {
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("dir/file%d", i)
		fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: keys[i], Devids: []int{1, 2}}, 0)
		if err == nil {
			_, err = s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: keys[i], Length: 4096, Devid: 1, Copies: []int{2}, ClaimTempfile: true, Satisfied: true})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// openBench opens a store for a benchmark on SQLite, fsyncing its
// commits or not.
func openBench(b *testing.B, noSync bool) *store.Store {
	s, err := store.Open(context.Background(), store.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "m.db"), NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchFiles commits the b.N files a benchmark works on, then starts its
// timer.
func benchFiles(b *testing.B, s *store.Store) []string {
	keys := commitFiles(b, s, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	return keys
}

// BenchmarkDeleteKey measures an unlink's metadata work (rm -r) with a
// lookup of the next name before each, as the mount makes them.
func BenchmarkDeleteKey(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, true)
	for _, k := range benchFiles(b, s) {
		if _, err := s.FileByKey(ctx, 1, k); err != nil {
			b.Fatal(err)
		}
		if _, err := s.DeleteKey(ctx, 1, k, store.Durable); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenameAndMeta measures what rsync adds to a small file after
// its commit: a rename onto the final name and two metadata changes.
func BenchmarkRenameAndMeta(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, true)
	for i, k := range benchFiles(b, s) {
		to := fmt.Sprintf("dir/renamed%d", i)
		if err := s.RenameKey(ctx, 1, k, to, store.Durable); err != nil {
			b.Fatal(err)
		}
		f, err := s.FileByKey(ctx, 1, to)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetFileMeta(ctx, f.FID, map[string]string{"mtime": "1765000000"}, store.Durable); err != nil {
			b.Fatal(err)
		}
		if err := s.SetFileMeta(ctx, f.FID, map[string]string{"mode": "644"}, store.Durable); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeleteKeyParallel is BenchmarkDeleteKey from 8 clients at
// once, with fsynced commits (the default).
func BenchmarkDeleteKeyParallel(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, false)
	next := make(chan string, b.N)
	for _, k := range benchFiles(b, s) {
		next <- k
	}
	close(next)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range next {
				if _, err := s.DeleteKey(ctx, 1, k, store.Durable); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkListDirSmall lists small directories (five files with their
// metadata, and a subdirectory), as a walk of a source tree (git add,
// rm -rf) makes one listing per directory.
func BenchmarkListDirSmall(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, true)
	const dirs = 200
	for d := range dirs {
		for _, name := range []string{"a", "b", "c", "d", "e", "sub/x"} {
			key := fmt.Sprintf("src/d%03d/%s", d, name)
			fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: key, Devids: []int{1}}, 0)
			if err == nil {
				_, err = s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: key, Length: 4096, Devid: 1, ClaimTempfile: true, Satisfied: true,
					Meta: map[string]string{"mtime": "1765000000000000000", "mode": "420"}})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		es, _, err := s.ListDir(ctx, 1, fmt.Sprintf("src/d%03d/", i%dirs), "/", "", 1000)
		if err != nil || len(es) != 6 || es[0].Meta["mode"] != "420" {
			b.Fatalf("%d entries, %v, %+v", len(es), err, es)
		}
	}
}
