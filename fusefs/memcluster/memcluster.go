// Package memcluster is a MogileFS cluster in memory for the mount's
// unit tests: a tracker with mogilefs-go's extensions (or, with Plain,
// one without them, as the original 2.73) and storage nodes, both of
// which can be made to fail — a command that errors or stalls, a PUT
// that dies at byte N, a node that stops answering.
package memcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Hook is called at the start of a command; a non-nil error is returned
// as the command's (after ctx is done, if the hook blocked until then).
// n is the number of times the command was called so far, this one
// included.
type Hook func(ctx context.Context, n int, dom, key string) error

// PutHook is called as a PUT's body arrives, with the bytes received so
// far; a non-nil error ends the PUT with it (the node died at byte n).
// It may block to stall the node.
type PutHook func(ctx context.Context, url string, n int64) error

// File is a stored version.
type File struct {
	FID   int64
	Class string
	Data  []byte
	Meta  map[string]string
	Mtime time.Time // when it was committed
	// Written is how many copies the client wrote itself and the tracker
	// recorded at create_close (1 from a client that wrote one, or on
	// Plain, whose tracker makes the others).
	Written int
	// Failed are the destinations the client said its writes to failed
	// (create_close's failed_devids): a tracker of ours removes their
	// bytes before it commits.
	Failed []string
}

type temp struct {
	dom, key string
	dests    []client.Dest
}

// Cluster is the in-memory cluster. Its zero value is not usable; call New.
type Cluster struct {
	// Plain makes the tracker answer as the original's: no metadata
	// (plugin_meta_set is unknown_command, create_close ignores it), no
	// detailed listings, and a rename onto an existing key fails.
	Plain bool

	mu      sync.Mutex
	domains map[string]map[string]*File // domain -> key -> file
	temps   map[int64]temp
	blobs   map[string][]byte // storage URL -> bytes
	nextFID int64
	hooks   map[string]Hook
	after   map[string]Hook
	calls   map[string]int
	putHook PutHook
	down    map[string]bool // "devN" -> not answering
	frozen  map[string]map[string]*File
}

// FreezeListings makes list_keys answer from the keys as they are now,
// as a lagging replica would.
func (c *Cluster) FreezeListings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = map[string]map[string]*File{}
	for d, files := range c.domains {
		m := make(map[string]*File, len(files))
		for k, f := range files {
			m[k] = f
		}
		c.frozen[d] = m
	}
}

// listed returns the keys listings see.
func (c *Cluster) listed(dom string) (map[string]*File, error) {
	if c.frozen != nil {
		if d, ok := c.frozen[dom]; ok {
			return d, nil
		}
	}
	return c.domain(dom)
}

// New returns a cluster with the given domains.
func New(domains ...string) *Cluster {
	c := &Cluster{domains: map[string]map[string]*File{}, temps: map[int64]temp{}, blobs: map[string][]byte{},
		hooks: map[string]Hook{}, after: map[string]Hook{}, calls: map[string]int{}, down: map[string]bool{}, nextFID: 1}
	for _, d := range domains {
		c.domains[d] = map[string]*File{}
	}
	return c
}

// On sets the hook of a command (the tracker command's name: "file_info",
// "create_open", "create_close", "rename", "delete", "list_keys",
// "get_paths", "plugin_meta_set", ...; "put" and "get" for the nodes);
// nil removes it.
func (c *Cluster) On(cmd string, h Hook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.hooks, cmd)
	} else {
		c.hooks[cmd] = h
	}
}

// After sets a hook run when a command has computed its answer, before
// it returns it (an answer that is late: a slow network); nil removes it.
func (c *Cluster) After(cmd string, h Hook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.after, cmd)
	} else {
		c.after[cmd] = h
	}
}

// late runs the After hook of cmd.
func (c *Cluster) late(ctx context.Context, cmd, dom, key string) {
	c.mu.Lock()
	h, n := c.after[cmd], c.calls[cmd]
	c.mu.Unlock()
	if h != nil {
		h(ctx, n, dom, key)
	}
}

// OnPut sets the hook called as PUT bodies arrive.
func (c *Cluster) OnPut(h PutHook) {
	c.mu.Lock()
	c.putHook = h
	c.mu.Unlock()
}

// SetDown makes a device ("dev1", "dev2") refuse every request.
func (c *Cluster) SetDown(dev string, down bool) {
	c.mu.Lock()
	c.down[dev] = down
	c.mu.Unlock()
}

// Get returns the stored version of a key.
func (c *Cluster) Get(dom, key string) (*File, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.domains[dom][key]
	return f, ok
}

// Keys returns the keys of a domain, sorted.
func (c *Cluster) Keys(dom string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.domains[dom] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Temps returns the number of uploads opened and neither committed nor
// abandoned.
func (c *Cluster) Temps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.temps)
}

// PutFile stores a file directly, as another client would.
func (c *Cluster) PutFile(dom, key string, data []byte, meta map[string]string) *File {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &File{FID: c.nextFID, Data: append([]byte(nil), data...), Meta: meta, Mtime: time.Now()}
	c.nextFID++
	for _, u := range c.urls(f.FID) {
		c.blobs[u] = f.Data
	}
	c.domains[dom][key] = f
	return f
}

func (c *Cluster) urls(fid int64) []string {
	return []string{fmt.Sprintf("http://mem/dev1/0/%010d.fid", fid), fmt.Sprintf("http://mem/dev2/0/%010d.fid", fid)}
}

// call counts a command and runs its hook.
func (c *Cluster) call(ctx context.Context, cmd, dom, key string) error {
	c.mu.Lock()
	c.calls[cmd]++
	n, h := c.calls[cmd], c.hooks[cmd]
	c.mu.Unlock()
	if h != nil {
		if err := h(ctx, n, dom, key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func errCode(code, text string) error { return &protocol.Error{Code: code, Text: text} }

// Calls returns how many times cmd was called.
func (c *Cluster) Calls(cmd string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[cmd]
}

// Sync (the tracker's sync) makes earlier changes durable: here a
// command that only counts (see Calls) and runs its hook.
func (c *Cluster) Sync(ctx context.Context) error { return c.call(ctx, "sync", "", "") }

// Domains lists the domains.
func (c *Cluster) Domains(ctx context.Context) ([]string, error) {
	if err := c.call(ctx, "get_domains", "", ""); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for d := range c.domains {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

func (c *Cluster) domain(dom string) (map[string]*File, error) {
	d, ok := c.domains[dom]
	if !ok {
		return nil, errCode("unreg_domain", "Domain name invalid/not found")
	}
	return d, nil
}

// FileInfo describes a key.
func (c *Cluster) FileInfo(ctx context.Context, dom, key string) (client.FileInfo, error) {
	var fi client.FileInfo
	err := c.withKey(ctx, "file_info", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		fi = client.FileInfo{FID: f.FID, Domain: dom, Class: f.Class, Key: key, Length: int64(len(f.Data)), DevCount: 2, Devids: []int{1, 2}}
		if !c.Plain && len(f.Meta) > 0 {
			fi.Meta = copyMeta(f.Meta)
		}
		return nil
	})
	return fi, err
}

func copyMeta(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sortedKeys returns the keys of d with prefix after after, sorted.
func sortedKeys(d map[string]*File, prefix, after string) []string {
	var ks []string
	for k := range d {
		if strings.HasPrefix(k, prefix) && k > after {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// ListKeys lists keys.
func (c *Cluster) ListKeys(ctx context.Context, dom, prefix, after string, limit int) ([]string, string, error) {
	if err := c.call(ctx, "list_keys", dom, prefix); err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.listed(dom)
	if err != nil {
		return nil, "", err
	}
	ks := sortedKeys(d, prefix, after)
	if len(ks) > limit {
		ks = ks[:limit]
	}
	if len(ks) == 0 {
		return nil, "", nil
	}
	return ks, ks[len(ks)-1], nil
}

// ListDir lists the entries directly below prefix.
func (c *Cluster) ListDir(ctx context.Context, dom, prefix, after string, limit int) (client.DirPage, error) {
	if err := c.call(ctx, "list_keys", dom, prefix); err != nil {
		return client.DirPage{}, err
	}
	page, err := c.listDir(dom, prefix, after, limit)
	c.late(ctx, "list_keys", dom, prefix)
	return page, err
}

func (c *Cluster) listDir(dom, prefix, after string, limit int) (client.DirPage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.listed(dom)
	if err != nil {
		return client.DirPage{}, err
	}
	page := client.DirPage{Detailed: !c.Plain}
	for _, k := range sortedKeys(d, prefix, after) {
		if len(page.Entries) == limit {
			page.More = true
			break
		}
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			sub := prefix + rest[:i+1]
			if n := len(page.Entries); n == 0 || page.Entries[n-1].Name != sub {
				e := client.Entry{Name: sub, IsDir: true}
				if m, ok := d[sub]; ok && !c.Plain && k == sub {
					// The marker comes first: its details with the directory.
					e.Marker, e.FID, e.Size, e.Meta = true, m.FID, int64(len(m.Data)), copyMeta(m.Meta)
				}
				page.Entries = append(page.Entries, e)
			}
			page.Next = sub + "\xff"
			continue
		}
		f := d[k]
		e := client.Entry{Name: k}
		if !c.Plain {
			e.FID, e.Size, e.Meta = f.FID, int64(len(f.Data)), copyMeta(f.Meta)
		}
		page.Entries = append(page.Entries, e)
		page.Next = k
	}
	return page, nil
}

// GetPaths returns the URLs of a key's copies.
func (c *Cluster) GetPaths(ctx context.Context, dom, key string, noverify bool) ([]string, error) {
	var paths []string
	err := c.withKey(ctx, "get_paths", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		paths = c.urls(f.FID)
		return nil
	})
	return paths, err
}

func devOf(url string) string {
	rest := strings.TrimPrefix(url, "http://mem/")
	dev, _, _ := strings.Cut(rest, "/")
	return dev
}

// Modified returns when the file at url was committed.
func (c *Cluster) Modified(ctx context.Context, url string) (time.Time, error) {
	if err := c.call(ctx, "head", "", url); err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.domains {
		for _, f := range d {
			for _, u := range c.urls(f.FID) {
				if u == url {
					return f.Mtime, nil
				}
			}
		}
	}
	return time.Time{}, errors.New("memcluster: HEAD " + url + ": 404 Not Found")
}

// OpenRange reads bytes of the blob at the first answering path.
func (c *Cluster) OpenRange(ctx context.Context, paths []string, start, end int64, refresh func(context.Context) ([]string, error)) io.ReadCloser {
	return &reader{c: c, ctx: ctx, paths: paths, start: start, end: end, refresh: refresh}
}

type reader struct {
	c          *Cluster
	ctx        context.Context
	paths      []string
	start, end int64
	refresh    func(context.Context) ([]string, error)
	data       *bytes.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	if r.data == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.data.Read(p)
}

func (r *reader) open() error {
	for try := 0; try < 2; try++ {
		for _, u := range r.paths {
			if err := r.c.call(r.ctx, "get", "", u); err != nil {
				if r.ctx.Err() != nil {
					return r.ctx.Err()
				}
				continue
			}
			r.c.mu.Lock()
			b, ok := r.c.blobs[u]
			down := r.c.down[devOf(u)]
			r.c.mu.Unlock()
			if !ok || down {
				continue
			}
			end := r.end
			if end < 0 || end > int64(len(b)) {
				end = int64(len(b))
			}
			start := min(r.start, end)
			r.data = bytes.NewReader(b[start:end])
			return nil
		}
		if r.refresh == nil {
			break
		}
		paths, err := r.refresh(r.ctx)
		if err != nil {
			return err
		}
		r.paths = paths
	}
	return client.ErrNoPaths
}

func (r *reader) Close() error { return nil }

// OpenUploads returns how many uploads are open: create_open answered,
// neither committed nor abandoned by create_close.
func (c *Cluster) OpenUploads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.temps)
}

// CreateOpen reserves a fid.
func (c *Cluster) CreateOpen(ctx context.Context, dom, key, class string, size int64) (client.OpenResult, error) {
	if err := c.call(ctx, "create_open", dom, key); err != nil {
		return client.OpenResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.domain(dom); err != nil {
		return client.OpenResult{}, err
	}
	fid := c.nextFID
	c.nextFID++
	var dests []client.Dest
	for i, u := range c.urls(fid) {
		if !c.down[devOf(u)] {
			dests = append(dests, client.Dest{Devid: i + 1, Path: u})
		}
	}
	if len(dests) == 0 {
		return client.OpenResult{}, errCode("no_devices", "No devices found to store file")
	}
	c.temps[fid] = temp{dom: dom, key: key, dests: dests}
	res := client.OpenResult{FID: fid, Dests: dests}
	if !c.Plain {
		res.Copies = 2
	}
	return res, nil
}

// Put receives a body.
func (c *Cluster) Put(ctx context.Context, url string, body io.Reader, size int64) error {
	if err := c.call(ctx, "put", "", url); err != nil {
		return err
	}
	c.mu.Lock()
	h, down := c.putHook, c.down[devOf(url)]
	c.mu.Unlock()
	if down {
		return fmt.Errorf("memcluster: PUT %s: connection refused", url)
	}
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for {
		n, err := body.Read(chunk)
		buf.Write(chunk[:n])
		if h != nil && n > 0 {
			if herr := h(ctx, url, int64(buf.Len())); herr != nil {
				return fmt.Errorf("memcluster: PUT %s: %w", url, herr)
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("memcluster: PUT %s: %w", url, ctx.Err())
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("memcluster: PUT %s: %w", url, err)
		}
	}
	if size >= 0 && int64(buf.Len()) != size {
		return fmt.Errorf("memcluster: PUT %s: ContentLength=%d with Body length %d", url, size, buf.Len())
	}
	c.mu.Lock()
	c.blobs[url] = buf.Bytes()
	c.mu.Unlock()
	return nil
}

// CreateClose commits or abandons an upload.
func (c *Cluster) CreateClose(ctx context.Context, a client.CloseArgs) error {
	if err := c.call(ctx, "create_close", a.Domain, a.Key); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.temps[a.FID]
	if !ok {
		return errCode("no_temp_file", "No tempfile or file already closed")
	}
	delete(c.temps, a.FID)
	if a.Key == "" {
		for _, d := range t.dests {
			delete(c.blobs, d.Path)
		}
		return nil
	}
	b, ok := c.blobs[a.Dest.Path]
	if !ok || int64(len(b)) != a.Size {
		for _, d := range t.dests {
			delete(c.blobs, d.Path)
		}
		return errCode("size_mismatch", fmt.Sprintf("Expected: %d; actual: %d", a.Size, len(b)))
	}
	f := &File{FID: a.FID, Data: b, Mtime: time.Now(), Written: 1}
	for _, d := range a.Failed {
		f.Failed = append(f.Failed, d.Path)
	}
	for _, d := range a.Copies {
		if cb, ok := c.blobs[d.Path]; ok && bytes.Equal(cb, b) && !c.Plain {
			f.Written++
		}
	}
	if !c.Plain {
		f.Meta, _ = protocol.DecodeMeta(a.Extra)
		if f.Meta["mtime"] == "" { // recorded by the tracker, as ours does
			if f.Meta == nil {
				f.Meta = map[string]string{}
			}
			f.Meta[protocol.MetaCreated] = strconv.FormatInt(f.Mtime.UnixNano(), 10)
		}
	}
	for _, u := range c.urls(a.FID) {
		c.blobs[u] = b // replicated at once
	}
	c.domains[a.Domain][a.Key] = f
	return nil
}

// EditFile answers edit_file as our tracker does: a copy of the key's
// current version at a scratch URL (OldPath), the new fid's URL on the
// same device (NewPath). Plain answers unknown_command, as a 2.73
// tracker without memcache fails it.
func (c *Cluster) EditFile(ctx context.Context, dom, key string) (client.Edit, error) {
	if c.Plain {
		return client.Edit{}, errCode("unknown_command", "Unknown server command")
	}
	var e client.Edit
	err := c.withKey(ctx, "edit_file", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		if c.down[devOf(c.urls(f.FID)[0])] {
			return errCode("no_devices", "No device holding the file can take writes now")
		}
		scratch, fid := c.nextFID, c.nextFID+1
		c.nextFID += 2
		dest := client.Dest{Devid: 1, Path: c.urls(fid)[0]}
		old := c.urls(scratch)[0]
		c.blobs[old] = append([]byte(nil), f.Data...)
		c.temps[scratch] = temp{dom: dom, dests: []client.Dest{{Devid: 1, Path: old}}}
		c.temps[fid] = temp{dom: dom, key: key, dests: []client.Dest{dest}}
		e = client.Edit{OldPath: old, NewPath: dest.Path, FID: fid, Devid: 1}
		return nil
	})
	return e, err
}

// Move renames a file on a node.
func (c *Cluster) Move(ctx context.Context, src, dst string) error {
	if err := c.call(ctx, "move", "", src); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blobs[src]
	if !ok || c.down[devOf(src)] {
		return fmt.Errorf("memcluster: MOVE %s: not found", src)
	}
	delete(c.blobs, src)
	c.blobs[dst] = b
	return nil
}

// PutRange writes a range into a file on a node, as a Content-Range PUT.
func (c *Cluster) PutRange(ctx context.Context, url string, body io.Reader, off, size int64) error {
	if err := c.call(ctx, "put_range", "", url); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(body, size))
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("memcluster: ranged PUT %s: %d of %d bytes", url, len(data), size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blobs[url]
	if off > int64(len(b)) || c.down[devOf(url)] {
		return fmt.Errorf("memcluster: ranged PUT %s at %d: the file has %d bytes", url, off, len(b))
	}
	nb := append([]byte(nil), b...)
	if end := off + size; end > int64(len(nb)) {
		nb = append(nb, make([]byte, end-int64(len(nb)))...)
	}
	copy(nb[off:], data)
	c.blobs[url] = nb
	return nil
}

// withKey counts cmd, runs its hook and, under the lock, calls fn with
// the key's domain and file; a missing key answers the code missing.
func (c *Cluster) withKey(ctx context.Context, cmd, dom, key, missing string, fn func(d map[string]*File, f *File) error) error {
	if err := c.call(ctx, cmd, dom, key); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.domain(dom)
	if err != nil {
		return err
	}
	f, ok := d[key]
	if !ok {
		return errCode(missing, missing)
	}
	return fn(d, f)
}

// Rename renames a key.
func (c *Cluster) Rename(ctx context.Context, dom, from, to string) error {
	return c.withKey(ctx, "rename", dom, from, "unknown_key", func(d map[string]*File, f *File) error {
		if _, ok := d[to]; ok {
			return errCode("key_exists", "Target key name already exists; can't overwrite.")
		}
		delete(d, from)
		d[to] = f
		return nil
	})
}

// Delete removes a key.
func (c *Cluster) Delete(ctx context.Context, dom, key string) error {
	return c.withKey(ctx, "delete", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		delete(d, key)
		for _, u := range c.urls(f.FID) {
			delete(c.blobs, u)
		}
		return nil
	})
}

// SetMeta merges metadata into a key's.
// A plain tracker does not know the command, whatever the key.
func (c *Cluster) SetMeta(ctx context.Context, dom, key string, meta map[string]string) error {
	if c.Plain {
		return errCode("unknown_command", "Unknown server command")
	}
	return c.withKey(ctx, "plugin_meta_set", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		nf := *f
		nf.Meta = copyMeta(f.Meta)
		if nf.Meta == nil {
			nf.Meta = map[string]string{}
		}
		for k, v := range meta {
			nf.Meta[k] = v
		}
		d[key] = &nf
		return nil
	})
}

// UpdateClass changes a key's class. A missing key is not found (the
// tracker's invalid_key, as core/client reports it).
func (c *Cluster) UpdateClass(ctx context.Context, dom, key, class string) error {
	return c.withKey(ctx, "updateclass", dom, key, "unknown_key", func(d map[string]*File, f *File) error {
		nf := *f
		nf.Class = class
		d[key] = &nf
		return nil
	})
}

// Space reports 1 GiB, a quarter used.
func (c *Cluster) Space(ctx context.Context) (int64, int64, error) {
	if err := c.call(ctx, "get_devices", "", ""); err != nil {
		return 0, 0, err
	}
	return 1024, 256, nil
}

// Stall returns a hook that blocks until release is closed or the
// command's context ends.
func Stall(release <-chan struct{}) Hook {
	return func(ctx context.Context, n int, dom, key string) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DiesAfter returns a PUT hook under which the node of device dev ("dev1";
// "" for every node) fails each upload once it has received n bytes.
func DiesAfter(dev string, n int64) PutHook {
	return func(ctx context.Context, url string, got int64) error {
		if got > n && (dev == "" || devOf(url) == dev) {
			return errors.New("connection reset by peer")
		}
		return nil
	}
}

// Stalls returns a PUT hook under which the node of device dev ("" for
// every node) takes no more bytes until the PUT's context ends.
func Stalls(dev string) PutHook {
	return func(ctx context.Context, url string, got int64) error {
		if dev == "" || devOf(url) == dev {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		return nil
	}
}

// FailOnce returns a hook that fails the first call with err.
func FailOnce(err error) Hook {
	return func(ctx context.Context, n int, dom, key string) error {
		if n == 1 {
			return err
		}
		return nil
	}
}
