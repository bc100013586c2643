// Package store is the MogileFS metadata database: the original schema 17
// on SQLite (embedded, pure Go, the default) or MySQL/MariaDB (for clusters
// of many trackers). An existing database made by the original's
// mogdbsetup is used as it is; a new one is set up on first open.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/mogilefs-go/mogilefs-go/core"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Kind names a database backend.
type Kind string

// The supported backends.
const (
	SQLite Kind = "sqlite"
	MySQL  Kind = "mysql"
)

// Errors a caller may branch on with errors.Is.
var (
	// ErrNotFound: the row the call names does not exist.
	ErrNotFound = core.Errorf(core.NotFound, "store: not found")
	// ErrExists: a unique name or id is already taken.
	ErrExists = core.Errorf(core.Exists, "store: already exists")
	// ErrSchema: the database holds a schema version this code does not speak.
	ErrSchema = core.Errorf(core.Database, "store: unsupported schema version")
)

// Config says which database to open.
type Config struct {
	// DSN is a DBI-style DSN as in mogilefsd.conf
	// (`DBI:SQLite:dbname=/var/lib/mogilefs/meta.db`,
	// `DBI:mysql:mogilefs:host=10.0.0.5;port=3306`), or `sqlite:PATH`, or
	// `mysql:` followed by a github.com/go-sql-driver/mysql DSN.
	DSN string
	// User and Pass are the database credentials (MySQL only).
	User, Pass string
	// NoSchemaCheck opens a database whose schema_version is not 17.
	NoSchemaCheck bool
	// NoSync commits SQLite transactions without an fsync each
	// (synchronous=NORMAL in WAL mode): a crash of the tracker loses
	// nothing committed, a crash of the machine or a power cut can lose
	// the last transactions (the metadata promise of MooseFS's master).
	// Refused on MySQL, whose server decides that.
	NoSync bool
	// ReadOnly opens a database to read from only (a read replica): it is
	// neither set up nor checked, only reached.
	ReadOnly bool
	// Logger receives what the store has to say; nil discards.
	Logger *slog.Logger
}

// Store is an open metadata database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	kind   Kind
	log    *slog.Logger
	now    string // SQL expression for the database's unix time
	ignore string // "INSERT IGNORE" or "INSERT OR IGNORE"

	noSkipLocked atomic.Bool // the MySQL server does not know SKIP LOCKED
	// noMeta: the extension table file_meta is missing and the database
	// user may not create it; metadata is then neither stored nor read.
	noMeta bool
	// noClaimTokens: the extension table queue_claim is missing and the
	// database user may not create it; see claimToken.
	noClaimTokens bool
	claimOwner    int64        // this store's tokens in queue_claim
	claimSeq      atomic.Int64 // the last token's number
	// commitFault, set by tests, stands in for each commit (see
	// SetCommitFault).
	commitFault func(commit func() error) error

	group  *groupCommitter // SQLite: batches CommitFile calls
	noSync bool            // SQLite: commits are never fsynced (Config.NoSync)
	// writeMu (SQLite) lets one of this process's writes at a time reach
	// the database (see lockWrites).
	writeMu sync.Mutex

	stmtMu sync.Mutex            // guards the fields below
	stmts  map[stmtKey]*sql.Stmt // prepared hot statements
	wanted map[string]bool       // statements transactions ran unprepared (see txStmt)
}

// Hot read queries, prepared once per store: the read path then skips
// parsing and planning SQL on every request.
const (
	stmtFileAndDevids = `SELECT f.fid, f.length, f.classid, f.devcount, fo.devid FROM file f LEFT JOIN file_on fo ON fo.fid = f.fid WHERE f.dmid=? AND f.dkey=? ORDER BY fo.devid`
	stmtFileMeta      = `SELECT name, value FROM file_meta WHERE fid=?`
	// The file, its copies' devices and its metadata, in one query
	// (file_info): the metadata rows have no devid.
	stmtFileAndMeta = `SELECT f.fid, f.length, f.classid, f.devcount, fo.devid, NULL, NULL FROM file f LEFT JOIN file_on fo ON fo.fid = f.fid WHERE f.dmid=? AND f.dkey=?` +
		` UNION ALL SELECT f.fid, f.length, f.classid, f.devcount, NULL, m.name, m.value FROM file f JOIN file_meta m ON m.fid = f.fid WHERE f.dmid=? AND f.dkey=? ORDER BY 5`
	stmtChecksum = `SELECT hashtype, checksum FROM checksum WHERE fid=?`
)

// query runs a point query (see pointCtx) with a statement prepared
// once per store; one that cannot be prepared runs unprepared.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = s.pointCtx(ctx)
	if st := s.prepared(ctx, s.db, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q, args...)
}

// pointCtx is the context of a point query or a one-row write. On
// SQLite, a local file where these take microseconds, it is not
// cancelled: watching a cancellable context costs every statement two
// goroutines (database/sql's and the driver's), a sixth of the tracker's
// time under get_paths load. (Lock waits are bounded by busy_timeout.)
// MySQL statements keep ctx: the network can stall.
func (s *Store) pointCtx(ctx context.Context) context.Context {
	if s.kind == SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// prepared returns q prepared on db (once per store), or nil when it
// cannot be prepared. It may wait for a free connection: callers inside
// a transaction use cachedStmt instead.
func (s *Store) prepared(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	k := stmtKey{db, q}
	if st := s.cachedStmt(k); st != nil {
		return st
	}
	// Prepared without the lock held: preparing takes a connection from
	// the pool, which may have to wait for other users of the store.
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if old, ok := s.stmts[k]; ok {
		st.Close()
		return old
	}
	if s.stmts == nil {
		s.stmts = map[stmtKey]*sql.Stmt{}
	}
	s.stmts[k] = st
	return st
}

// cachedStmt returns the statement of k if it is prepared already.
func (s *Store) cachedStmt(k stmtKey) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return s.stmts[k]
}

// txStmt returns q prepared, for use inside a transaction, or nil. A
// transaction holds a connection, so it must not wait for another one to
// prepare q: the first use runs q unprepared and notes it, and the next
// transaction prepares it before it begins (prepareWanted).
func (s *Store) txStmt(q string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[stmtKey{s.db, q}]; st != nil {
		return st
	}
	if s.wanted == nil {
		s.wanted = map[string]bool{}
	}
	s.wanted[q] = true
	return nil
}

// prepareWanted prepares the statements transactions asked for; it runs
// before a transaction takes its connection. One that fails stays
// unprepared until it is asked for again.
func (s *Store) prepareWanted(ctx context.Context) {
	s.stmtMu.Lock()
	wanted := s.wanted
	s.wanted = nil
	s.stmtMu.Unlock()
	for q := range wanted {
		s.prepared(ctx, s.db, q)
	}
}

// stmtKey names a prepared statement: its database and its SQL.
type stmtKey struct {
	db *sql.DB
	q  string
}

// exec runs q on db with a prepared statement.
func (s *Store) exec(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	ctx = s.pointCtx(ctx)
	defer s.lockWrites()()
	if st := s.prepared(ctx, db, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.ExecContext(ctx, q, args...)
}

// queryRow is QueryRowContext on db with a prepared statement.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = s.pointCtx(ctx)
	if st := s.prepared(ctx, s.db, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, q, args...)
}

// txExec runs q in tx with a statement prepared once per connection,
// which spares the hot write paths parsing SQL on every call.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.txStmt(q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQuery is QueryContext in tx with a prepared statement.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.txStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// txQueryRow is QueryRowContext in tx with a prepared statement.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.txStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// Kind returns the backend of s.
func (s *Store) Kind() Kind { return s.kind }

// DB returns the underlying database handle, for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.stop()
		s.group = nil
	}
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}

// ParseDSN turns a configured DSN into a backend and a driver DSN.
func ParseDSN(dsn, user, pass string) (Kind, string, error) {
	low := strings.ToLower(dsn)
	switch {
	case strings.HasPrefix(low, "dbi:sqlite:"):
		rest := dsn[len("dbi:sqlite:"):]
		path := rest
		for _, part := range strings.Split(rest, ";") {
			if k, v, ok := strings.Cut(part, "="); ok && (strings.EqualFold(k, "dbname") || strings.EqualFold(k, "database")) {
				path = v
			}
		}
		if path == "" {
			return "", "", fmt.Errorf("store: DSN %q names no SQLite file (want DBI:SQLite:dbname=/path/to/file)", dsn)
		}
		return SQLite, path, nil
	case strings.HasPrefix(low, "sqlite:"):
		path := dsn[len("sqlite:"):]
		if path == "" {
			return "", "", fmt.Errorf("store: DSN %q names no SQLite file", dsn)
		}
		return SQLite, path, nil
	case strings.HasPrefix(low, "dbi:mysql:"):
		return MySQL, dbiMySQL(dsn[len("dbi:mysql:"):], user, pass), nil
	case strings.HasPrefix(low, "mysql:"):
		cfg, addrs, err := parseMySQLDSN(dsn[len("mysql:"):])
		if err != nil {
			return "", "", fmt.Errorf("store: bad MySQL DSN: %w", err)
		}
		if user != "" && cfg.User == "" {
			cfg.User, cfg.Passwd = user, pass
		}
		return MySQL, formatMySQLDSN(cfg, addrs), nil
	case strings.HasPrefix(low, "dbi:pg:"):
		return "", "", fmt.Errorf("store: PostgreSQL is not supported; use MySQL/MariaDB or SQLite")
	}
	return "", "", fmt.Errorf("store: DSN %q not understood (want DBI:SQLite:dbname=PATH or DBI:mysql:DBNAME:host=HOST;port=PORT)", dsn)
}

// dbiMySQL converts the DBD::mysql part of a DSN ("mogilefs:host=h;port=p"
// or "database=mogilefs;host=h") to a go-sql-driver DSN.
func dbiMySQL(rest, user, pass string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, pass
	cfg.DBName = "mogilefs"
	host, port, sock := "127.0.0.1", "3306", ""
	for i, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == ';' || r == ':' }) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if i == 0 {
				cfg.DBName = part
			}
			continue
		}
		switch strings.ToLower(k) {
		case "database", "dbname", "db":
			cfg.DBName = v
		case "host", "hostname":
			host = v
		case "port":
			port = v
		case "mysql_socket":
			sock = v
		}
	}
	if sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
	} else {
		// host=db1,db2,db3: several servers (see nodeConnector).
		var addrs []string
		for _, h := range strings.Split(host, ",") {
			if h = strings.TrimSpace(h); h != "" {
				addrs = append(addrs, net.JoinHostPort(h, port))
			}
		}
		cfg.Net, cfg.Addr = "tcp", addrs[0]
		return formatMySQLDSN(cfg, addrs)
	}
	return cfg.FormatDSN()
}

// Open opens (and if new, sets up) the database named by cfg.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	kind, dsn, err := ParseDSN(cfg.DSN, cfg.User, cfg.Pass)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{kind: kind, log: log, claimOwner: rand.Int64(), noSync: cfg.NoSync}
	switch kind {
	case SQLite:
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("store: create directory for %s: %w", dsn, err)
			}
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		if cfg.NoSync {
			q.Add("_pragma", "synchronous(NORMAL)")
		} else {
			q.Add("_pragma", "synchronous(FULL)")
		}
		q.Set("_txlock", "immediate")
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dsn, err)
		}
		s.db.SetMaxOpenConns(16)
		s.db.SetMaxIdleConns(16)
		s.now = "CAST(strftime('%s','now') AS INTEGER)"
		s.ignore = "INSERT OR IGNORE"
	case MySQL:
		if cfg.NoSync {
			return nil, core.Errorf(core.Invalid, "store: committing without fsync is set on a MySQL server itself (innodb_flush_log_at_trx_commit=2, sync_binlog=0), not by the tracker")
		}
		mc, addrs, err := parseMySQLDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: bad MySQL DSN: %w", err)
		}
		mc.InterpolateParams = true
		if mc.Timeout == 0 {
			mc.Timeout = 5 * time.Second
		}
		if mc.ReadTimeout == 0 {
			mc.ReadTimeout = 60 * time.Second
		}
		if mc.WriteTimeout == 0 {
			mc.WriteTimeout = 60 * time.Second
		}
		conn, err := newNodeConnector(mc, addrs)
		if err != nil {
			return nil, fmt.Errorf("store: open MySQL %s: %w", mc.Addr, err)
		}
		s.db = sql.OpenDB(conn)
		s.db.SetMaxOpenConns(64)
		s.db.SetMaxIdleConns(64)
		s.db.SetConnMaxLifetime(time.Hour)
		s.now = "UNIX_TIMESTAMP()"
		s.ignore = "INSERT IGNORE"
	}
	if cfg.ReadOnly {
		if err := s.db.PingContext(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: cannot reach the %s replica: %w", s.kind, err)
		}
		return s, nil
	}
	if err := s.setup(ctx, cfg.NoSchemaCheck); err != nil {
		s.Close()
		return nil, err
	}
	if kind == SQLite {
		s.group = newGroupCommitter(s)
	}
	return s, nil
}

// setup creates missing tables and checks the schema version.
func (s *Store) setup(ctx context.Context, noCheck bool) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: cannot reach the %s database: %w", s.kind, err)
	}
	var version string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE field='schema_version'`).Scan(&version)
	switch {
	case err == nil:
		if version != fmt.Sprint(SchemaVersion) && !noCheck {
			return fmt.Errorf("%w: the database says schema_version=%s, this tracker speaks %d (run the original mogdbsetup to upgrade, or set no_schema_check)", ErrSchema, version, SchemaVersion)
		}
		if version == fmt.Sprint(SchemaVersion) {
			return s.setupExtensions(ctx)
		}
	case errors.Is(err, sql.ErrNoRows):
	default:
		// Most likely the table does not exist yet: set it all up.
	}
	ddl := sqliteTables
	if s.kind == MySQL {
		ddl = mysqlTables
	}
	for _, stmt := range ddl {
		if s.kind == MySQL {
			stmt += " ENGINE=InnoDB"
		}
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: set up schema: %w", err)
		}
	}
	if _, err := s.db.ExecContext(ctx, s.ignore+` INTO server_settings (field, value) VALUES ('schema_version', ?)`, fmt.Sprint(SchemaVersion)); err != nil {
		return fmt.Errorf("store: set up schema: %w", err)
	}
	s.log.Info("store: schema ready", "backend", s.kind, "version", SchemaVersion)
	return s.setupExtensions(ctx)
}

// extensionFeatures names what needs the extension tables, for the
// warning of a tracker that runs without them.
const extensionFeatures = "file metadata: mogmount's mtime, mode, owners, symbolic links, extended attributes and directory times, plugin_meta_set, recorded creation times"

// setupExtensions creates mogilefs-go's extra tables when missing. A
// database user that may not create tables (the original runs with one
// that may only SELECT, INSERT, UPDATE and DELETE) is no reason not to
// start: the store then runs without them, and says what is missing.
func (s *Store) setupExtensions(ctx context.Context) error {
	if s.kind == SQLite {
		// A device's copies in fid order (the dead-device reaper, drain,
		// rebalance): InnoDB's index on devid holds the primary key and
		// is in fid order already; SQLite's maps devid to rowids, and
		// every page of a listing would sort the whole device. The
		// original's index on devid alone (in stores it made: new ones
		// do without) is then a prefix of it that every recorded copy
		// still writes a page of: dropped.
		if _, err := s.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS devid_fid ON file_on (devid, fid)`); err != nil {
			return fmt.Errorf("store: index file_on by device: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, `DROP INDEX IF EXISTS devid`); err != nil {
			return fmt.Errorf("store: index file_on by device: %w", err)
		}
	}
	var err error
	meta := metaTable
	if s.kind == SQLite {
		meta += " WITHOUT ROWID" // as file's (see sqliteTables)
	}
	if s.noMeta, err = s.lacksExtension(ctx, "file_meta", meta, "without "+extensionFeatures); err != nil {
		return err
	}
	if s.noClaimTokens, err = s.lacksExtension(ctx, "queue_claim", claimTokenTable,
		"a claim of queued work whose commit answer is lost waits out its lease"); err != nil {
		return err
	}
	if !s.noClaimTokens {
		s.purgeClaimTokens(ctx)
	}
	return nil
}

// lacksExtension creates the extension table named table (ddl) when it is
// missing. It reports true, after a warning that the tracker runs so
// (without: what that costs), when the database user may not create it.
func (s *Store) lacksExtension(ctx context.Context, table, ddl, without string) (bool, error) {
	exists, err := s.tableExists(ctx, table)
	if err != nil {
		return false, fmt.Errorf("store: look for extension table %s: %w", table, err)
	}
	if exists {
		return false, nil
	}
	if s.kind == MySQL {
		ddl += " ENGINE=InnoDB"
	}
	_, err = s.db.ExecContext(ctx, ddl)
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &me) && (me.Number == 1142 || me.Number == 1044): // CREATE command denied
		s.log.Warn("store: the database user may not create the extension table "+table+"; running "+without+
			". Add it once with a user that may: mogilefsd --dbuser=ADMIN --dbpass=... setup-db", "err", err)
		return true, nil
	}
	return false, fmt.Errorf("store: set up extension table %s: %w", table, err)
}

// tableExists reports whether the database has table.
func (s *Store) tableExists(ctx context.Context, table string) (bool, error) {
	q := `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`
	if s.kind == SQLite {
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	}
	var n int
	err := s.db.QueryRowContext(ctx, q, table).Scan(&n)
	return n > 0, err
}

// HasMeta reports whether the store keeps file metadata (the extension
// table exists).
func (s *Store) HasMeta() bool { return !s.noMeta }

// Setup sets the schema up, or completes it (the extension tables), on a
// database this user may create tables in; it is idempotent. Open does
// the same, but carries on without the extension tables when the user
// may not create them.
func (s *Store) Setup(ctx context.Context) error {
	if err := s.setup(ctx, false); err != nil {
		return err
	}
	if s.noMeta || s.noClaimTokens {
		return fmt.Errorf("store: the database user may not create the extension tables")
	}
	return nil
}

// Now returns the database's current unix time, the clock every queue uses.
func (s *Store) Now(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT "+s.now).Scan(&n)
	return n, wrap("now", err)
}

// isDup reports whether err is a unique-constraint violation.
func isDup(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isRetryable reports whether a transaction failed for a reason that a
// retry can cure (deadlock, lock wait timeout, SQLite busy or locked).
func isRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// Deadlock (and a Galera certification conflict), lock wait
		// timeout, a Galera node gone from the primary component (the
		// connection is dropped; the retry connects to another node).
		return me.Number == 1213 || me.Number == 1205 || me.Number == 1047
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff // the primary code of an extended one
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// isConnLost reports a connection that broke under a statement (its
// server died or was cut off, or stopped answering in the read timeout).
func isConnLost(err error) bool {
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn)
}

// wrap adds the operation name to a database error and gives it its
// kind: Database, unless the store chose one (not found, exists) or the
// caller's context ended.
func wrap(op string, err error) error {
	switch {
	case err == nil, core.KindOf(err) != core.Other && !errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return core.E(core.Timeout, "store: "+op, err)
	case errors.Is(err, context.Canceled):
		return core.E(core.Other, "store: "+op, err)
	}
	return core.E(core.Database, "store: "+op, err)
}

// tx runs fn in a transaction, retrying it when the database says to
// (deadlocks, lock waits, SQLite busy), with growing jittered pauses.
func (s *Store) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return s.txWith(ctx, op, fn, false)
}

// txWith is tx; with tokened, the transaction also writes a claim token,
// by which a commit whose answer was lost is found to have been made or
// not (see claimToken).
func (s *Store) txWith(ctx context.Context, op string, fn func(*sql.Tx) error, tokened bool) error {
	return s.txOn(ctx, op, s.begin, fn, tokened)
}

// txOn is txWith in transactions from begin.
func (s *Store) txOn(ctx context.Context, op string, begin func(context.Context) (*sql.Tx, error), fn func(*sql.Tx) error, tokened bool) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			pause := time.Duration(min(5<<attempt, 200)) * time.Millisecond
			select {
			case <-time.After(pause/2 + time.Duration(rand.Int64N(int64(pause)))):
			case <-ctx.Done():
				return wrap(op, ctx.Err())
			}
		}
		s.prepareWanted(ctx)
		var tok *claimToken
		if tokened && !s.noClaimTokens {
			tok = s.newClaimToken()
		}
		var retry bool
		retry, err = s.txOnce(ctx, begin, fn, tok)
		if err == nil || !retry {
			return wrap(op, err)
		}
	}
	return wrap(op, err)
}

// begin starts a transaction on a connection of the pool.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) { return s.db.BeginTx(ctx, nil) }

// txOnce is one attempt of tx, in a transaction from begin: its error,
// and whether to try again.
func (s *Store) txOnce(ctx context.Context, begin func(context.Context) (*sql.Tx, error), fn func(*sql.Tx) error, tok *claimToken) (retry bool, err error) {
	defer s.lockWrites()()
	t, err := begin(ctx)
	if err != nil {
		return isRetryable(err), err
	}
	err = fn(t)
	if err == nil && tok != nil {
		err = tok.write(ctx, s, t)
	}
	if err == nil {
		err = s.commit(t)
		if err == nil {
			return false, nil
		}
		if tok != nil && isConnLost(err) {
			// The connection broke in the commit: it may have been
			// made and its answer lost. The token tells which.
			made, cerr := tok.committed(ctx, s)
			switch {
			case cerr != nil:
				s.log.Warn("store: a commit's answer was lost and whether it was made is unknown; the rows it claimed wait out their lease", "err", err, "check", cerr)
			case made:
				s.log.Info("store: a commit's answer was lost; it was made", "err", err)
				return false, nil
			default:
				return true, err
			}
		}
	} else {
		t.Rollback()
		if isConnLost(err) {
			// The connection died before the commit (its server went
			// away): nothing was committed, so the transaction is run
			// again, on another connection.
			return true, err
		}
	}
	return isRetryable(err), err
}

// commit commits t, through the test's fault when one is set.
func (s *Store) commit(t *sql.Tx) error {
	if s.commitFault == nil {
		return t.Commit()
	}
	err := s.commitFault(t.Commit)
	t.Rollback() // a fault that did not commit leaves t open
	return err
}

// lockWrites, on SQLite, waits until no other write of this process is
// under way and returns the function that lets the next one go. SQLite
// takes one writer at a time, and a writer that finds the database locked
// sleeps in its busy handler (1 ms, then 2, 5, 10...) rather than being
// woken when the lock is free: an unlink waiting out the deletion job's
// commit took twice as long. Elsewhere it does nothing.
func (s *Store) lockWrites() func() {
	if s.kind != SQLite {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// writeTx runs fn in a write transaction: on SQLite in the group
// committer's next batch (one fsync for many writers), elsewhere alone.
func (s *Store) writeTx(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.groupTx(ctx, op, false, fn)
}

// lazyTx is writeTx for a write whose loss in a power cut harms nothing
// (it is done again): on SQLite a batch of such writes only is committed
// without an fsync.
func (s *Store) lazyTx(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.groupTx(ctx, op, true, fn)
}

// Durability says when a metadata change is durable (survives a power
// failure), for the changes a local file system also makes durable only
// when asked (fsync): unlinks, renames, and metadata.
type Durability bool

const (
	// Durable: when the call returns (on SQLite an fsynced commit; on
	// MySQL as the server commits).
	Durable Durability = false
	// Deferred: committed when the call returns (seen by every reader,
	// kept if the tracker dies), durable with the next durable commit or
	// Sync. On SQLite its commit is not fsynced (when batched with
	// durable work it is); on MySQL it is Durable.
	Deferred Durability = true
)

// Sync makes every change committed before it durable: on SQLite a
// durable commit, whose fsync of the write-ahead log takes the earlier
// commits with it; nothing on MySQL, whose commits are all durable (as the
// server is set).
func (s *Store) Sync(ctx context.Context) error {
	if s.group == nil {
		return nil
	}
	// A commit that writes no page is not synced, and SQLite writes no
	// page for a row rewritten as it is: this one changes a row and
	// changes it back.
	return s.writeTx(ctx, "sync", func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{
			`UPDATE server_settings SET value=value||'.' WHERE field='schema_version'`,
			`UPDATE server_settings SET value=substr(value, 1, length(value)-1) WHERE field='schema_version'`,
		} {
			if _, err := s.txExec(ctx, tx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// groupTx is writeTx (lazy: lazyTx).
func (s *Store) groupTx(ctx context.Context, op string, lazy bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.group != nil {
		return s.group.do(ctx, op, lazy, fn)
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error { return fn(ctx, tx) })
}

// writeOne runs a one-statement write and returns its result: on SQLite
// in the group committer's next batch (lazy: as lazyTx's work), so that
// the hot writes (uploads, commits, unlinks, renames) are made on one
// connection, whose page cache then stays warm; elsewhere on its own (no
// transaction around it).
func (s *Store) writeOne(ctx context.Context, op string, lazy bool, q string, args ...any) (sql.Result, error) {
	if s.group == nil {
		r, err := s.exec(ctx, s.db, q, args...)
		return r, wrap(op, err)
	}
	var r sql.Result
	err := s.group.do(ctx, op, lazy, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		r, err = s.txExec(ctx, tx, q, args...)
		return err
	})
	return r, err
}

// nullInt converts a nullable integer column.
func nullInt(n sql.NullInt64, def int64) int64 {
	if n.Valid {
		return n.Int64
	}
	return def
}

// nullStr converts a nullable string column.
func nullStr(n sql.NullString) string {
	if n.Valid {
		return n.String
	}
	return ""
}
