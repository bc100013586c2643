package fusefs

import (
	"context"
	"io"
	"sync"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// block is a piece of a file read from a storage node.
type block struct {
	off  int64
	data []byte
}

// blockSize is how much is read from the stream at a time.
const blockSize = 256 << 10

// readHandle streams one file version from its copies. Sequential reads
// consume one HTTP Range GET; recently read blocks are kept (up to
// DefaultReadWindow) so that reads the kernel sends out of order, and
// small skips forward, do not restart the stream.
type readHandle struct {
	n    *fileNode
	dom  string
	key  string
	attr fileAttr

	ctx    context.Context // lives as long as the handle
	cancel context.CancelFunc

	mu     sync.Mutex // guards the fields below
	rd     *client.Reader
	pos    int64   // offset of the next byte rd yields
	blocks []block // recent blocks, ascending, ending at pos
	kept   int64   // bytes in blocks
}

var (
	_ fs.HandleReader   = (*readHandle)(nil)
	_ fs.HandleReleaser = (*readHandle)(nil)
)

func newReadHandle(n *fileNode, a fileAttr) *readHandle {
	dom, key, _ := n.where()
	ctx, cancel := context.WithCancel(context.Background())
	return &readHandle{n: n, dom: dom, key: key, attr: a, ctx: ctx, cancel: cancel}
}

// Read answers one read request.
func (h *readHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.n.fs.Stats.Reads.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	off, size := req.Offset, int64(req.Size)
	if off >= h.attr.size {
		resp.Data = resp.Data[:0]
		return nil
	}
	size = min(size, h.attr.size-off)
	end := off + size
	// Restart the stream unless the range is in the window or just ahead.
	if off < h.windowStart() || off > h.pos+DefaultReadWindow || h.rd == nil && off != h.pos {
		if err := h.reopen(ctx, off); err != nil {
			return errno(err)
		}
	}
	for h.pos < end {
		if err := h.fill(ctx); err != nil {
			return errno(err)
		}
	}
	resp.Data = h.copyOut(resp.Data[:0], off, end)
	h.n.fs.Stats.BytesRead.Add(int64(len(resp.Data)))
	return nil
}

func (h *readHandle) windowStart() int64 {
	if len(h.blocks) == 0 {
		return h.pos
	}
	return h.blocks[0].off
}

// reopen starts a new ranged stream at off.
func (h *readHandle) reopen(ctx context.Context, off int64) error {
	if h.rd != nil {
		h.rd.Close()
	}
	paths, err := h.n.fs.readPaths(ctx, h.dom, h.key, h.attr.fid)
	if err != nil {
		return err
	}
	h.rd = h.n.fs.cl.NewReader(h.ctx, paths, off, h.attr.size)
	dom, key, fid := h.dom, h.key, h.attr.fid
	h.rd.Refresh = func(ctx context.Context) ([]string, error) { return h.n.fs.versionPaths(ctx, dom, key, fid, false) }
	h.pos, h.blocks, h.kept = off, nil, 0
	return nil
}

// fill reads the next block from the stream.
func (h *readHandle) fill(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.rd == nil {
		if err := h.reopen(ctx, h.pos); err != nil {
			return err
		}
	}
	want := min(int64(blockSize), h.attr.size-h.pos)
	buf := make([]byte, want)
	n, err := io.ReadFull(h.rd, buf)
	if n > 0 {
		h.blocks = append(h.blocks, block{off: h.pos, data: buf[:n]})
		h.pos += int64(n)
		h.kept += int64(n)
		for h.kept > DefaultReadWindow && len(h.blocks) > 1 {
			h.kept -= int64(len(h.blocks[0].data))
			h.blocks = h.blocks[1:]
		}
	}
	if err != nil && n < len(buf) {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return io.ErrUnexpectedEOF // the file is shorter than the tracker says
		}
		return err
	}
	return nil
}

// copyOut appends bytes [off, end) from the window to dst.
func (h *readHandle) copyOut(dst []byte, off, end int64) []byte {
	for _, b := range h.blocks {
		bEnd := b.off + int64(len(b.data))
		if bEnd <= off || b.off >= end {
			continue
		}
		from := max(off, b.off) - b.off
		to := min(end, bEnd) - b.off
		dst = append(dst, b.data[from:to]...)
	}
	return dst
}

// Release closes the stream.
func (h *readHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rd != nil {
		h.rd.Close()
	}
	h.blocks = nil
	return nil
}
