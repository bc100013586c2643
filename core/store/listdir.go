package store

import (
	"context"
	"database/sql"
	"strings"
)

// DirEntry is one entry of a directory-style listing: a key directly
// under the prefix, or a sub-prefix ending in the delimiter.
type DirEntry struct {
	Name  string // the full key, or the full sub-prefix ("a/b/")
	IsDir bool
	// For keys: the file and its metadata. For a sub-prefix whose first
	// key is the sub-prefix itself (a directory's marker, "a/b/"), the
	// marker's, and Marker is true.
	FID    int64
	Length int64
	Meta   map[string]string
	Marker bool
}

// ListDir lists the entries directly below prefix in a domain, S3-style:
// keys with no further delim after the prefix, and each deeper sub-prefix
// once (its subtree is skipped in the index, not read). Entries come in
// key order after after; at most limit are returned, and more is true
// when the listing may go on past them.
func (s *Store) ListDir(ctx context.Context, dmid int, prefix, delim, after string, limit int) (out []DirEntry, more bool, err error) {
	end := prefixEnd(prefix)
	cursor := after
	for len(out) < limit {
		batch := limit - len(out) + 1
		q := `SELECT fid, dkey, length FROM file WHERE dmid=? AND dkey > ?`
		args := []any{dmid, cursor}
		if cursor < prefix {
			q = `SELECT fid, dkey, length FROM file WHERE dmid=? AND dkey >= ?`
			args = []any{dmid, prefix}
		}
		if prefix != "" && end != "" {
			q += ` AND dkey < ?`
			args = append(args, end)
		}
		q += ` ORDER BY dkey LIMIT ?`
		args = append(args, batch)
		rows, err := s.query(ctx, q, args...)
		if err != nil {
			return nil, false, wrap("list dir", err)
		}
		n := 0
		skipTo := ""
		for rows.Next() {
			var e DirEntry
			var length sql.NullInt64
			if err := rows.Scan(&e.FID, &e.Name, &length); err != nil {
				rows.Close()
				return nil, false, wrap("list dir", err)
			}
			n++
			cursor = e.Name
			if !strings.HasPrefix(e.Name, prefix) {
				continue
			}
			rest := e.Name[len(prefix):]
			if i := strings.Index(rest, delim); delim != "" && i >= 0 {
				sub := prefix + rest[:i+len(delim)]
				if len(out) == limit {
					more = true
					break
				}
				d := DirEntry{Name: sub, IsDir: true}
				if e.Name == sub {
					d.FID, d.Length, d.Marker = e.FID, nullInt(length, 0), true
				}
				out = append(out, d)
				// Skip the rest of this subtree with a fresh query.
				skipTo = sub + strings.Repeat("\xff", max(1, 256-len(sub)))
				break
			}
			if len(out) == limit {
				more = true
				break
			}
			e.Length = nullInt(length, 0)
			out = append(out, e)
		}
		rerr := rows.Err()
		rows.Close()
		if rerr != nil {
			return nil, false, wrap("list dir", rerr)
		}
		if more {
			break
		}
		if skipTo != "" {
			cursor = skipTo
			continue
		}
		if n < batch {
			break
		}
	}
	if len(out) == limit {
		more = true
	}
	if err := s.fillMeta(ctx, out); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// fillMeta loads the metadata of the file entries and of the markers.
func (s *Store) fillMeta(ctx context.Context, es []DirEntry) error {
	var fids []any
	idx := map[int64]int{}
	for i, e := range es {
		if !e.IsDir || e.Marker {
			fids = append(fids, e.FID)
			idx[e.FID] = i
		}
	}
	if len(fids) == 0 || s.noMeta {
		return nil
	}
	for len(fids) > 0 {
		n := min(len(fids), metaBatchMax)
		if err := s.fillMetaOf(ctx, es, idx, fids[:n]); err != nil {
			return err
		}
		fids = fids[n:]
	}
	return nil
}

// metaBatchMax is the most fids one query of fillMetaOf asks for.
const metaBatchMax = 1024

// fillMetaOf loads the metadata of the entries of fids (at most
// metaBatchMax). The list is padded to a power of two with its last fid,
// so that a few statements, each prepared once, serve every listing:
// parsing a new statement for each listing was a third of its cost.
func (s *Store) fillMetaOf(ctx context.Context, es []DirEntry, idx map[int64]int, fids []any) error {
	n := 1
	for n < len(fids) {
		n *= 2
	}
	fids = fids[:len(fids):len(fids)] // the padding goes to a copy
	for len(fids) < n {
		fids = append(fids, fids[len(fids)-1])
	}
	q := `SELECT fid, name, value FROM file_meta WHERE fid IN (?` + strings.Repeat(",?", n-1) + `)`
	rows, err := s.query(ctx, q, fids...)
	if err != nil {
		return wrap("list dir meta", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fid int64
		var k string
		var v sql.NullString
		if err := rows.Scan(&fid, &k, &v); err != nil {
			return wrap("list dir meta", err)
		}
		e := &es[idx[fid]]
		if e.Meta == nil {
			e.Meta = map[string]string{}
		}
		e.Meta[k] = nullStr(v)
	}
	return wrap("list dir meta", rows.Err())
}
