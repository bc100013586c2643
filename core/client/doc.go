// Package client is a Go client for MogileFS: a tracker client that pools
// connections and fails over across several trackers, typed calls for the
// tracker commands, and a storage client that streams uploads and
// downloads straight to and from the storage nodes, moving to the next
// copy when one fails.
package client
