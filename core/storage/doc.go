// Package storage is the MogileFS storage node (mogstored): an HTTP server
// over a docroot of device directories (dev1, dev2, ...) that serves GET
// and HEAD with byte ranges by sendfile, takes PUTs durably (temporary
// file, fsync, rename, directory fsync) and DELETEs, writes each device's
// usage file, and answers the side channel (size, MD5, SHA-1, watch).
//
// Nothing outside a device directory is reachable: every file access goes
// through an os.Root opened on the device directory, so "..", encoded
// dots and symlinks that lead out are refused by the kernel-checked walk.
package storage
