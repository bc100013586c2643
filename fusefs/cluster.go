package fusefs

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// Cluster is what the mount needs from a MogileFS cluster: the tracker's
// metadata commands and the storage nodes' bytes. Errors from tracker
// commands are *protocol.Error values carrying the tracker's code (e.g.
// "unknown_key", "key_exists", "unknown_command" from a tracker without
// an extension). ClientCluster is the real one; package memcluster holds
// one in memory for tests, with failures to inject.
type Cluster interface {
	// Domains lists the domains.
	Domains(ctx context.Context) ([]string, error)
	// FileInfo describes a key.
	FileInfo(ctx context.Context, dom, key string) (client.FileInfo, error)
	// ListDir lists one page of the entries directly below prefix.
	ListDir(ctx context.Context, dom, prefix, after string, limit int) (client.DirPage, error)
	// ListKeys lists one page of the keys starting with prefix.
	ListKeys(ctx context.Context, dom, prefix, after string, limit int) (keys []string, next string, err error)
	// GetPaths returns the read URLs of a key's current version.
	GetPaths(ctx context.Context, dom, key string, noverify bool) ([]string, error)
	// Modified returns when the file at a storage URL was written.
	Modified(ctx context.Context, url string) (time.Time, error)
	// OpenRange streams bytes [start, end) of the file at paths (end -1:
	// to its end), failing over between them and calling refresh for new
	// paths when all failed (refresh may be nil).
	OpenRange(ctx context.Context, paths []string, start, end int64, refresh func(context.Context) ([]string, error)) io.ReadCloser
	// CreateOpen reserves a fid and destinations for a new version.
	CreateOpen(ctx context.Context, dom, key, class string, size int64) (client.OpenResult, error)
	// Put streams body (size bytes, -1 unknown) to a destination URL.
	Put(ctx context.Context, url string, body io.Reader, size int64) error
	// CreateClose commits an upload (or abandons it: Key "").
	CreateClose(ctx context.Context, c client.CloseArgs) error
	// EditFile starts an in-place edit of a key (the tracker's
	// edit_file): a copy of its current version to be moved into place,
	// patched with PutRange and committed with CreateClose.
	EditFile(ctx context.Context, dom, key string) (client.Edit, error)
	// Move renames a file on a storage node (WebDAV MOVE).
	Move(ctx context.Context, src, dst string) error
	// PutRange writes size bytes of body at off into the file at url.
	PutRange(ctx context.Context, url string, body io.Reader, off, size int64) error
	// Rename renames a key; the target must not exist.
	Rename(ctx context.Context, dom, from, to string) error
	// Delete removes a key.
	Delete(ctx context.Context, dom, key string) error
	// SetMeta changes a key's metadata.
	SetMeta(ctx context.Context, dom, key string, meta map[string]string) error
	// Sync makes the renames, deletions and metadata changes answered so
	// far durable (they may be undone by a power cut until then, as on a
	// local disk): the mount's fsync of a file or a directory.
	Sync(ctx context.Context) error
	// UpdateClass moves a key to another class.
	UpdateClass(ctx context.Context, dom, key, class string) error
	// Space returns the cluster's total and used megabytes.
	Space(ctx context.Context) (totalMB, usedMB int64, err error)
}

// ClientCluster is the Cluster of a real cluster, through core/client.
// Its client is made with ClientOptions.
type ClientCluster struct{ C *client.Client }

// ClientOptions are the tracker client options of a mount: renames,
// deletions and metadata changes are durable once synced (Cluster.Sync),
// as a local file system's.
func ClientOptions() client.Options { return client.Options{DeferMetadata: true} }

// Sync implements Cluster.
func (c ClientCluster) Sync(ctx context.Context) error { return c.C.Tracker.Sync(ctx) }

var _ Cluster = ClientCluster{}

// Domains implements Cluster.
func (c ClientCluster) Domains(ctx context.Context) ([]string, error) {
	return c.C.Tracker.Domains(ctx)
}

// FileInfo implements Cluster.
func (c ClientCluster) FileInfo(ctx context.Context, dom, key string) (client.FileInfo, error) {
	return c.C.Tracker.FileInfo(ctx, dom, key)
}

// ListDir implements Cluster.
func (c ClientCluster) ListDir(ctx context.Context, dom, prefix, after string, limit int) (client.DirPage, error) {
	return c.C.Tracker.ListDir(ctx, dom, prefix, after, limit)
}

// ListKeys implements Cluster.
func (c ClientCluster) ListKeys(ctx context.Context, dom, prefix, after string, limit int) ([]string, string, error) {
	return c.C.Tracker.ListKeys(ctx, dom, prefix, after, limit)
}

// GetPaths implements Cluster.
func (c ClientCluster) GetPaths(ctx context.Context, dom, key string, noverify bool) ([]string, error) {
	return c.C.Tracker.GetPaths(ctx, dom, key, noverify)
}

// Modified implements Cluster with a HEAD request (Last-Modified).
func (c ClientCluster) Modified(ctx context.Context, url string) (time.Time, error) {
	in, err := c.C.Nodes.Head(ctx, url)
	if err == nil && in.Modified.IsZero() {
		err = fmt.Errorf("HEAD %s: no Last-Modified", url)
	}
	return in.Modified, err
}

// OpenRange implements Cluster.
func (c ClientCluster) OpenRange(ctx context.Context, paths []string, start, end int64, refresh func(context.Context) ([]string, error)) io.ReadCloser {
	r := c.C.NewReader(ctx, paths, start, end)
	r.Refresh = refresh
	return r
}

// CreateOpen implements Cluster.
func (c ClientCluster) CreateOpen(ctx context.Context, dom, key, class string, size int64) (client.OpenResult, error) {
	return c.C.Tracker.CreateOpen(ctx, dom, key, class, size)
}

// Put implements Cluster.
func (c ClientCluster) Put(ctx context.Context, url string, body io.Reader, size int64) error {
	return c.C.PutFile(ctx, url, body, size)
}

// CreateClose implements Cluster.
func (c ClientCluster) CreateClose(ctx context.Context, a client.CloseArgs) error {
	return c.C.Tracker.CreateClose(ctx, a)
}

// EditFile implements Cluster.
func (c ClientCluster) EditFile(ctx context.Context, dom, key string) (client.Edit, error) {
	return c.C.Tracker.EditFile(ctx, dom, key)
}

// Move implements Cluster.
func (c ClientCluster) Move(ctx context.Context, src, dst string) error {
	return c.C.Nodes.Move(ctx, src, dst)
}

// PutRange implements Cluster.
func (c ClientCluster) PutRange(ctx context.Context, url string, body io.Reader, off, size int64) error {
	return c.C.PutRange(ctx, url, body, off, size)
}

// Rename implements Cluster.
func (c ClientCluster) Rename(ctx context.Context, dom, from, to string) error {
	return c.C.Tracker.Rename(ctx, dom, from, to)
}

// Delete implements Cluster.
func (c ClientCluster) Delete(ctx context.Context, dom, key string) error {
	return c.C.Tracker.Delete(ctx, dom, key)
}

// SetMeta implements Cluster.
func (c ClientCluster) SetMeta(ctx context.Context, dom, key string, meta map[string]string) error {
	return c.C.Tracker.SetMeta(ctx, dom, key, meta)
}

// UpdateClass implements Cluster.
func (c ClientCluster) UpdateClass(ctx context.Context, dom, key, class string) error {
	return c.C.Tracker.UpdateClass(ctx, dom, key, class)
}

// Space implements Cluster (see client.Tracker.Space).
func (c ClientCluster) Space(ctx context.Context) (int64, int64, error) {
	return c.C.Tracker.Space(ctx)
}
