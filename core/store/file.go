package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Tempfile is an open upload: a reserved fid and the devices it may be
// written to.
type Tempfile struct {
	FID        int64
	DomainID   int
	Key        string
	ClassID    int
	Devids     []int
	CreateTime int64
}

func joinInts(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// ParseDevids parses a tempfile.devids list ("1,2,3"); bad items are skipped.
func ParseDevids(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// ExplicitFIDHeadroom is how far above the highest fid the database has
// allocated a client may choose a fid: an explicit fid moves the counter
// up to it, so without a bound one request could push it to the end of
// the fid space and stop every later upload.
const ExplicitFIDHeadroom = 1_000_000

// ErrFIDRange: an explicit fid too far above the ones allocated so far.
var ErrFIDRange = core.Errorf(core.Invalid, "store: explicit fid too far above the highest allocated")

// fidRefs are the tables that still reference a fid after its file row
// is gone (queued deletion, copies not yet removed, checks).
var fidRefs = []string{"file", "tempfile", "file_on", "file_on_corrupt", "file_to_delete", "file_to_delete2",
	"file_to_delete_later", "file_to_replicate", "file_to_queue", "unreachable_fids", "checksum"}

// RegisterTempfile reserves a fid for an upload. With t.FID == 0 the
// database picks the next fid, never one at or below minFID (the highest
// fid that existed when the tracker started: InnoDB may reset its
// counter). An explicit fid must lie above every fid allocated so far
// (a fid is never used twice: its old copies, queued deletions and
// readers' caches would meet the new file) and at most
// ExplicitFIDHeadroom above them: ErrExists for one already used,
// ErrFIDRange for one too far.
func (s *Store) RegisterTempfile(ctx context.Context, t Tempfile, minFID int64) (int64, error) {
	if t.FID != 0 {
		high, err := s.fidHighWater(ctx, minFID)
		if err != nil {
			return 0, wrap("register tempfile", err)
		}
		if t.FID <= high {
			return 0, ErrExists
		}
		if t.FID-high > ExplicitFIDHeadroom {
			return 0, fmt.Errorf("%w: fid %d, highest allocated %d, headroom %d", ErrFIDRange, t.FID, high, ExplicitFIDHeadroom)
		}
		q := make([]string, len(fidRefs))
		args := make([]any, len(fidRefs))
		for i, tbl := range fidRefs {
			q[i] = `SELECT 1 FROM ` + tbl + ` WHERE fid=?`
			args[i] = t.FID
		}
		rows, err := s.db.QueryContext(ctx, strings.Join(q, " UNION ALL ")+` LIMIT 1`, args...)
		if err != nil {
			return 0, wrap("register tempfile", err)
		}
		used := rows.Next()
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, wrap("register tempfile", err)
		}
		if used {
			return 0, ErrExists
		}
		_, err = s.db.ExecContext(ctx, `INSERT INTO tempfile (fid, createtime, classid, dmid, dkey, devids) VALUES (?, `+s.now+`, ?, ?, ?, ?)`,
			t.FID, t.ClassID, t.DomainID, t.Key, joinInts(t.Devids))
		if isDup(err) {
			return 0, ErrExists
		}
		return t.FID, wrap("register tempfile", err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		fid, err := s.insertTempfile(ctx, t)
		if err != nil {
			return 0, wrap("register tempfile", err)
		}
		if fid > minFID {
			return fid, nil
		}
		// The counter went backwards: drop the row and re-seed past the
		// highest fid ever used.
		s.log.Warn("store: fid counter below the highest known fid; re-seeding", "fid", fid, "min_fid", minFID)
		if _, err := s.db.ExecContext(ctx, `DELETE FROM tempfile WHERE fid=?`, fid); err != nil {
			return 0, wrap("register tempfile", err)
		}
		if s.kind == MySQL {
			if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE tempfile AUTO_INCREMENT = %d`, minFID+1)); err != nil {
				return 0, wrap("register tempfile", err)
			}
		} else if _, err := s.db.ExecContext(ctx, `UPDATE sqlite_sequence SET seq=? WHERE name='tempfile'`, minFID); err != nil {
			return 0, wrap("register tempfile", err)
		}
	}
	return 0, fmt.Errorf("store: register tempfile: could not allocate a fid above %d", minFID)
}

// insertTempfile adds an upload's row and returns its new fid. An open
// upload is not worth an fsync: if it is lost, so is only an upload that
// was never acknowledged.
func (s *Store) insertTempfile(ctx context.Context, t Tempfile) (int64, error) {
	r, err := s.writeOne(ctx, "register tempfile", true, `INSERT INTO tempfile (createtime, classid, dmid, dkey, devids) VALUES (`+s.now+`, ?, ?, ?, ?)`,
		t.ClassID, t.DomainID, t.Key, joinInts(t.Devids))
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

// TempfileByFID reads an open upload without claiming it.
func (s *Store) TempfileByFID(ctx context.Context, fid int64) (Tempfile, error) {
	var t Tempfile
	var key, devids sql.NullString
	err := s.queryRow(ctx, `SELECT fid, dmid, dkey, classid, devids, createtime FROM tempfile WHERE fid=?`, fid).
		Scan(&t.FID, &t.DomainID, &key, &t.ClassID, &devids, &t.CreateTime)
	if err == sql.ErrNoRows {
		return t, ErrNotFound
	}
	t.Key, t.Devids = nullStr(key), ParseDevids(nullStr(devids))
	return t, wrap("read tempfile", err)
}

const fileCols = `fid, dmid, dkey, length, classid, devcount`

func scanFile(sc interface{ Scan(...any) error }) (core.File, error) {
	var f core.File
	var key sql.NullString
	var length sql.NullInt64
	err := sc.Scan(&f.FID, &f.DomainID, &key, &length, &f.ClassID, &f.DevCount)
	if err == sql.ErrNoRows {
		return f, ErrNotFound
	}
	f.Key, f.Length = nullStr(key), nullInt(length, 0)
	return f, err
}

// FileByKey looks up the current fid of a key. ErrNotFound: no such key.
func (s *Store) FileByKey(ctx context.Context, dmid int, key string) (core.File, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, `SELECT `+fileCols+` FROM file WHERE dmid=? AND dkey=?`, dmid, key))
	return f, wrap("find key", err)
}

// FileByFID looks up a file by fid. ErrNotFound: no such fid.
func (s *Store) FileByFID(ctx context.Context, fid int64) (core.File, error) {
	f, err := scanFile(s.queryRow(ctx, `SELECT `+fileCols+` FROM file WHERE fid=?`, fid))
	return f, wrap("find fid", err)
}

// FileDevids returns the devices holding a copy of fid.
func (s *Store) FileDevids(ctx context.Context, fid int64) ([]int, error) {
	rows, err := s.query(ctx, `SELECT devid FROM file_on WHERE fid=? ORDER BY devid`, fid)
	if err != nil {
		return nil, wrap("file devices", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var d int
		if err := rows.Scan(&d); err != nil {
			return nil, wrap("file devices", err)
		}
		out = append(out, d)
	}
	return out, wrap("file devices", rows.Err())
}

// FilesDevids returns the devices holding a copy of each of fids (a fid
// with none is absent from the map), in one query.
func (s *Store) FilesDevids(ctx context.Context, fids []int64) (map[int64][]int, error) {
	out := map[int64][]int{}
	if len(fids) == 0 {
		return out, nil
	}
	in, args := fidList(fids)
	rows, err := s.db.QueryContext(ctx, `SELECT fid, devid FROM file_on WHERE fid IN (`+in+`) ORDER BY fid, devid`, args...)
	if err != nil {
		return nil, wrap("file devices", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fid int64
		var d int
		if err := rows.Scan(&fid, &d); err != nil {
			return nil, wrap("file devices", err)
		}
		out[fid] = append(out[fid], d)
	}
	return out, wrap("file devices", rows.Err())
}

// Commit is what create_close makes durable.
type Commit struct {
	FID      int64
	DomainID int
	Key      string
	Length   int64
	ClassID  int
	Devid    int
	// Copies are more devices holding the same bytes, written by the
	// client beside Devid's (and checked by the caller).
	Copies []int
	// HashType and Checksum are stored when HashType != HashNone.
	HashType int
	Checksum []byte
	// Meta is per-file metadata (name -> value), e.g. mtime and mode.
	Meta map[string]string
	// ClaimTempfile deletes the fid's tempfile row in the same
	// transaction; ErrNotFound when it is already gone (closed twice).
	ClaimTempfile bool
	// Satisfied says the copies on Devid and Copies already meet the
	// file's class: replication is not queued.
	Satisfied bool
}

// ErrFIDExists: the key already points at this very fid.
var ErrFIDExists = core.Errorf(core.Exists, "store: fid already committed under that key")

// CommitFile binds c.Key to c.FID: an older fid of the same key is
// unlinked and queued for deletion, the copy on c.Devid is recorded, and
// replication is queued. It returns the replaced fid, or 0.
func (s *Store) CommitFile(ctx context.Context, c Commit) (replaced int64, err error) {
	err = s.writeTx(ctx, "commit file", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		replaced, err = s.commitIn(ctx, tx, c)
		return err
	})
	if err != nil {
		return 0, err
	}
	return replaced, nil
}

// commitIn does CommitFile's work inside tx.
func (s *Store) commitIn(ctx context.Context, tx *sql.Tx, c Commit) (replaced int64, err error) {
	err = func() error {
		if c.ClaimTempfile {
			r, err := s.txExec(ctx, tx, `DELETE FROM tempfile WHERE fid=?`, c.FID)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return ErrNotFound
			}
		}
		// A locking read on MySQL: a plain one reads a snapshot that can
		// miss a concurrent commit of the same key, whose fid would then be
		// replaced without being queued for deletion.
		lock := ""
		if s.kind == MySQL {
			lock = " FOR UPDATE"
		}
		var old int64
		err := s.txQueryRow(ctx, tx, `SELECT fid FROM file WHERE dmid=? AND dkey=?`+lock, c.DomainID, c.Key).Scan(&old)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		case old == c.FID:
			return ErrFIDExists
		default:
			if err := s.unlinkFID(ctx, tx, old); err != nil {
				return err
			}
			replaced = old
		}
		for _, d := range append([]int{c.Devid}, c.Copies...) {
			if _, err := s.txExec(ctx, tx, s.ignore+` INTO file_on (fid, devid) VALUES (?, ?)`, c.FID, d); err != nil {
				return err
			}
		}
		if _, err := s.txExec(ctx, tx, `REPLACE INTO file (fid, dmid, dkey, length, classid, devcount) VALUES (?,?,?,?,?,?)`,
			c.FID, c.DomainID, c.Key, c.Length, c.ClassID, 1+len(c.Copies)); err != nil {
			return err
		}
		if c.HashType != core.HashNone && len(c.Checksum) > 0 {
			if _, err := s.txExec(ctx, tx, `REPLACE INTO checksum (fid, hashtype, checksum) VALUES (?,?,?)`, c.FID, c.HashType, c.Checksum); err != nil {
				return err
			}
		}
		if err := s.setMeta(ctx, tx, c.FID, c.Meta); err != nil {
			return err
		}
		if c.Satisfied {
			return nil
		}
		_, err = s.txExec(ctx, tx, s.ignore+` INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES (?, 0, ?, 0, 0)`, c.FID, c.Devid)
		return err
	}()
	return replaced, err
}

func (s *Store) setMeta(ctx context.Context, tx *sql.Tx, fid int64, meta map[string]string) error {
	if s.noMeta {
		return nil // no extension table: see HasMeta
	}
	for k, v := range meta {
		if _, err := s.txExec(ctx, tx, `REPLACE INTO file_meta (fid, name, value) VALUES (?, ?, ?)`, fid, k, v); err != nil {
			return err
		}
	}
	return nil
}

// SetFileMeta sets metadata of fid (other names are kept).
func (s *Store) SetFileMeta(ctx context.Context, fid int64, meta map[string]string, d Durability) error {
	return s.groupTx(ctx, "set file meta", bool(d), func(ctx context.Context, tx *sql.Tx) error { return s.setMeta(ctx, tx, fid, meta) })
}

// FileMeta returns the metadata of fid (empty when none).
func (s *Store) FileMeta(ctx context.Context, fid int64) (map[string]string, error) {
	if s.noMeta {
		return map[string]string{}, nil
	}
	rows, err := s.query(ctx, stmtFileMeta, fid)
	if err != nil {
		return nil, wrap("file meta", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrap("file meta", err)
		}
		out[k] = nullStr(v)
	}
	return out, wrap("file meta", rows.Err())
}

// unlinkFID removes a file row and queues its bytes for deletion.
func (s *Store) unlinkFID(ctx context.Context, tx *sql.Tx, fid int64) error {
	if _, err := s.txExec(ctx, tx, `DELETE FROM file WHERE fid=?`, fid); err != nil {
		return err
	}
	_, err := s.txExec(ctx, tx, s.ignore+` INTO file_to_delete2 (fid, nexttry, failcount) VALUES (?, `+s.now+`, 0)`, fid)
	return err
}

// AbandonUpload records that fid's bytes may be on devids and queues them
// for deletion (an aborted or rejected upload). With claim, the upload's
// tempfile row is deleted first, and nothing happens (ErrNotFound) when
// it is already gone: the upload was committed or abandoned by another
// call, and its bytes must stay.
func (s *Store) AbandonUpload(ctx context.Context, fid int64, devids []int, claim bool) error {
	return s.writeTx(ctx, "abandon upload", func(ctx context.Context, tx *sql.Tx) error {
		if claim {
			r, err := s.txExec(ctx, tx, `DELETE FROM tempfile WHERE fid=?`, fid)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return ErrNotFound
			}
		}
		for _, d := range devids {
			if _, err := s.txExec(ctx, tx, s.ignore+` INTO file_on (fid, devid) VALUES (?, ?)`, fid, d); err != nil {
				return err
			}
		}
		return s.unlinkFID(ctx, tx, fid)
	})
}

// DeleteKey unlinks a key and queues its bytes for deletion.
// ErrNotFound: no such key. Deferred, the bytes are still removed only
// after a durable commit: the delete job claims its work in one.
func (s *Store) DeleteKey(ctx context.Context, dmid int, key string, d Durability) (int64, error) {
	var fid int64
	err := s.groupTx(ctx, "delete key", bool(d), func(ctx context.Context, tx *sql.Tx) error {
		err := s.txQueryRow(ctx, tx, `SELECT fid FROM file WHERE dmid=? AND dkey=?`, dmid, key).Scan(&fid)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.unlinkFID(ctx, tx, fid)
	})
	return fid, err
}

// RenameKey renames a key within a domain. ErrNotFound: no such key;
// ErrExists: the target key exists.
func (s *Store) RenameKey(ctx context.Context, dmid int, from, to string, d Durability) error {
	r, err := s.writeOne(ctx, "rename", bool(d), `UPDATE file SET dkey=? WHERE dmid=? AND dkey=?`, to, dmid, from)
	if isDup(err) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetFileClass changes a file's class and queues it for replication.
func (s *Store) SetFileClass(ctx context.Context, fid int64, classid int) error {
	return s.tx(ctx, "update class", func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `UPDATE file SET classid=? WHERE fid=?`, classid, fid); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, s.ignore+` INTO file_to_replicate (fid, nexttry, failcount, flags) VALUES (?, `+s.now+`, 0, 0)`, fid)
		return err
	})
}

// prefixEnd returns the smallest string greater than every string with
// the given prefix, or "" when there is none.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// ListKeys returns up to limit keys of a domain that start with prefix
// and sort after after, in byte order.
func (s *Store) ListKeys(ctx context.Context, dmid int, prefix, after string, limit int) ([]string, error) {
	q := `SELECT dkey FROM file WHERE dmid=?`
	args := []any{dmid}
	lower := prefix
	if after > lower {
		q += ` AND dkey > ?`
		args = append(args, after)
	} else if prefix != "" {
		q += ` AND dkey >= ?`
		args = append(args, prefix)
	}
	if end := prefixEnd(prefix); prefix != "" && end != "" {
		q += ` AND dkey < ?`
		args = append(args, end)
	}
	q += ` ORDER BY dkey LIMIT ?`
	args = append(args, limit)
	rows, err := s.query(ctx, q, args...) // one of four statements, each prepared once
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, wrap("list keys", err)
		}
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, wrap("list keys", rows.Err())
}

// ListFids returns up to count files with fid > from, ascending.
func (s *Store) ListFids(ctx context.Context, from int64, count int) ([]core.File, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+fileCols+` FROM file WHERE fid > ? ORDER BY fid LIMIT ?`, from, count)
	if err != nil {
		return nil, wrap("list fids", err)
	}
	defer rows.Close()
	var out []core.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, wrap("list fids", err)
		}
		out = append(out, f)
	}
	return out, wrap("list fids", rows.Err())
}

// Checksum returns the stored checksum of fid. ErrNotFound: none stored.
func (s *Store) Checksum(ctx context.Context, fid int64) (hashType int, sum []byte, err error) {
	rows, err := s.query(ctx, stmtChecksum, fid)
	if err != nil {
		return 0, nil, wrap("read checksum", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, nil, wrap("read checksum", err)
		}
		return 0, nil, ErrNotFound
	}
	err = rows.Scan(&hashType, &sum)
	return hashType, sum, wrap("read checksum", err)
}

// fidHighWater is the highest fid the database has allocated: the fid
// counter, and the highest fids of files and open uploads (a MySQL
// counter read from information_schema may be cached and lag).
func (s *Store) fidHighWater(ctx context.Context, minFID int64) (int64, error) {
	var seq, files, temps sql.NullInt64
	var q string
	if s.kind == MySQL {
		q = `SELECT (SELECT AUTO_INCREMENT - 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tempfile'), (SELECT MAX(fid) FROM file), (SELECT MAX(fid) FROM tempfile)`
	} else {
		q = `SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'tempfile'), (SELECT MAX(fid) FROM file), (SELECT MAX(fid) FROM tempfile)`
	}
	if err := s.db.QueryRowContext(ctx, q).Scan(&seq, &files, &temps); err != nil {
		return 0, err
	}
	return max(minFID, nullInt(seq, 0), nullInt(files, 0), nullInt(temps, 0)), nil
}

// MaxFID returns the highest fid in the file table (0 when empty).
func (s *Store) MaxFID(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(fid) FROM file`).Scan(&n)
	return nullInt(n, 0), wrap("max fid", err)
}

// DebugRows returns the queue rows of fid for file_debug, keyed by the
// reply prefix ("replqueue", "delqueue", "rebqueue", "fsckqueue"), each a
// column->value map (NULL columns as "").
func (s *Store) DebugRows(ctx context.Context, fid int64) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	queries := []struct{ prefix, q string }{
		{"replqueue", `SELECT fid, nexttry, fromdevid, failcount, flags FROM file_to_replicate WHERE fid=?`},
		{"delqueue", `SELECT fid, nexttry, failcount FROM file_to_delete2 WHERE fid=?`},
		{"fsckqueue", `SELECT fid, devid, type, nexttry, failcount, flags, arg FROM file_to_queue WHERE fid=? AND type=1`},
		{"rebqueue", `SELECT fid, devid, type, nexttry, failcount, flags, arg FROM file_to_queue WHERE fid=? AND type=2`},
	}
	for _, dq := range queries {
		rows, err := s.db.QueryContext(ctx, dq.q, fid)
		if err != nil {
			return nil, wrap("file debug", err)
		}
		cols, _ := rows.Columns()
		if rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, wrap("file debug", err)
			}
			m := map[string]string{}
			for i, c := range cols {
				m[c] = nullStr(vals[i])
			}
			out[dq.prefix] = m
		}
		rows.Close()
	}
	return out, nil
}

// ReplicateNow makes every deferred replication due now; it returns how
// many rows it changed.
func (s *Store) ReplicateNow(ctx context.Context) (int64, error) {
	r, err := s.db.ExecContext(ctx, `UPDATE file_to_replicate SET nexttry=`+s.now+` WHERE nexttry > `+s.now)
	if err != nil {
		return 0, wrap("replicate now", err)
	}
	n, _ := r.RowsAffected()
	return n, nil
}

// FsckLogRow is one fsck_log event.
type FsckLogRow struct {
	LogID  int64
	UTime  int64
	FID    sql.NullInt64
	EvCode string
	Devid  sql.NullInt64
}

// FsckLog returns up to limit events with logid > after.
func (s *Store) FsckLog(ctx context.Context, after int64, limit int) ([]FsckLogRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT logid, utime, fid, evcode, devid FROM fsck_log WHERE logid > ? ORDER BY logid LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("fsck log", err)
	}
	defer rows.Close()
	var out []FsckLogRow
	for rows.Next() {
		var r FsckLogRow
		var ev sql.NullString
		if err := rows.Scan(&r.LogID, &r.UTime, &r.FID, &ev, &r.Devid); err != nil {
			return nil, wrap("fsck log", err)
		}
		r.EvCode = nullStr(ev)
		out = append(out, r)
	}
	return out, wrap("fsck log", rows.Err())
}

// MaxFsckLogID returns the highest fsck_log id (0 when empty).
func (s *Store) MaxFsckLogID(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(logid) FROM fsck_log`).Scan(&n)
	return nullInt(n, 0), wrap("fsck log", err)
}

// ClearFsckLog empties fsck_log.
func (s *Store) ClearFsckLog(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM fsck_log`)
	return wrap("clear fsck log", err)
}

// AddFsckLog appends an fsck event.
func (s *Store) AddFsckLog(ctx context.Context, fid int64, evcode string, devid int) error {
	var dev any
	if devid > 0 {
		dev = devid
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO fsck_log (utime, fid, evcode, devid) VALUES (`+s.now+`, ?, ?, ?)`, fid, evcode, dev)
	return wrap("add fsck log", err)
}

// FileAndMeta is FileAndDevids with the file's metadata (empty when
// none), in one round trip to the database.
func (s *Store) FileAndMeta(ctx context.Context, dmid int, key string) (core.File, []int, map[string]string, error) {
	if s.noMeta {
		f, devids, err := s.FileAndDevids(ctx, dmid, key)
		return f, devids, map[string]string{}, err
	}
	rows, err := s.query(ctx, stmtFileAndMeta, dmid, key, dmid, key)
	if err != nil {
		return core.File{}, nil, nil, wrap("find key", err)
	}
	defer rows.Close()
	f := core.File{DomainID: dmid, Key: key}
	var devids []int
	meta := map[string]string{}
	found := false
	for rows.Next() {
		var length, devid sql.NullInt64
		var name, value sql.NullString
		if err := rows.Scan(&f.FID, &length, &f.ClassID, &f.DevCount, &devid, &name, &value); err != nil {
			return core.File{}, nil, nil, wrap("find key", err)
		}
		found = true
		f.Length = nullInt(length, 0)
		switch {
		case devid.Valid:
			devids = append(devids, int(devid.Int64))
		case name.Valid:
			meta[name.String] = nullStr(value)
		}
	}
	if err := rows.Err(); err != nil {
		return core.File{}, nil, nil, wrap("find key", err)
	}
	if !found {
		return core.File{}, nil, nil, ErrNotFound
	}
	return f, devids, meta, nil
}

// FileAndDevids looks up a key and the devices holding its fid in one
// query (the read path). ErrNotFound: no such key.
func (s *Store) FileAndDevids(ctx context.Context, dmid int, key string) (core.File, []int, error) {
	rows, err := s.query(ctx, stmtFileAndDevids, dmid, key)
	if err != nil {
		return core.File{}, nil, wrap("find key", err)
	}
	defer rows.Close()
	f := core.File{DomainID: dmid, Key: key}
	var devids []int
	found := false
	for rows.Next() {
		var length sql.NullInt64
		var devid sql.NullInt64
		if err := rows.Scan(&f.FID, &length, &f.ClassID, &f.DevCount, &devid); err != nil {
			return core.File{}, nil, wrap("find key", err)
		}
		found = true
		f.Length = nullInt(length, 0)
		if devid.Valid {
			devids = append(devids, int(devid.Int64))
		}
	}
	if err := rows.Err(); err != nil {
		return core.File{}, nil, wrap("find key", err)
	}
	if !found {
		return core.File{}, nil, ErrNotFound
	}
	return f, devids, nil
}
