// Package core holds the MogileFS domain model shared by the tracker, the
// storage node and the clients: domains, classes, hosts, devices, files and
// their states, and the fid-to-path formula. Subpackages implement the
// pieces: protocol (the tracker wire codec), store (the metadata database),
// tracker (mogilefsd), storage (mogstored), client (the Go client library).
package core
