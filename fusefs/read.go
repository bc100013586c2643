package fusefs

import (
	"context"
	"io"
	"sync"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// block is a piece of a file read from a storage node.
type block struct {
	off  int64
	data []byte
}

// blockSize is how much is read from the stream at a time.
const blockSize = 256 << 10

// blockPool recycles block buffers, which would otherwise be most of the
// mount's garbage when streaming.
var blockPool = sync.Pool{New: func() any { b := make([]byte, blockSize); return &b }}

func putBlock(b []byte) {
	if cap(b) == blockSize {
		b = b[:blockSize]
		blockPool.Put(&b)
	}
}

// dropBlocks recycles every block of the window.
func (h *readHandle) dropBlocks() {
	for _, b := range h.blocks {
		putBlock(b.data)
	}
	h.blocks, h.kept = nil, 0
}

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
	pf     *prefetcher
	pos    int64   // offset of the next byte the prefetcher yields
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
	if off < h.windowStart() || off > h.pos+DefaultReadWindow || h.pf == nil && off != h.pos {
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

// prefetcher streams blocks from a ranged GET ahead of the reads, so
// that the network transfer overlaps with the kernel's requests.
type prefetcher struct {
	blocks chan block
	errc   chan error
	cancel context.CancelFunc
}

// prefetchDepth is how many blocks are read ahead (4 MiB).
const prefetchDepth = DefaultReadWindow / blockSize

func (h *readHandle) startPrefetch(paths []string, off int64) *prefetcher {
	ctx, cancel := context.WithCancel(h.ctx)
	p := &prefetcher{blocks: make(chan block, prefetchDepth), errc: make(chan error, 1), cancel: cancel}
	rd := h.n.fs.cl.NewReader(ctx, paths, off, h.attr.size)
	dom, key, fid := h.dom, h.key, h.attr.fid
	rd.Refresh = func(ctx context.Context) ([]string, error) { return h.n.fs.versionPaths(ctx, dom, key, fid, false) }
	size := h.attr.size
	go func() {
		defer rd.Close()
		for off < size {
			buf := (*blockPool.Get().(*[]byte))[:min(int64(blockSize), size-off)]
			n, err := io.ReadFull(rd, buf)
			if err != nil && n < len(buf) {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					err = io.ErrUnexpectedEOF // the file is shorter than the tracker says
				}
				p.errc <- err
				return
			}
			select {
			case p.blocks <- block{off: off, data: buf}:
			case <-ctx.Done():
				return
			}
			off += int64(n)
		}
	}()
	return p
}

// reopen starts a new ranged stream at off.
func (h *readHandle) reopen(ctx context.Context, off int64) error {
	if h.pf != nil {
		h.pf.cancel()
	}
	paths, err := h.n.fs.readPaths(ctx, h.dom, h.key, h.attr.fid)
	if err != nil {
		return err
	}
	h.pf = h.startPrefetch(paths, off)
	h.dropBlocks()
	h.pos = off
	return nil
}

// fill takes the next block from the prefetcher.
func (h *readHandle) fill(ctx context.Context) error {
	if h.pf == nil {
		if err := h.reopen(ctx, h.pos); err != nil {
			return err
		}
	}
	select {
	case b := <-h.pf.blocks:
		h.blocks = append(h.blocks, b)
		h.pos += int64(len(b.data))
		h.kept += int64(len(b.data))
		for h.kept > DefaultReadWindow && len(h.blocks) > 1 {
			h.kept -= int64(len(h.blocks[0].data))
			putBlock(h.blocks[0].data)
			h.blocks = h.blocks[1:]
		}
		return nil
	case err := <-h.pf.errc:
		h.pf.cancel()
		h.pf = nil // the next read starts over (and fails over) at pos
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
	if h.pf != nil {
		h.pf.cancel()
	}
	h.dropBlocks()
	return nil
}
