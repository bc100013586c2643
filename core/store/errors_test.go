package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// The database's own errors are classified by their codes, not their
// texts: a unique violation is a duplicate, a locked database is worth a
// retry, and what reaches the tracker carries a kind.
func TestSQLiteErrorsClassified(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	if _, err := db.Exec(`CREATE TABLE a (x INTEGER PRIMARY KEY, y TEXT UNIQUE, z TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO a VALUES (1, 'a', 'z')`); err != nil {
		t.Fatal(err)
	}
	_, pk := db.Exec(`INSERT INTO a VALUES (1, 'b', 'z')`)
	_, uniq := db.Exec(`INSERT INTO a VALUES (2, 'a', 'z')`)
	_, notNull := db.Exec(`INSERT INTO a VALUES (3, 'c', NULL)`)
	if !isDup(pk) || !isDup(uniq) {
		t.Errorf("isDup(primary key) = %v, isDup(unique) = %v; want both", isDup(pk), isDup(uniq))
	}
	if isDup(notNull) || notNull == nil {
		t.Errorf("a NOT NULL violation (%v) counts as a duplicate", notNull)
	}

	// One connection holds the write lock; the other's write is busy.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO a VALUES (4, 'd', 'z')`); err != nil {
		t.Fatal(err)
	}
	_, busy := db.Exec(`INSERT INTO a VALUES (5, 'e', 'z')`)
	if busy == nil || !isRetryable(busy) {
		t.Errorf("isRetryable(%v) = false; want true", busy)
	}
	if isRetryable(uniq) {
		t.Errorf("isRetryable(%v) = true", uniq)
	}

	for _, c := range []struct {
		err  error
		want core.Kind
	}{
		{wrap("op", busy), core.Database},
		{wrap("op", sql.ErrNoRows), core.Database},
		{wrap("op", ErrNotFound), core.NotFound},
		{wrap("op", ErrDuplicate), core.Exists},
		{wrap("op", context.DeadlineExceeded), core.Timeout},
		{wrap("op", context.Canceled), core.Other},
	} {
		if got := core.KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v; want %v", c.err, got, c.want)
		}
	}
	if err := wrap("op", ErrNotFound); !errors.Is(err, ErrNotFound) {
		t.Errorf("wrap(ErrNotFound) = %v; want it kept", err)
	}
}
