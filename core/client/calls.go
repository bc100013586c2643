package client

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// IsCode reports whether err is a tracker ERR reply with the given code.
func IsCode(err error, code string) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == code
}

// Dest is one place create_open said an upload may go.
type Dest struct {
	Devid int
	Path  string
}

// OpenResult is create_open's answer.
type OpenResult struct {
	FID   int64
	Dests []Dest
	// Copies is how many copies the file's class keeps when the tracker
	// takes them written by the client (ours: CloseArgs.Copies); 0 when
	// it does not (the original), which then makes them itself.
	Copies int
}

// CreateOpen reserves a fid for key in domain (class "" = default). size
// is the expected length, or -1 when unknown.
func (t *Tracker) CreateOpen(ctx context.Context, domain, key, class string, size int64) (OpenResult, error) {
	a := protocol.Args{"domain": domain, "key": key, "class": class, "multi_dest": "1", "fid": "0", "write_copies": "1"}
	if size >= 0 {
		a["size"] = strconv.FormatInt(size, 10)
	}
	r, err := t.Do(ctx, "create_open", a)
	if err != nil {
		return OpenResult{}, err
	}
	var res OpenResult
	res.FID, _ = strconv.ParseInt(r["fid"], 10, 64)
	res.Copies, _ = strconv.Atoi(r["copies"])
	if n, err := strconv.Atoi(r["dev_count"]); err == nil {
		for i := 1; i <= n; i++ {
			d, _ := strconv.Atoi(r["devid_"+strconv.Itoa(i)])
			res.Dests = append(res.Dests, Dest{Devid: d, Path: r["path_"+strconv.Itoa(i)]})
		}
	} else if r["path"] != "" {
		d, _ := strconv.Atoi(r["devid"])
		res.Dests = []Dest{{Devid: d, Path: r["path"]}}
	}
	if res.FID == 0 || len(res.Dests) == 0 {
		return res, &protocol.Error{Code: "bad_reply", Text: "create_open answered without fid or destination"}
	}
	return res, nil
}

// Edit is edit_file's answer: a copy of the key's current version at
// OldPath, to be moved to NewPath on the same node (WebDAV MOVE),
// patched there with ranged PUTs and committed as FID on device Devid.
type Edit struct {
	OldPath, NewPath string
	FID              int64
	Devid            int
}

// EditFile starts an in-place edit of key (the tracker's experimental
// edit_file, which our tracker serves safely; a 2.73 tracker without
// memcache, or with the original's storage nodes, refuses it).
func (t *Tracker) EditFile(ctx context.Context, domain, key string) (Edit, error) {
	r, err := t.Do(ctx, "edit_file", protocol.Args{"domain": domain, "key": key})
	if err != nil {
		return Edit{}, err
	}
	e := Edit{OldPath: r["oldpath"], NewPath: r["newpath"]}
	e.FID, _ = strconv.ParseInt(r["fid"], 10, 64)
	e.Devid, _ = strconv.Atoi(r["devid"])
	if e.FID == 0 || e.Devid == 0 || e.OldPath == "" || e.NewPath == "" {
		return e, &protocol.Error{Code: "bad_reply", Text: "edit_file answered without fid, device or paths"}
	}
	return e, nil
}

// CloseArgs are create_close's arguments beyond the upload's place.
type CloseArgs struct {
	Domain, Key string
	FID         int64
	Dest        Dest
	Size        int64
	// Checksum is "MD5:<hex>" or "SHA-1:<hex>"; Verify asks the tracker
	// to check it on the storage node.
	Checksum string
	Verify   bool
	// Copies are more destinations of the same open that hold the
	// whole file too (only when OpenResult.Copies said so); Failed are
	// those a write to failed, which may hold some of it.
	Copies, Failed []Dest
	// Extra pairs sent along (e.g. plugin.meta.* metadata).
	Extra protocol.Args
}

// CreateClose commits an upload.
func (t *Tracker) CreateClose(ctx context.Context, c CloseArgs) error {
	a := protocol.Args{"domain": c.Domain, "key": c.Key, "fid": strconv.FormatInt(c.FID, 10),
		"devid": strconv.Itoa(c.Dest.Devid), "path": c.Dest.Path, "size": strconv.FormatInt(c.Size, 10)}
	if c.Checksum != "" {
		a["checksum"] = c.Checksum
		if c.Verify {
			a["checksumverify"] = "1"
		}
	}
	if len(c.Copies) > 0 {
		a["copy_devids"] = devids(c.Copies)
	}
	if len(c.Failed) > 0 {
		a["failed_devids"] = devids(c.Failed)
	}
	for k, v := range c.Extra {
		a[k] = v
	}
	_, err := t.Do(ctx, "create_close", a)
	return err
}

// devids lists the destinations' device ids, comma-separated.
func devids(ds []Dest) string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = strconv.Itoa(d.Devid)
	}
	return strings.Join(ids, ",")
}

// GetPaths returns the URLs a key can be read from, best first.
func (t *Tracker) GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error) {
	a := protocol.Args{"domain": domain, "key": key}
	if noverify {
		a["noverify"] = "1"
	}
	r, err := t.Do(ctx, "get_paths", a)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(r["paths"])
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		if p := r["path"+strconv.Itoa(i)]; p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// Delete removes a key.
func (t *Tracker) Delete(ctx context.Context, domain, key string) error {
	return t.metaChange(ctx, "delete", protocol.Args{"domain": domain, "key": key})
}

// Rename renames a key within its domain.
func (t *Tracker) Rename(ctx context.Context, domain, from, to string) error {
	return t.metaChange(ctx, "rename", protocol.Args{"domain": domain, "from_key": from, "to_key": to})
}

// metaChange sends a metadata change: with Options.DeferMetadata, one
// that is durable after the next Sync.
func (t *Tracker) metaChange(ctx context.Context, cmd string, a protocol.Args) error {
	if !t.opts.DeferMetadata {
		_, err := t.Do(ctx, cmd, a)
		return err
	}
	a["nosync"] = "1"
	_, err := t.Do(ctx, cmd, a)
	// Counted whatever the answer: a change whose answer was lost may
	// have been made.
	if !t.lacksSync() && t.deferred.Add(1) == 1 {
		t.syncLater()
	}
	return err
}

// lacksSync reports whether the trackers answered sync with
// unknown_command within syncRecheck.
func (t *Tracker) lacksSync() bool { return time.Now().UnixNano() < t.noSyncUntil.Load() }

// syncLater arms the Sync that makes deferred changes durable within
// Options.SyncDelay when nothing else does.
func (t *Tracker) syncLater() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if t.syncTimer == nil {
		t.syncTimer = time.AfterFunc(t.opts.SyncDelay, func() {
			ctx, cancel := context.WithTimeout(context.Background(), t.opts.RequestTimeout)
			defer cancel()
			t.Sync(ctx) // a failure is tried again later
		})
		return
	}
	t.syncTimer.Reset(t.opts.SyncDelay)
}

// Sync makes the changes sent with Options.DeferMetadata durable: our
// tracker's sync, sent only when there were such changes since the last
// Sync. A tracker without the command (the original's) made them durable
// when it answered them, and is not asked again for syncRecheck. Syncs are made one at a time, so that one that
// finds the changes taken by a sync in flight answers after it.
func (t *Tracker) Sync(ctx context.Context) error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	n := t.deferred.Swap(0)
	if n == 0 || t.lacksSync() {
		return nil
	}
	_, err := t.Do(ctx, "sync", nil)
	switch {
	case IsCode(err, "unknown_command"):
		t.noSyncUntil.Store(time.Now().Add(syncRecheck).UnixNano())
		return nil
	case err != nil:
		if t.deferred.Add(n) == n {
			t.syncLater()
		}
	}
	return err
}

// UpdateClass moves a key to another class. A missing key is an error of
// kind core.NotFound (the tracker says invalid_key), an unknown class one
// of kind core.Invalid (the key is there; the request is bad).
func (t *Tracker) UpdateClass(ctx context.Context, domain, key, class string) error {
	_, err := t.Do(ctx, "updateclass", protocol.Args{"domain": domain, "key": key, "class": class})
	var pe *protocol.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "invalid_key":
			pe.Kind = core.NotFound
		case "class_not_found":
			pe.Kind = core.Invalid
		}
	}
	return err
}

// FileInfo describes one stored file.
type FileInfo struct {
	FID      int64
	Domain   string
	Class    string
	Key      string
	Length   int64
	DevCount int
	Checksum string // "" when the class has no hash type
	Devids   []int
	// Meta is the file's metadata (plugin.meta.* pairs), when any.
	Meta map[string]string
	// Raw holds every pair of the reply, extensions included.
	Raw protocol.Args
}

// FileInfo asks about a key (with its device list).
func (t *Tracker) FileInfo(ctx context.Context, domain, key string) (FileInfo, error) {
	r, err := t.Do(ctx, "file_info", protocol.Args{"domain": domain, "key": key, "devices": "1", "created": "1"})
	if err != nil {
		return FileInfo{}, err
	}
	fi := FileInfo{Domain: r["domain"], Class: r["class"], Key: r["key"], Checksum: r["checksum"], Raw: r}
	fi.Meta, _ = protocol.DecodeMeta(r) // a reply past the limits: no metadata
	fi.FID, _ = strconv.ParseInt(r["fid"], 10, 64)
	fi.Length, _ = strconv.ParseInt(r["length"], 10, 64)
	fi.DevCount, _ = strconv.Atoi(r["devcount"])
	for _, d := range strings.Split(r["devids"], ",") {
		if n, err := strconv.Atoi(d); err == nil {
			fi.Devids = append(fi.Devids, n)
		}
	}
	return fi, nil
}

// ListKeys returns up to limit keys with prefix after after, and the
// value to pass as after for the next page. An empty page is not an error.
func (t *Tracker) ListKeys(ctx context.Context, domain, prefix, after string, limit int) (keys []string, next string, err error) {
	a := protocol.Args{"domain": domain, "prefix": prefix, "limit": strconv.Itoa(limit)}
	if after != "" {
		a["after"] = after
	}
	r, err := t.Do(ctx, "list_keys", a)
	if IsCode(err, "none_match") {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	n, _ := strconv.Atoi(r["key_count"])
	for i := 1; i <= n; i++ {
		keys = append(keys, r["key_"+strconv.Itoa(i)])
	}
	return keys, r["next_after"], nil
}

// Domains returns the names of every domain.
func (t *Tracker) Domains(ctx context.Context) ([]string, error) {
	r, err := t.Do(ctx, "get_domains", nil)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(r["domains"])
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r["domain"+strconv.Itoa(i)])
	}
	return out, nil
}

// Records parses a reply holding N numbered records, such as get_hosts
// (count "hosts", prefix "host") or get_devices ("devices", "dev"): it
// returns one field map per record.
func Records(r protocol.Args, count, prefix string) []map[string]string {
	n, _ := strconv.Atoi(r[count])
	out := make([]map[string]string, 0, n)
	for i := 1; i <= n; i++ {
		p := prefix + strconv.Itoa(i) + "_"
		m := map[string]string{}
		for k, v := range r {
			if f, ok := strings.CutPrefix(k, p); ok {
				m[f] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// MaxKeyBytes is the longest key the original's schema stores, and what
// KeyLimit assumes of a tracker that cannot say.
const MaxKeyBytes = 255

// KeyLimit returns the longest key the tracker's database stores (the
// get_limits extension); MaxKeyBytes from a tracker without it.
func (t *Tracker) KeyLimit(ctx context.Context) (int, error) {
	r, err := t.Do(ctx, "get_limits", nil)
	if core.Is(core.Unsupported, err) {
		return MaxKeyBytes, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(r["key_bytes"])
	if err != nil || n <= 0 {
		return MaxKeyBytes, nil
	}
	return n, nil
}
