// Command mogilefsd is the MogileFS tracker.
//
// It answers the original MogileFS text protocol (port 7001 by default)
// and keeps the namespace in a database: the embedded SQLite store by
// default, or MySQL/MariaDB for a cluster of several trackers.
//
// Usage:
//
//	mogilefsd [--config=/etc/mogilefs/mogilefsd.conf] [--dsn=DSN] [--listen=IP:PORT]...
//
// The config file uses the original's keys (db_dsn, db_user, db_pass,
// listen, conf_port, default_mindevcount, min_free_space, node_timeout,
// conn_timeout, mogstored_stream_port, no_schema_check, ...); flags win.
// Example session:
//
//	$ mogilefsd --dsn=DBI:SQLite:dbname=/var/lib/mogilefs/mogilefs.db --listen=127.0.0.1:7001 &
//	$ printf 'noop\r\n' | nc 127.0.0.1 7001
//	OK
package main
