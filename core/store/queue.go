package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Queue is one of the work queues the tracker's background jobs consume.
type Queue uint8

// The work queues.
const (
	ReplicateQueue Queue = iota + 1 // file_to_replicate
	DeleteQueue                     // file_to_delete2
	FsckQueue                       // file_to_queue rows of type 1
	RebalanceQueue                  // file_to_queue rows of type 2
	// StrayQueue holds copies written to a device but not recorded
	// (file_to_queue rows of type 3, a mogilefs-go addition the original
	// leaves alone): devid is the device, failcount the looks that found
	// nothing to remove.
	StrayQueue
)

// queueTables are the table and row filter of each queue: fixed SQL text,
// never built from a value that comes from outside.
var queueTables = map[Queue]struct{ name, table, where string }{
	ReplicateQueue: {"replicate", "file_to_replicate", "1=1"},
	DeleteQueue:    {"delete", "file_to_delete2", "1=1"},
	FsckQueue:      {"fsck", "file_to_queue", "type=1"},
	RebalanceQueue: {"rebalance", "file_to_queue", "type=2"},
	StrayQueue:     {"stray", "file_to_queue", "type=3"},
}

// String names the queue for logs.
func (q Queue) String() string {
	if t, ok := queueTables[q]; ok {
		return t.name
	}
	return fmt.Sprintf("queue(%d)", uint8(q))
}

// table returns the queue's table and row filter; a Queue that is not
// one of the constants is a programming error.
func (q Queue) table() (table, where string) {
	t, ok := queueTables[q]
	if !ok {
		panic(fmt.Sprintf("store: unknown queue %d", uint8(q)))
	}
	return t.table, t.where
}

// NeverRetry is the nexttry of a queue row that needs an operator.
const NeverRetry = 2147483647

// QueueItem is one claimed row of a work queue.
type QueueItem struct {
	FID       int64
	FromDevid int // replication: fromdevid; rebalance: the source device; 0 when unset
	FailCount int
	Arg       string // rebalance: destination devids
}

// ClaimQueue takes up to limit due rows of q (nexttry <= now) and leases
// them for lease seconds by pushing their nexttry into the future, so that
// no other tracker works them at the same time. Whoever finishes a row
// deletes or reschedules it; a tracker that dies leaves its rows to come
// due again when the lease runs out.
func (s *Store) ClaimQueue(ctx context.Context, q Queue, limit int, lease int) ([]QueueItem, error) {
	var out []QueueItem
	cols := "fid, failcount, 0, ''"
	switch q {
	case ReplicateQueue:
		cols = "fid, failcount, COALESCE(fromdevid, 0), ''"
	case FsckQueue, RebalanceQueue, StrayQueue:
		cols = "fid, failcount, COALESCE(devid, 0), COALESCE(arg, '')"
	}
	table, where := q.table()
	forUpdate := ""
	if s.kind == MySQL {
		// SKIP LOCKED lets trackers claim different rows at once; servers
		// older than MySQL 8.0 / MariaDB 10.6 lack it and queue up instead.
		forUpdate = " FOR UPDATE SKIP LOCKED"
		if s.noSkipLocked.Load() {
			forUpdate = " FOR UPDATE"
		}
	}
	// Most polls find nothing due: a read says so without taking the
	// write lock (and on SQLite, blocking uploads) for an empty transaction.
	var due int
	err := s.queryRow(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 FROM %s WHERE %s AND nexttry <= %s LIMIT 1) AS due`, table, where, s.now)).Scan(&due)
	if err == nil && due == 0 {
		return nil, nil
	}
	err = s.txWith(ctx, "claim "+q.String(), func(tx *sql.Tx) error {
		out = out[:0]
		query := func() (*sql.Rows, error) {
			return s.txQuery(ctx, tx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s AND nexttry <= %s ORDER BY nexttry LIMIT ?%s`, cols, table, where, s.now, forUpdate), limit)
		}
		rows, err := query()
		if isSyntaxError(err) && strings.HasSuffix(forUpdate, "SKIP LOCKED") {
			s.noSkipLocked.Store(true)
			forUpdate = " FOR UPDATE"
			rows, err = query()
		}
		if err != nil {
			return err
		}
		for rows.Next() {
			var it QueueItem
			if err := rows.Scan(&it.FID, &it.FailCount, &it.FromDevid, &it.Arg); err != nil {
				rows.Close()
				return err
			}
			out = append(out, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range out {
			if _, err := s.txExec(ctx, tx, fmt.Sprintf(`UPDATE %s SET nexttry = %s + ? WHERE %s AND fid = ?`, table, s.now, where), lease, it.FID); err != nil {
				return err
			}
		}
		return nil
	}, true)
	return out, err
}

// DoneQueue removes a finished row.
func (s *Store) DoneQueue(ctx context.Context, q Queue, fid int64) error {
	_, err := s.writeOne(ctx, "finish "+q.String(), false, q.doneSQL(), fid)
	return err
}

// RetryQueue reschedules a row delay seconds from now with the given
// failure count (delay < 0: never, until an operator acts).
func (s *Store) RetryQueue(ctx context.Context, q Queue, fid int64, delay int64, failcount int) error {
	unlock := s.lockWrites()
	defer unlock()
	// Not prepared: the delay is part of the statement.
	_, err := s.db.ExecContext(ctx, s.retrySQL(q, delay), min(failcount, 255), fid)
	return wrap("retry "+q.String(), err)
}

// doneSQL removes the row of a fid (the one argument) from q.
func (q Queue) doneSQL() string {
	table, where := q.table()
	return fmt.Sprintf(`DELETE FROM %s WHERE %s AND fid=?`, table, where)
}

// retrySQL sets the failure count and fid (its arguments) of a row of q
// due again in delay seconds (delay < 0: never).
func (s *Store) retrySQL(q Queue, delay int64) string {
	next := fmt.Sprintf("%s + %d", s.now, delay)
	if delay < 0 {
		next = fmt.Sprint(NeverRetry)
	}
	table, where := q.table()
	return fmt.Sprintf(`UPDATE %s SET nexttry = %s, failcount = ? WHERE %s AND fid = ?`, table, next, where)
}

// EnqueueReplication queues fid for replication in delay seconds (no-op
// when it is already queued; an earlier nexttry is kept).
func (s *Store) EnqueueReplication(ctx context.Context, fid int64, fromDevid int, delay int64) error {
	var from any
	if fromDevid > 0 {
		from = fromDevid
	}
	_, err := s.exec(ctx, s.db, fmt.Sprintf(`%s INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES (?, %s + ?, ?, 0, 0)`, s.ignore, s.now), fid, delay, from)
	return wrap("enqueue replication", err)
}

// QueueLength counts the rows of q (due now or later).
func (s *Store) QueueLength(ctx context.Context, q Queue) (int64, error) {
	var n int64
	table, where := q.table()
	err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE %s`, table, where)).Scan(&n)
	return n, wrap("queue length", err)
}

// AddCopy records a copy of fid on devid and refreshes devcount;
// ErrNotFound if fid is no longer a file.
func (s *Store) AddCopy(ctx context.Context, fid int64, devid int) error {
	return s.writeTx(ctx, "add copy", func(ctx context.Context, tx *sql.Tx) error {
		return s.addCopyIn(ctx, tx, fid, devid)
	})
}

// addCopyIn records a copy of fid on devid inside tx, if fid is still a
// file: ErrNotFound if it was deleted meanwhile. The delete job may already
// have removed the fid's copies and would never learn of this one. The file
// row is read with a lock on MySQL so that a concurrent delete waits for
// this transaction (and then sees the copy) or is seen by it.
func (s *Store) addCopyIn(ctx context.Context, tx *sql.Tx, fid int64, devid int) error {
	lock := ""
	if s.kind == MySQL {
		lock = " FOR UPDATE"
	}
	var one int
	err := s.txQueryRow(ctx, tx, `SELECT 1 FROM file WHERE fid=?`+lock, fid).Scan(&one)
	if err == sql.ErrNoRows {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if _, err := s.txExec(ctx, tx, s.ignore+` INTO file_on (fid, devid) VALUES (?, ?)`, fid, devid); err != nil {
		return err
	}
	return s.refreshDevcount(ctx, tx, fid)
}

// RemoveCopy forgets the copy of fid on devid and refreshes devcount.
func (s *Store) RemoveCopy(ctx context.Context, fid int64, devid int) error {
	return s.writeTx(ctx, "remove copy", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `DELETE FROM file_on WHERE fid=? AND devid=?`, fid, devid); err != nil {
			return err
		}
		return s.refreshDevcount(ctx, tx, fid)
	})
}

func (s *Store) refreshDevcount(ctx context.Context, tx *sql.Tx, fid int64) error {
	_, err := s.txExec(ctx, tx, `UPDATE file SET devcount = (SELECT COUNT(*) FROM file_on WHERE fid=?) WHERE fid=?`, fid, fid)
	return err
}

// DeleteDone is the delete job's work on one deleted fid: the devices
// its copies were removed from and, when some copies are left (RetryIn >
// 0), when to try again and the failures so far.
type DeleteDone struct {
	FID       int64
	Removed   []int
	RetryIn   int64
	FailCount int
}

// FinishDeletes records the delete job's work on deleted fids in one
// transaction, not fsynced (lost, the work is done again). A fid with no
// copy left is forgotten whole: its copies, checksum, metadata, tempfile
// row and queue row, in one statement per table for all such fids. A fid
// with copies left forgets those removed and is due again in RetryIn
// seconds with FailCount failures.
func (s *Store) FinishDeletes(ctx context.Context, done []DeleteDone) error {
	var whole []int64
	for _, d := range done {
		if d.RetryIn <= 0 {
			whole = append(whole, d.FID)
		}
	}
	queue, where := DeleteQueue.table()
	return s.lazyTx(ctx, "finish delete", func(ctx context.Context, tx *sql.Tx) error {
		if len(whole) > 0 {
			in, args := fidList(whole)
			for _, q := range []string{
				`DELETE FROM checksum WHERE fid IN (` + in + `)`,
				`DELETE FROM file_meta WHERE fid IN (` + in + `)`,
				`DELETE FROM tempfile WHERE fid IN (` + in + `)`,
				`DELETE FROM file_on WHERE fid IN (` + in + `)`,
				`DELETE FROM ` + queue + ` WHERE ` + where + ` AND fid IN (` + in + `)`,
			} {
				if s.noMeta && strings.Contains(q, "file_meta") {
					continue
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
		}
		for _, d := range done {
			if d.RetryIn <= 0 {
				continue
			}
			for _, dev := range d.Removed {
				if _, err := s.txExec(ctx, tx, `DELETE FROM file_on WHERE fid=? AND devid=?`, d.FID, dev); err != nil {
					return err
				}
			}
			// Not txExec: the delay is in the statement's text.
			if _, err := tx.ExecContext(ctx, s.retrySQL(DeleteQueue, d.RetryIn), min(d.FailCount, 255), d.FID); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetChecksum stores fid's checksum.
func (s *Store) SetChecksum(ctx context.Context, fid int64, hashType int, sum []byte) error {
	_, err := s.exec(ctx, s.db, `REPLACE INTO checksum (fid, hashtype, checksum) VALUES (?,?,?)`, fid, hashType, sum)
	return wrap("set checksum", err)
}

// StaleTempfiles returns up to limit open uploads older than age seconds.
func (s *Store) StaleTempfiles(ctx context.Context, age int64, limit int) ([]Tempfile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT fid, dmid, dkey, classid, devids, createtime FROM tempfile WHERE createtime < `+s.now+` - ? ORDER BY fid LIMIT ?`, age, limit)
	if err != nil {
		return nil, wrap("stale tempfiles", err)
	}
	defer rows.Close()
	var out []Tempfile
	for rows.Next() {
		var t Tempfile
		var key, devids sql.NullString
		if err := rows.Scan(&t.FID, &t.DomainID, &key, &t.ClassID, &devids, &t.CreateTime); err != nil {
			return nil, wrap("stale tempfiles", err)
		}
		t.Key, t.Devids = nullStr(key), ParseDevids(nullStr(devids))
		out = append(out, t)
	}
	return out, wrap("stale tempfiles", rows.Err())
}

// ReapTempfile turns a stale upload into a deletion: its possible copies
// are recorded and queued for deletion, and the tempfile row goes. A fid
// that was committed meanwhile only loses its tempfile row.
func (s *Store) ReapTempfile(ctx context.Context, t Tempfile) error {
	return s.tx(ctx, "reap tempfile", func(tx *sql.Tx) error {
		r, err := s.txExec(ctx, tx, `DELETE FROM tempfile WHERE fid=?`, t.FID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil // someone else reaped or closed it
		}
		var x int
		err = s.txQueryRow(ctx, tx, `SELECT 1 FROM file WHERE fid=?`, t.FID).Scan(&x)
		if err == nil {
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		for _, d := range t.Devids {
			if _, err := s.txExec(ctx, tx, s.ignore+` INTO file_on (fid, devid) VALUES (?, ?)`, t.FID, d); err != nil {
				return err
			}
		}
		_, err = s.txExec(ctx, tx, s.ignore+` INTO file_to_delete2 (fid, nexttry, failcount) VALUES (?, `+s.now+`, 0)`, t.FID)
		return err
	})
}

// FIDsOnDevice returns up to limit fids with a copy on devid.
func (s *Store) FIDsOnDevice(ctx context.Context, devid int, after int64, limit int) ([]int64, error) {
	return s.queryFIDs(ctx, "fids on device", `SELECT fid FROM file_on WHERE devid=? AND fid > ? ORDER BY fid LIMIT ?`, devid, after, limit)
}

// MoveToReplication queues fids for replication and forgets their
// copies on a dead device, in one transaction (a dead disk holds
// millions: one commit per file queued a few hundred a second).
func (s *Store) MoveToReplication(ctx context.Context, fids []int64, deadDevid int) error {
	if len(fids) == 0 {
		return nil
	}
	// Three statements for the whole batch: one per file was a round trip
	// each on MySQL (about 1,000 files a second, hours for a big disk).
	list, args := fidList(fids)
	rows := strings.Repeat(fmt.Sprintf("(?, %s + 1, NULL, 0, 0), ", s.now), len(fids)-1) + fmt.Sprintf("(?, %s + 1, NULL, 0, 0)", s.now)
	return s.writeTx(ctx, "requeue a dead device's files", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.ignore+` INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES `+rows, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM file_on WHERE devid = ? AND fid IN (`+list+`)`, append([]any{deadDevid}, args...)...); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE file SET devcount = (SELECT COUNT(*) FROM file_on WHERE file_on.fid = file.fid) WHERE fid IN (`+list+`)`, args...)
		return err
	})
}

func isSyntaxError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1064
}

// EnqueueChecks queues fids on the fsck queue (type 1), or on the
// rebalance queue (type 2) with the source device and destinations.
func (s *Store) EnqueueChecks(ctx context.Context, q Queue, fids []int64, devid int, arg string) error {
	typ := 1
	if q == RebalanceQueue {
		typ = 2
	}
	var dev any
	if devid > 0 {
		dev = devid
	}
	return s.tx(ctx, "enqueue "+q.String(), func(tx *sql.Tx) error {
		for _, fid := range fids {
			if _, err := s.txExec(ctx, tx, s.ignore+` INTO file_to_queue (fid, devid, type, nexttry, failcount, flags, arg) VALUES (?, ?, ?, `+s.now+`, 0, 0, ?)`, fid, dev, typ, arg); err != nil {
				return err
			}
		}
		return nil
	})
}

// EnqueueStray records a copy of fid on devid that was, or may have
// been, written without a file_on row, for the stray remover of any
// tracker. ErrExists: the queue holds a stray of fid already (one row
// per fid), on devid or another device.
func (s *Store) EnqueueStray(ctx context.Context, fid int64, devid int) error {
	r, err := s.exec(ctx, s.db, s.ignore+` INTO file_to_queue (fid, devid, type, nexttry, failcount, flags, arg) VALUES (?, ?, 3, `+s.now+`, 0, 0, NULL)`, fid, devid)
	if err != nil {
		return wrap("enqueue stray", err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ErrExists
	}
	return nil
}

// FIDsAfter returns up to limit fids in (after, upTo], ascending.
func (s *Store) FIDsAfter(ctx context.Context, after, upTo int64, limit int) ([]int64, error) {
	return s.queryFIDs(ctx, "fids after", `SELECT fid FROM file WHERE fid > ? AND fid <= ? ORDER BY fid LIMIT ?`, after, upTo, limit)
}

// FixDevcount sets file.devcount from file_on.
func (s *Store) FixDevcount(ctx context.Context, fid int64) error {
	return s.tx(ctx, "fix devcount", func(tx *sql.Tx) error { return s.refreshDevcount(ctx, tx, fid) })
}

// FIDsOnDeviceDesc is FIDsOnDevice newest first: up to limit fids below
// before (0: no bound), descending.
func (s *Store) FIDsOnDeviceDesc(ctx context.Context, devid int, before int64, limit int) ([]int64, error) {
	if before > 0 {
		return s.queryFIDs(ctx, "fids on device", `SELECT fid FROM file_on WHERE devid=? AND fid < ? ORDER BY fid DESC LIMIT ?`, devid, before, limit)
	}
	return s.queryFIDs(ctx, "fids on device", `SELECT fid FROM file_on WHERE devid=? ORDER BY fid DESC LIMIT ?`, devid, limit)
}

// RenewLease pushes a claimed row's nexttry lease seconds into the future.
func (s *Store) RenewLease(ctx context.Context, q Queue, fid int64, lease int) error {
	table, where := q.table()
	_, err := s.exec(ctx, s.db, fmt.Sprintf(`UPDATE %s SET nexttry = %s + ? WHERE %s AND fid = ?`, table, s.now, where), lease, fid)
	return wrap("renew lease", err)
}

// AddCopyDone records a copy of fid on devid and removes its row from q,
// in one transaction: the last step of a replication. ErrNotFound if fid
// is no longer a file (its queue row stays for the replicator to drop).
func (s *Store) AddCopyDone(ctx context.Context, fid int64, devid int, q Queue) error {
	table, where := q.table()
	return s.writeTx(ctx, "add copy", func(ctx context.Context, tx *sql.Tx) error {
		if err := s.addCopyIn(ctx, tx, fid, devid); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, fmt.Sprintf(`DELETE FROM %s WHERE %s AND fid=?`, table, where), fid)
		return err
	})
}

// queryFIDs runs a query returning one fid column.
func (s *Store) queryFIDs(ctx context.Context, op, q string, args ...any) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var f int64
		if err := rows.Scan(&f); err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, f)
	}
	return out, wrap(op, rows.Err())
}

// Unreferenced returns those of fids (at most a few thousand) that
// nothing in the database ties to device devid: no copy of theirs is
// recorded there and no upload of theirs is under way. Their bytes on
// that device are strays (see the tracker's orphan sweep).
func (s *Store) Unreferenced(ctx context.Context, devid int, fids []int64) ([]int64, error) {
	if len(fids) == 0 {
		return nil, nil
	}
	list, args := fidList(fids)
	known, err := s.queryFIDs(ctx, "unreferenced fids",
		`SELECT fid FROM file_on WHERE devid = ? AND fid IN (`+list+`) UNION SELECT fid FROM tempfile WHERE fid IN (`+list+`)`,
		append(append([]any{devid}, args...), args...)...)
	if err != nil {
		return nil, err
	}
	tied := make(map[int64]bool, len(known))
	for _, f := range known {
		tied[f] = true
	}
	return slices.DeleteFunc(slices.Clone(fids), func(f int64) bool { return tied[f] }), nil
}

// fidList returns the placeholders of an IN list of fids ("?, ?, ?") and
// the fids as its arguments.
func fidList(fids []int64) (string, []any) {
	args := make([]any, len(fids))
	for i, fid := range fids {
		args[i] = fid
	}
	return strings.Repeat("?, ", len(fids)-1) + "?", args
}
