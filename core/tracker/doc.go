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
//
// The tracker is three parts, each reading the database through the
// small interface it declares: the query handlers and their connections
// (Server, queryStore, in files by verb family: files.go, admin.go,
// fsck.go, rebalance.go, maint.go, meta.go, edit.go); the monitor
// (monitor.go, monitorStore), which owns the configuration snapshot and
// what it observes of each device; and the jobs (jobs.go, jobStore): the
// queue runners for replication, deletion, fsck and rebalance, their
// injectors, and the reapers. Handlers and jobs ask the monitor through
// its methods and wake the jobs; placement and replication policy is one
// file (policy.go, placement.go).
package tracker
