package fusefs

import (
	"context"
	"io"
	"sync"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// block is a piece of a file read from a storage node ahead of the
// request that wants it.
type block struct {
	off  int64
	data []byte
}

// blockSize is the size of a stashed block.
const blockSize = 256 << 10

// blockPool recycles stash buffers.
var blockPool = sync.Pool{New: func() any { b := make([]byte, blockSize); return &b }}

func putBlock(b []byte) {
	if cap(b) == blockSize {
		b = b[:blockSize]
		blockPool.Put(&b)
	}
}

// readHandle streams one file version from its copies over one HTTP
// Range GET. A request at the stream's position is read from the
// connection straight into the reply (the socket buffer is the
// read-ahead: the node keeps sending while the kernel takes the last
// reply). The kernel sends read-ahead requests concurrently, so they can
// arrive out of order: bytes skipped to serve a later request are
// stashed (up to DefaultReadWindow) for the earlier one. A read further
// ahead, or behind the stash, starts a new stream.
type readHandle struct {
	n    *fileNode
	dom  string
	key  string
	attr fileAttr

	ctx    context.Context // lives as long as the handle
	cancel context.CancelFunc

	mu     sync.Mutex // guards the fields below
	rd     io.ReadCloser
	stop   context.CancelFunc // ends rd's stream
	pos    int64              // offset of the next byte rd yields
	stash  []block            // bytes read past, oldest first
	stashN int64              // bytes in stash
}

var (
	_ fs.HandleReader   = (*readHandle)(nil)
	_ fs.HandleReleaser = (*readHandle)(nil)
)

func newReadHandle(n *fileNode, a fileAttr) *readHandle {
	dom, key := n.where()
	ctx, cancel := context.WithCancel(context.Background())
	return &readHandle{n: n, dom: dom, key: key, attr: a, ctx: ctx, cancel: cancel}
}

// Read answers one read request.
func (h *readHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.n.fs.Stats.Reads.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	off := req.Offset
	if off >= h.attr.size {
		resp.Data = resp.Data[:0]
		return nil
	}
	end := min(off+int64(req.Size), h.attr.size)
	data := resp.Data[:0]
	if int64(cap(data)) < end-off {
		data = make([]byte, 0, end-off)
	}
	cur := off
	for cur < end {
		b, ok := h.stashed(cur)
		if !ok {
			break
		}
		data = append(data, b.data[cur-b.off:min(end, b.off+int64(len(b.data)))-b.off]...)
		cur = off + int64(len(data))
	}
	if cur < end {
		if err := h.seek(ctx, cur); err != nil {
			return errno(err)
		}
		n := int(end - cur)
		if err := h.readFull(ctx, data[len(data):len(data)+n]); err != nil {
			return errno(err)
		}
		data = data[:len(data)+n]
	}
	resp.Data = data
	h.n.fs.Stats.BytesRead.Add(int64(len(data)))
	return nil
}

// stashed returns the stash block holding offset off.
func (h *readHandle) stashed(off int64) (block, bool) {
	for _, b := range h.stash {
		if b.off <= off && off < b.off+int64(len(b.data)) {
			return b, true
		}
	}
	return block{}, false
}

// seek makes the stream yield off next: by stashing the bytes up to it
// when it is a little ahead, else by starting a new stream there.
func (h *readHandle) seek(ctx context.Context, off int64) error {
	if h.rd != nil && off >= h.pos && off-h.pos <= DefaultReadWindow {
		for h.pos < off {
			buf := (*blockPool.Get().(*[]byte))[:min(int64(blockSize), off-h.pos)]
			if err := h.readFull(ctx, buf); err != nil {
				putBlock(buf)
				return err
			}
			h.keep(block{off: h.pos - int64(len(buf)), data: buf})
		}
		return nil
	}
	return h.reopen(ctx, off)
}

// keep adds b to the stash, dropping the oldest blocks beyond the window.
func (h *readHandle) keep(b block) {
	h.stash = append(h.stash, b)
	h.stashN += int64(len(b.data))
	for h.stashN > DefaultReadWindow && len(h.stash) > 1 {
		h.stashN -= int64(len(h.stash[0].data))
		putBlock(h.stash[0].data)
		h.stash = h.stash[1:]
	}
}

// readFull fills p from the stream and advances pos. On failure the
// stream is dropped; the next read starts over (and fails over) at pos.
// An interrupted request ends the stream at once.
func (h *readHandle) readFull(ctx context.Context, p []byte) error {
	stop := h.stop
	unwatch := context.AfterFunc(ctx, stop)
	n, err := io.ReadFull(h.rd, p)
	unwatch()
	if err != nil {
		h.closeStream()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = io.ErrUnexpectedEOF // the file is shorter than the tracker says
		}
		return err
	}
	h.pos += int64(n)
	return nil
}

// reopen starts a new ranged stream at off.
func (h *readHandle) reopen(ctx context.Context, off int64) error {
	h.closeStream()
	paths, err := h.n.fs.readPaths(ctx, h.dom, h.key, h.attr.fid)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(h.ctx)
	dom, key, fid := h.dom, h.key, h.attr.fid
	rd := h.n.fs.cl.OpenRange(sctx, paths, off, h.attr.size, func(ctx context.Context) ([]string, error) {
		return h.n.fs.versionPaths(ctx, dom, key, fid, false)
	})
	h.rd, h.stop, h.pos = rd, stop, off
	return nil
}

// closeStream ends the current stream, if any.
func (h *readHandle) closeStream() {
	if h.rd != nil {
		h.stop()
		h.rd.Close()
		h.rd, h.stop = nil, nil
	}
}

// Release closes the stream.
func (h *readHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.release()
	return nil
}

func (h *readHandle) release() {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeStream()
	for _, b := range h.stash {
		putBlock(b.data)
	}
	h.stash, h.stashN = nil, 0
}
