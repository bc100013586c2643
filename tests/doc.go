// Package tests holds the end-to-end tests: real trackers, storage nodes,
// databases and (later) mounts, driven through the client library, the
// wire protocol and the built binaries.
package tests
