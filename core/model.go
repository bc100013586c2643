package core

import (
	"fmt"
	"strconv"
)

// Domain is a key namespace.
type Domain struct {
	ID   int    // dmid
	Name string // namespace
}

// Hash types of a class, as stored in class.hashtype and checksum.hashtype.
const (
	HashNone = 0
	HashMD5  = 1
	HashSHA1 = 2
)

// HashName returns the wire name of a hash type: "NONE", "MD5" or "SHA-1".
func HashName(t int) string {
	switch t {
	case HashMD5:
		return "MD5"
	case HashSHA1:
		return "SHA-1"
	}
	return "NONE"
}

// HashType parses a wire hash name; ok is false for unknown names.
// "NONE" parses as HashNone.
func HashType(name string) (t int, ok bool) {
	switch name {
	case "MD5":
		return HashMD5, true
	case "SHA-1":
		return HashSHA1, true
	case "NONE", "":
		return HashNone, true
	}
	return 0, false
}

// HashSize is the digest length in bytes of a hash type (0 for none).
func HashSize(t int) int {
	switch t {
	case HashMD5:
		return 16
	case HashSHA1:
		return 20
	}
	return 0
}

// DefaultReplPolicy is what a class without a stored policy uses.
const DefaultReplPolicy = "MultipleHosts()"

// Class is a per-domain replication setting. ID 0 is the implicit
// "default" class.
type Class struct {
	DomainID    int
	ID          int
	Name        string
	MinDevCount int
	HashType    int    // HashNone, HashMD5, HashSHA1
	ReplPolicy  string // "" means DefaultReplPolicy
}

// Policy returns the class's replication policy string.
func (c Class) Policy() string {
	if c.ReplPolicy == "" {
		return DefaultReplPolicy
	}
	return c.ReplPolicy
}

// Host states.
const (
	HostAlive    = "alive"
	HostDead     = "dead"
	HostDown     = "down"
	HostReadonly = "readonly"
)

// ValidHostState reports whether s is a host state.
func ValidHostState(s string) bool {
	switch s {
	case HostAlive, HostDead, HostDown, HostReadonly:
		return true
	}
	return false
}

// Host is a storage node.
type Host struct {
	ID          int
	Name        string
	Status      string
	IP          string
	HTTPPort    int
	HTTPGetPort int    // 0: same as HTTPPort
	AltIP       string // "" when unset
	AltMask     string // CIDR, "" when unset
}

// GetPort returns the port used for reads.
func (h Host) GetPort() int {
	if h.HTTPGetPort > 0 {
		return h.HTTPGetPort
	}
	return h.HTTPPort
}

// Device states.
const (
	DevAlive    = "alive"
	DevDead     = "dead"
	DevDown     = "down"
	DevReadonly = "readonly"
	DevDrain    = "drain"
)

// ValidDeviceState reports whether s is a device state.
func ValidDeviceState(s string) bool {
	switch s {
	case DevAlive, DevDead, DevDown, DevReadonly, DevDrain:
		return true
	}
	return false
}

// Device is one disk (a devN directory) on a host.
type Device struct {
	ID      int
	HostID  int
	Status  string
	Weight  int
	MBTotal int64 // -1 when unknown
	MBUsed  int64 // -1 when unknown
	MBAsOf  int64 // unix time; 0 when unknown
}

// MBFree returns free megabytes, or -1 when unknown.
func (d Device) MBFree() int64 {
	if d.MBTotal < 0 || d.MBUsed < 0 {
		return -1
	}
	return d.MBTotal - d.MBUsed
}

// PercentFree returns the free fraction in [0,1], or -1 when unknown.
func (d Device) PercentFree() float64 {
	if d.MBTotal <= 0 || d.MBUsed < 0 {
		return -1
	}
	return float64(d.MBTotal-d.MBUsed) / float64(d.MBTotal)
}

// File is one committed file version (a fid) bound to a key.
type File struct {
	FID      int64
	DomainID int
	Key      string
	Length   int64
	ClassID  int
	DevCount int
}

// FidDeletedHeader, set to "1" on the DELETE of a fid's file, tells the
// storage node that the file itself is deleted and its fid never used
// again: the node then refuses writes of that file for a while (a write
// sent before the DELETE and delivered after it would put the deleted
// file back with nothing left to remove it). A DELETE without it (a stray
// copy of a file that lives on, a copy moved to another device) leaves
// the fid's file writable, so its copy can be made there again. The
// original's storage nodes ignore it.
const FidDeletedHeader = "X-MogileFS-Fid-Deleted"

// SentHeader carries, on a write or DELETE of a fid's file, when its
// sender made the request (Unix nanoseconds, the sender's clock). A
// storage node refuses a write sent before the file's last DELETE and
// served after it (one held up by a stopped or cut-off node): a copy the
// tracker gave up on and removed must not land later. Writes without it
// (the original's clients) are not refused that way.
const SentHeader = "X-MogileFS-Sent"

// FidListHeader marks a storage node's answer to a listing of a
// device's fid files (GET /devN/?list_fids=1&after=PATH&limit=N): one
// line per file, "<fid> <mtime, Unix seconds> <size> <path below the
// device>", in path order; the last path is where the next page starts,
// and a page shorter than the limit is the last. Ours only: the
// original's nodes answer such a GET with their directory page, without
// the header.
const FidListHeader = "X-MogileFS-Fid-List"

// FidDeleteHeader marks a storage node's answer to a deletion of many
// deleted fids' files of a device at once (POST /devN/?delete_fids=1, a
// body of one fid a line): one line per fid, "<fid> <status>", the status
// a DELETE of its file with FidDeletedHeader would have had (204, 404,
// 400). Ours only: the original's nodes refuse the POST, without the
// header.
const FidDeleteHeader = "X-MogileFS-Fid-Delete"

// FIDPath returns the URI path of fid on device devid:
// /dev<devid>/<d0>/<d1-3>/<d4-6>/<10-digit fid>.fid
func FIDPath(devid int, fid int64) string {
	n := fmt.Sprintf("%010d", fid)
	return "/dev" + strconv.Itoa(devid) + "/" + n[0:1] + "/" + n[1:4] + "/" + n[4:7] + "/" + n + ".fid"
}

// URL returns the URL of fid on devid at host ip:port.
func URL(ip string, port, devid int, fid int64) string {
	return "http://" + ip + ":" + strconv.Itoa(port) + FIDPath(devid, fid)
}
