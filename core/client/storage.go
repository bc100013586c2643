package client

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/node"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Client reads and writes files: metadata through the trackers, bytes
// straight to and from the storage nodes.
type Client struct {
	Tracker *Tracker
	Nodes   *node.Client
	// ReadRetries is how many more times a Reader asks the tracker for
	// paths, with growing pauses, after every copy failed (a node may be
	// restarting); default 3, negative for none.
	ReadRetries int
}

// NewNodeClient returns a storage-node client suited to streaming files:
// bounded connect and header waits, large buffers, no limit on how long a
// body may stream.
func NewNodeClient() *node.Client {
	return node.New(node.Options{BufferSize: 256 << 10, UserAgent: "mogilefs-go-client"})
}

// New returns a client of the trackers at addrs.
func New(addrs []string, opts Options) (*Client, error) {
	t, err := NewTracker(addrs, opts)
	if err != nil {
		return nil, err
	}
	return &Client{Tracker: t, Nodes: NewNodeClient()}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.Nodes.CloseIdle()
	return c.Tracker.Close()
}

// countingReader counts bytes read and optionally hashes them.
type countingReader struct {
	r io.Reader
	n int64
	h hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.h != nil && n > 0 {
		c.h.Write(p[:n])
	}
	return n, err
}

// PutFile streams body (size bytes, or -1 when unknown: chunked) to a
// storage-node URL.
func (c *Client) PutFile(ctx context.Context, url string, body io.Reader, size int64) error {
	if err := c.Nodes.Put(ctx, url, body, size, nil); err != nil {
		return fmt.Errorf("mogilefs: %w", err)
	}
	return nil
}

// PutRange writes size bytes of body at off into the file at url (a
// Content-Range PUT: the node builds the new version aside). off must be
// at most the file's size.
func (c *Client) PutRange(ctx context.Context, url string, body io.Reader, off, size int64) error {
	if size <= 0 {
		return nil
	}
	hdr := http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/*", off, off+size-1)}}
	if err := c.Nodes.Put(ctx, url, body, size, hdr); err != nil {
		return fmt.Errorf("mogilefs: %w", err)
	}
	return nil
}

// deleteAbandoned DELETEs the copy at url of an abandoned fid (never
// used again, so the node may refuse its late writes), best effort (10 s
// at most).
func (c *Client) deleteAbandoned(ctx context.Context, url string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.Nodes.DeleteFid(ctx, url)
}

// UploadOptions tune Upload.
type UploadOptions struct {
	// Checksum sends the MD5 of the stream to create_close and has the
	// tracker verify the stored copy against it.
	Checksum bool
	// Meta is stored with the file (plugin.meta.* pairs on create_close).
	Meta map[string]string
}

// Upload stores body under key: create_open, a streamed PUT to the first
// destination that accepts a connection, create_close. size is the
// length, or -1 when unknown. It returns the bytes stored.
func (c *Client) Upload(ctx context.Context, domain, key, class string, body io.Reader, size int64, opts UploadOptions) (int64, error) {
	r, err := c.Store(ctx, domain, key, class, body, size, opts)
	return r.Size, err
}

// Stored describes a file Store saved.
type Stored struct {
	FID  int64 // the new version's fid
	Size int64 // bytes stored (on failure: bytes read from the body)
}

// Store is Upload that also returns the new version's fid.
func (c *Client) Store(ctx context.Context, domain, key, class string, body io.Reader, size int64, opts UploadOptions) (Stored, error) {
	open, err := c.Tracker.CreateOpen(ctx, domain, key, class, size)
	if err != nil {
		return Stored{}, err
	}
	cr := &countingReader{r: body}
	if opts.Checksum {
		cr.h = md5.New()
	}
	var dest Dest
	for i, d := range open.Dests {
		dest = d
		err = c.PutFile(ctx, d.Path, cr, size)
		// Move to the next destination only while nothing was consumed.
		if err == nil || cr.n > 0 || i == len(open.Dests)-1 {
			break
		}
	}
	if err != nil {
		// Abandon the upload (create_close without key), best effort.
		c.Tracker.CreateClose(context.WithoutCancel(ctx), CloseArgs{Domain: domain, FID: open.FID, Dest: dest})
		return Stored{Size: cr.n}, err
	}
	if size >= 0 && cr.n != size {
		return Stored{Size: cr.n}, fmt.Errorf("mogilefs: upload of %q: read %d bytes, expected %d", key, cr.n, size)
	}
	ca := CloseArgs{Domain: domain, Key: key, FID: open.FID, Dest: dest, Size: cr.n}
	if cr.h != nil {
		ca.Checksum, ca.Verify = "MD5:"+hex.EncodeToString(cr.h.Sum(nil)), true
	}
	if len(opts.Meta) > 0 {
		ca.Extra = protocol.Args{}
		protocol.EncodeMeta(ca.Extra, opts.Meta)
	}
	if err := c.Tracker.CreateClose(ctx, ca); err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Code == "no_temp_file" {
			// The tracker no longer knows the upload (it was reaped while
			// the PUT took long): nothing will reference or remove the
			// bytes just stored, so remove them, best effort.
			c.deleteAbandoned(context.WithoutCancel(ctx), dest.Path)
		}
		return Stored{Size: cr.n}, err
	}
	return Stored{FID: open.FID, Size: cr.n}, nil
}

// ErrNoPaths: the tracker knows the key but offered no copy to read.
var ErrNoPaths = errors.New("mogilefs: no readable copy of the file")

// Reader streams a file from its copies: when a storage node fails in
// the middle, it resumes at the same offset from the next copy.
type Reader struct {
	c     *Client
	ctx   context.Context
	paths []string
	next  int   // index of the next path to try
	off   int64 // bytes delivered so far (relative to the start offset)
	start int64
	end   int64 // exclusive; -1 = to the end of the file
	body  io.ReadCloser
	errs  []error
	// refreshes counts the calls of Refresh.
	refreshes int
	// Refresh, when set, is called after every path failed, to get fresh
	// paths from the tracker: once at once, then up to the client's
	// ReadRetries more times after a pause.
	Refresh func(ctx context.Context) ([]string, error)
}

// NewReader returns a reader of bytes [start, end) (end -1: to EOF) of
// the file at paths.
func (c *Client) NewReader(ctx context.Context, paths []string, start, end int64) *Reader {
	return &Reader{c: c, ctx: ctx, paths: paths, start: start, end: end}
}

// Open returns a reader of the whole file under key.
func (c *Client) Open(ctx context.Context, domain, key string) (*Reader, error) {
	paths, err := c.Tracker.GetPaths(ctx, domain, key, true)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, ErrNoPaths
	}
	r := c.NewReader(ctx, paths, 0, -1)
	r.Refresh = func(ctx context.Context) ([]string, error) { return c.Tracker.GetPaths(ctx, domain, key, false) }
	return r, nil
}

func (r *Reader) openNext() error {
	for {
		if r.next >= len(r.paths) {
			retries := r.c.ReadRetries
			if retries == 0 {
				retries = 3
			}
			if r.Refresh == nil || r.refreshes > max(retries, 0) {
				return fmt.Errorf("%w: %v", ErrNoPaths, errors.Join(r.errs...))
			}
			if r.refreshes > 0 {
				wait := time.Duration(250<<(r.refreshes-1)) * time.Millisecond
				select {
				case <-time.After(wait):
				case <-r.ctx.Done():
					return r.ctx.Err()
				}
			}
			r.refreshes++
			paths, err := r.Refresh(r.ctx)
			if err != nil {
				return err
			}
			r.paths, r.next = paths, 0
			continue
		}
		url := r.paths[r.next]
		r.next++
		b, err := r.c.Nodes.Get(r.ctx, url, r.start+r.off, r.end)
		if err != nil {
			r.errs = append(r.errs, err)
			continue
		}
		r.body = b
		return nil
	}
}

// Read reads the next bytes, failing over between copies.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.openNext(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		// The node failed mid-stream: resume from the next copy.
		r.errs = append(r.errs, err)
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			return n, r.ctx.Err()
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Close releases the current connection.
func (r *Reader) Close() error {
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}
