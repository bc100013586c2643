package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Key lengths. The original's schema stores keys of up to 255 bytes; a
// database made by this store takes WideKeyBytes, and WidenKeys widens an
// existing one (the original tracker keeps working on it).
const (
	OriginalKeyBytes = 255
	WideKeyBytes     = 1024
)

// keyTables are the tables with a dkey column.
var keyTables = []string{"file", "tempfile"}

var sqliteDkeyRE = regexp.MustCompile(`(?i)\bdkey\s+(?:VARCHAR|VARBINARY|CHAR|BINARY)\s*\(\s*(\d+)\s*\)`)

// KeyLimit returns the longest key, in bytes, that every dkey column
// stores: their declared width (a MySQL column of N characters holds at
// least N bytes of key; SQLite holds what its schema declares, which this
// store honours as the limit).
func (s *Store) KeyLimit(ctx context.Context) (int, error) {
	limit := -1
	for _, t := range keyTables {
		n, err := s.dkeyWidth(ctx, t)
		if err != nil {
			return 0, err
		}
		if limit < 0 || n < limit {
			limit = n
		}
	}
	return limit, nil
}

// dkeyWidth returns the declared width of table's dkey column.
func (s *Store) dkeyWidth(ctx context.Context, table string) (int, error) {
	if s.kind == MySQL {
		var n sql.NullInt64
		err := s.db.QueryRowContext(ctx, `SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'dkey'`, table).Scan(&n)
		if err != nil || !n.Valid {
			return 0, wrap("key limit of "+table, err)
		}
		return int(n.Int64), nil
	}
	var ddl string
	if err := s.db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
		return 0, wrap("key limit of "+table, err)
	}
	m := sqliteDkeyRE.FindStringSubmatch(ddl)
	if m == nil {
		return OriginalKeyBytes, nil // undeclared: as the original
	}
	return strconv.Atoi(m[1])
}

// WidenKeys widens the dkey columns to WideKeyBytes where they are
// narrower, keeping their unique index, and returns the limit before and
// after. It is idempotent. On MySQL it is an ALTER TABLE of file and
// tempfile (the table is rebuilt: minutes on a large one); on SQLite,
// which does not enforce declared widths, only the declared type changes.
func (s *Store) WidenKeys(ctx context.Context) (before, after int, err error) {
	before, err = s.KeyLimit(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range keyTables {
		n, err := s.dkeyWidth(ctx, t)
		if err != nil {
			return before, 0, err
		}
		if n >= WideKeyBytes {
			continue
		}
		if err := s.widen(ctx, t); err != nil {
			return before, 0, err
		}
	}
	after, err = s.KeyLimit(ctx)
	return before, after, err
}

func (s *Store) widen(ctx context.Context, table string) error {
	if s.kind == MySQL {
		var typ string
		if err := s.db.QueryRowContext(ctx, `SELECT DATA_TYPE FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'dkey'`, table).Scan(&typ); err != nil {
			return wrap("widen keys of "+table, err)
		}
		// The column keeps its type (VARBINARY, or the original's VARCHAR
		// with its character set and collation); only the width grows.
		colType := "VARBINARY"
		if strings.EqualFold(typ, "varchar") {
			colType = "VARCHAR"
		}
		_, err := s.db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s MODIFY dkey %s(%d)", table, colType, WideKeyBytes))
		return wrap("widen keys of "+table, err)
	}
	// SQLite stores any length; the declared width is what this store
	// reads as the limit, so the declaration is rewritten in place (the
	// on-disk format does not depend on it).
	return s.tx(ctx, "widen keys of "+table, func(tx *sql.Tx) error {
		var ddl string
		if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
			return err
		}
		loc := sqliteDkeyRE.FindStringSubmatchIndex(ddl)
		if loc == nil {
			return fmt.Errorf("no dkey column with a width in %q", ddl)
		}
		wide := ddl[:loc[2]] + strconv.Itoa(WideKeyBytes) + ddl[loc[3]:]
		var version int
		if err := tx.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
			return err
		}
		for _, q := range []string{`PRAGMA writable_schema = ON`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?`, wide, table); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA schema_version = %d`, version+1)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `PRAGMA writable_schema = OFF`)
		return err
	})
}
