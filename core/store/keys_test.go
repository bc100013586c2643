package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// narrowKeys makes a store's dkey columns as the original's schema has
// them (255), for the widen step to find.
func narrowKeys(t *testing.T, s *store.Store) {
	t.Helper()
	for _, table := range []string{"file", "tempfile"} {
		var err error
		if s.Kind() == store.MySQL {
			_, err = s.DB().Exec("ALTER TABLE " + table + " MODIFY dkey VARCHAR(255)")
		} else {
			var ddl string
			if err = s.DB().QueryRow(`SELECT sql FROM sqlite_master WHERE name = ?`, table).Scan(&ddl); err == nil {
				err = rewriteSQLiteDDL(s, table, strings.Replace(ddl, "dkey VARCHAR(1024)", "dkey VARCHAR(255)", 1))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func rewriteSQLiteDDL(s *store.Store, table, ddl string) error {
	c, err := s.DB().Conn(context.Background())
	if err != nil {
		return err
	}
	defer c.Close()
	var v int
	for _, q := range []string{"PRAGMA writable_schema = ON"} {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			return err
		}
	}
	if _, err := c.ExecContext(context.Background(), `UPDATE sqlite_master SET sql = ? WHERE name = ?`, ddl, table); err != nil {
		return err
	}
	c.QueryRowContext(context.Background(), "PRAGMA schema_version").Scan(&v)
	_, err = c.ExecContext(context.Background(), "PRAGMA schema_version = "+strconv.Itoa(v+1))
	c.ExecContext(context.Background(), "PRAGMA writable_schema = OFF")
	return err
}

// A database made by this store takes keys of 1,024 bytes with the
// unique index enforced; one with the original's 255 keeps that limit
// until WidenKeys, which is idempotent.
func TestKeyLimitAndWiden(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if n, err := s.KeyLimit(ctx); err != nil || n != store.WideKeyBytes {
			t.Fatalf("KeyLimit of a new database = %d, %v", n, err)
		}
		dmid, err := s.CreateDomain(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("k", 1000)
		commit := func(fid int64, key string) error {
			if _, err := s.RegisterTempfile(ctx, store.Tempfile{FID: fid, DomainID: dmid, Key: key, Devids: []int{1}}, 0); err != nil {
				return err
			}
			_, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: dmid, Key: key, Length: 1, Devid: 1, ClaimTempfile: true})
			return err
		}
		if err := commit(10, long); err != nil {
			t.Fatalf("a 1,000-byte key: %v", err)
		}
		if f, err := s.FileByKey(ctx, dmid, long); err != nil || f.FID != 10 || f.Key != long {
			t.Errorf("FileByKey(long) = %+v, %v", f, err)
		}
		if _, err := s.FileByKey(ctx, dmid, long[:999]+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a key that differs in its last byte found: %v", err)
		}

		// The original's schema, with a file of a short key in it.
		if _, err := s.DB().Exec("DELETE FROM file"); err != nil {
			t.Fatal(err)
		}
		narrowKeys(t, s)
		if err := commit(12, "short"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.KeyLimit(ctx); err != nil || n != store.OriginalKeyBytes {
			t.Fatalf("KeyLimit of the original's schema = %d, %v", n, err)
		}
		for i := 0; i < 2; i++ {
			before, after, err := s.WidenKeys(ctx)
			want := store.OriginalKeyBytes
			if i == 1 {
				want = store.WideKeyBytes
			}
			if err != nil || before != want || after != store.WideKeyBytes {
				t.Fatalf("WidenKeys #%d = %d -> %d, %v", i+1, before, after, err)
			}
		}
		if err := commit(20, strings.Repeat("w", 1024)); err != nil {
			t.Fatalf("a 1,024-byte key after widening: %v", err)
		}
		if f, err := s.FileByKey(ctx, dmid, "short"); err != nil || f.FID != 12 {
			t.Errorf("the earlier file after widening = %+v, %v", f, err)
		}
		if err := commit(21, "short"); err != nil {
			t.Errorf("a new version of the key: %v", err)
		} else if f, _ := s.FileByKey(ctx, dmid, "short"); f.FID != 21 {
			t.Errorf("the key's new version = %+v", f)
		}
	})
}
