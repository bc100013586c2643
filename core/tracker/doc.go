// Package tracker is the MogileFS tracker (mogilefsd): it answers the
// text protocol of the original on a TCP listener, keeps the namespace in
// a store.Store, and watches the storage nodes (the monitor) so that
// uploads and reads only go to devices observed healthy.
//
// Requests on one connection run strictly one after another and are
// answered in order; connections run in parallel. Domains, classes, hosts,
// devices and server settings are cached in memory (a snapshot replaced
// atomically) and re-read from the database every monitor round, and at
// once after any change made through this tracker, so that several
// trackers on one database agree within one round.
package tracker
