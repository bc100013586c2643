package store

// SchemaVersion is the MogileFS schema version this store reads and writes.
const SchemaVersion = 17

// mysqlTables is the original's schema 17 in creation order, as MySQL DDL.
// New installs use BIGINT fids and keys of up to WideKeyBytes (the
// original: 255; WidenKeys widens an existing database). dkey is
// VARBINARY so that keys are arbitrary bytes compared exactly (a latin1
// VARCHAR, the original's default, folds case).
var mysqlTables = []string{
	`CREATE TABLE IF NOT EXISTS domain (
  dmid SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  namespace VARCHAR(255),
  UNIQUE (namespace))`,
	`CREATE TABLE IF NOT EXISTS class (
  dmid SMALLINT UNSIGNED NOT NULL,
  classid TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (dmid,classid),
  classname VARCHAR(50),
  UNIQUE (dmid,classname),
  mindevcount TINYINT UNSIGNED NOT NULL,
  hashtype TINYINT UNSIGNED,
  replpolicy VARCHAR(255))`,
	`CREATE TABLE IF NOT EXISTS file (
  fid BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid),
  dmid SMALLINT UNSIGNED NOT NULL,
  dkey VARBINARY(1024),
  UNIQUE dkey (dmid, dkey),
  length BIGINT UNSIGNED,
  classid TINYINT UNSIGNED NOT NULL,
  devcount TINYINT UNSIGNED NOT NULL,
  INDEX devcount (dmid,classid,devcount))`,
	`CREATE TABLE IF NOT EXISTS tempfile (
  fid BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  PRIMARY KEY (fid),
  createtime INT UNSIGNED NOT NULL,
  classid TINYINT UNSIGNED NOT NULL,
  dmid SMALLINT UNSIGNED NOT NULL,
  dkey VARBINARY(1024),
  devids VARCHAR(60))`,
	`CREATE TABLE IF NOT EXISTS file_to_delete (
  fid BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid))`,
	`CREATE TABLE IF NOT EXISTS unreachable_fids (
  fid BIGINT UNSIGNED NOT NULL,
  lastupdate INT UNSIGNED NOT NULL,
  PRIMARY KEY (fid),
  INDEX (lastupdate))`,
	`CREATE TABLE IF NOT EXISTS file_on (
  fid BIGINT UNSIGNED NOT NULL,
  devid MEDIUMINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid, devid),
  INDEX (devid))`,
	`CREATE TABLE IF NOT EXISTS file_on_corrupt (
  fid BIGINT UNSIGNED NOT NULL,
  devid MEDIUMINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid, devid))`,
	`CREATE TABLE IF NOT EXISTS host (
  hostid MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
  status ENUM('alive','dead','down','readonly'),
  http_port MEDIUMINT UNSIGNED DEFAULT 7500,
  http_get_port MEDIUMINT UNSIGNED,
  hostname VARCHAR(40),
  hostip VARCHAR(15),
  altip VARCHAR(15),
  altmask VARCHAR(18),
  UNIQUE (hostname),
  UNIQUE (hostip),
  UNIQUE (altip))`,
	`CREATE TABLE IF NOT EXISTS device (
  devid MEDIUMINT UNSIGNED NOT NULL,
  hostid MEDIUMINT UNSIGNED NOT NULL,
  status ENUM('alive','dead','down','readonly','drain'),
  weight MEDIUMINT DEFAULT 100,
  mb_total INT UNSIGNED,
  mb_used INT UNSIGNED,
  mb_asof INT UNSIGNED,
  PRIMARY KEY (devid),
  INDEX (status))`,
	`CREATE TABLE IF NOT EXISTS server_settings (
  field VARCHAR(50) PRIMARY KEY,
  value TEXT)`,
	`CREATE TABLE IF NOT EXISTS file_to_replicate (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  nexttry INT UNSIGNED NOT NULL,
  INDEX (nexttry),
  fromdevid INT UNSIGNED,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
  flags SMALLINT UNSIGNED NOT NULL DEFAULT 0)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete_later (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  delafter INT UNSIGNED NOT NULL,
  INDEX (delafter))`,
	`CREATE TABLE IF NOT EXISTS fsck_log (
  logid INT UNSIGNED NOT NULL AUTO_INCREMENT,
  PRIMARY KEY (logid),
  utime INT UNSIGNED NOT NULL,
  fid BIGINT UNSIGNED NULL,
  evcode CHAR(4),
  devid MEDIUMINT UNSIGNED,
  INDEX (utime))`,
	`CREATE TABLE IF NOT EXISTS file_to_queue (
  fid BIGINT UNSIGNED NOT NULL,
  devid INT UNSIGNED,
  type TINYINT UNSIGNED NOT NULL,
  nexttry INT UNSIGNED NOT NULL,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
  flags SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  arg TEXT,
  PRIMARY KEY (fid, type),
  INDEX type_nexttry (type,nexttry))`,
	`CREATE TABLE IF NOT EXISTS file_to_delete2 (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  nexttry INT UNSIGNED NOT NULL,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
  INDEX nexttry (nexttry))`,
	`CREATE TABLE IF NOT EXISTS checksum (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  hashtype TINYINT UNSIGNED NOT NULL,
  checksum VARBINARY(64) NOT NULL)`,
}

// metaTable is mogilefs-go's extension table of per-file metadata,
// created when missing (plain MogileFS trackers ignore it), in the shape
// of the original's MetaData plugin (plugin.meta.* pairs): mogmount's
// mtime and mode. The other extension table is claimTokenTable.
const metaTable = `CREATE TABLE IF NOT EXISTS file_meta (
  fid BIGINT UNSIGNED NOT NULL,
  name VARCHAR(64) NOT NULL,
  value VARCHAR(255),
  PRIMARY KEY (fid, name))`

// sqliteTables is the same schema as the original's SQLite store writes
// it, but for the tables every small file writes to (file, file_on,
// file_to_delete2, and file_meta), which are WITHOUT ROWID: their primary
// key is the table's b-tree, not an index beside it, so that each row
// written costs a page fewer (a small file's commit 9% less CPU, an
// unlink 15% less time), and but for file_on's index on devid alone,
// which devid_fid (setupExtensions) serves instead. Both shapes are read
// and written alike (the original's SQLite stores too: SQLite 3.8.2 and
// later).
var sqliteTables = []string{
	`CREATE TABLE IF NOT EXISTS domain (
  dmid SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  namespace VARCHAR(255),
  UNIQUE (namespace))`,
	`CREATE TABLE IF NOT EXISTS class (
  dmid SMALLINT UNSIGNED NOT NULL,
  classid TINYINT UNSIGNED NOT NULL,
  classname VARCHAR(50),
  mindevcount TINYINT UNSIGNED NOT NULL,
  hashtype TINYINT UNSIGNED,
  replpolicy VARCHAR(255),
  UNIQUE (dmid,classid),
  UNIQUE (dmid,classname))`,
	`CREATE TABLE IF NOT EXISTS file (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  dmid SMALLINT UNSIGNED NOT NULL,
  dkey VARCHAR(1024),
  length BIGINT UNSIGNED,
  classid TINYINT UNSIGNED NOT NULL,
  devcount TINYINT UNSIGNED NOT NULL,
  UNIQUE (dmid, dkey)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS tempfile (
  fid INTEGER PRIMARY KEY AUTOINCREMENT,
  createtime INT UNSIGNED NOT NULL,
  classid TINYINT UNSIGNED NOT NULL,
  dmid SMALLINT UNSIGNED NOT NULL,
  dkey VARCHAR(1024),
  devids VARCHAR(60))`,
	`CREATE TABLE IF NOT EXISTS file_to_delete (fid BIGINT UNSIGNED NOT NULL PRIMARY KEY)`,
	`CREATE TABLE IF NOT EXISTS unreachable_fids (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  lastupdate INT UNSIGNED NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS lastupdate ON unreachable_fids (lastupdate)`,
	`CREATE TABLE IF NOT EXISTS file_on (
  fid BIGINT UNSIGNED NOT NULL,
  devid MEDIUMINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid, devid)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS file_on_corrupt (
  fid BIGINT UNSIGNED NOT NULL,
  devid MEDIUMINT UNSIGNED NOT NULL,
  PRIMARY KEY (fid, devid))`,
	`CREATE TABLE IF NOT EXISTS host (
  hostid MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
  status TEXT,
  http_port MEDIUMINT UNSIGNED DEFAULT 7500,
  http_get_port MEDIUMINT UNSIGNED,
  hostname VARCHAR(40),
  hostip VARCHAR(15),
  altip VARCHAR(15),
  altmask VARCHAR(18),
  UNIQUE (hostname),
  UNIQUE (hostip),
  UNIQUE (altip))`,
	`CREATE TABLE IF NOT EXISTS device (
  devid MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
  hostid MEDIUMINT UNSIGNED NOT NULL,
  status TEXT,
  weight MEDIUMINT DEFAULT 100,
  mb_total INT UNSIGNED,
  mb_used INT UNSIGNED,
  mb_asof INT UNSIGNED)`,
	`CREATE INDEX IF NOT EXISTS status ON device (status)`,
	`CREATE TABLE IF NOT EXISTS server_settings (
  field VARCHAR(50) PRIMARY KEY,
  value TEXT)`,
	`CREATE TABLE IF NOT EXISTS file_to_replicate (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  nexttry INT UNSIGNED NOT NULL,
  fromdevid INT UNSIGNED,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
  flags SMALLINT UNSIGNED NOT NULL DEFAULT 0)`,
	`CREATE INDEX IF NOT EXISTS nexttry ON file_to_replicate (nexttry)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete_later (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  delafter INT UNSIGNED NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS delafter ON file_to_delete_later (delafter)`,
	`CREATE TABLE IF NOT EXISTS fsck_log (
  logid INTEGER PRIMARY KEY AUTOINCREMENT,
  utime INT UNSIGNED NOT NULL,
  fid BIGINT UNSIGNED NULL,
  evcode CHAR(4),
  devid MEDIUMINT UNSIGNED)`,
	`CREATE INDEX IF NOT EXISTS utime ON fsck_log (utime)`,
	`CREATE TABLE IF NOT EXISTS file_to_queue (
  fid BIGINT UNSIGNED NOT NULL,
  devid INT UNSIGNED,
  type TINYINT UNSIGNED NOT NULL,
  nexttry INT UNSIGNED NOT NULL,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0,
  flags SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  arg TEXT,
  PRIMARY KEY (fid, type))`,
	`CREATE INDEX IF NOT EXISTS type_nexttry ON file_to_queue (type,nexttry)`,
	`CREATE TABLE IF NOT EXISTS file_to_delete2 (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  nexttry INT UNSIGNED NOT NULL,
  failcount TINYINT UNSIGNED NOT NULL DEFAULT 0) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS file_to_delete2_nexttry ON file_to_delete2 (nexttry)`,
	`CREATE TABLE IF NOT EXISTS checksum (
  fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  hashtype TINYINT UNSIGNED NOT NULL,
  checksum VARBINARY(64) NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS lock (
  lockid INT UNSIGNED NOT NULL PRIMARY KEY,
  hostname VARCHAR(255) NOT NULL,
  pid INT UNSIGNED NOT NULL,
  acquiredat INT UNSIGNED NOT NULL)`,
}
