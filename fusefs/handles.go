package fusefs

import (
	"context"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// The FUSE side of a handle open for writing: each request is passed to
// the upload state machine (write.go) and its error mapped by errno.

var (
	_ fs.HandleWriter   = (*writeHandle)(nil)
	_ fs.HandleReader   = (*writeHandle)(nil)
	_ fs.HandleFlusher  = (*writeHandle)(nil)
	_ fs.HandleReleaser = (*writeHandle)(nil)
)

// Write takes bytes at an offset.
func (h *writeHandle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	h.n.fs.Stats.Writes.Add(1)
	if err := h.write(ctx, req.Data, req.Offset); err != nil {
		return errno(err)
	}
	resp.Size = len(req.Data)
	h.n.fs.Stats.BytesWritten.Add(int64(len(req.Data)))
	return nil
}

// Read serves reads on a handle opened for writing.
func (h *writeHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	n, r, err := h.read(ctx, resp.Data[:req.Size], req.Offset)
	if err != nil {
		return errno(err)
	}
	if r != nil {
		return r.Read(ctx, req, resp)
	}
	resp.Data = resp.Data[:n]
	return nil
}

// Flush commits changes, so that an error reaches close(2).
func (h *writeHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return errno(h.commit(ctx))
}

// Release commits what is left (errors can only be logged here: a
// failure was already reported by the flush of close(2)) and frees the
// spool.
func (h *writeHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	if err := h.commit(context.WithoutCancel(ctx)); err != nil {
		h.n.fs.log.Error("fusefs: changes lost at release", "key", h.n.name(), "err", err)
	}
	h.release()
	return nil
}
