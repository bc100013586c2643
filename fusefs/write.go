package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// stream is an upload in progress: a chunked PUT fed by a pipe.
type stream struct {
	open    client.OpenResult
	pw      *io.PipeWriter
	written int64
	done    chan error // the PUT's result
}

// writeHandle holds changes to a file until they are committed (on the
// first flush or fsync with changes): either streaming to a storage node
// (new or truncated file, written in order) or in a spool file.
type writeHandle struct {
	n *fileNode

	mu       sync.Mutex // guards the fields below
	dirty    bool       // changes not yet committed
	fresh    bool       // content starts empty (create or O_TRUNC)
	st       *stream
	spool    *os.File
	reserved int64 // spool bytes counted against SpoolLimit
	size     int64
	mtime    time.Time   // set by utimes while open; zero = time of commit
	mode     os.FileMode // set by chmod while open
	reader   *readHandle // reads of unchanged content
	released bool
}

var (
	_ fs.HandleWriter   = (*writeHandle)(nil)
	_ fs.HandleReader   = (*writeHandle)(nil)
	_ fs.HandleFlusher  = (*writeHandle)(nil)
	_ fs.HandleReleaser = (*writeHandle)(nil)
)

func newWriteHandle(n *fileNode, fresh bool) *writeHandle {
	h := &writeHandle{n: n, fresh: fresh, dirty: fresh}
	n.mu.Lock()
	n.keptFID = 0 // the next read open drops pages this handle may change
	h.mode = n.mode
	if n.writer == nil {
		n.writer = h
	}
	n.mu.Unlock()
	if !fresh {
		dom, key, _ := n.where()
		if a, err := n.fs.stat(context.Background(), dom, key); err == nil {
			h.size, h.mode = a.size, a.mode
		}
	}
	return h
}

// attr is what the file looks like through this handle.
func (h *writeHandle) attr() fileAttr {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := fileAttr{exists: true, size: h.size, mtime: h.mtime, mode: h.mode}
	if a.mtime.IsZero() {
		a.mtime = time.Now()
	}
	return a
}

// setMeta records chmod/utimes for the next commit; false when there is
// nothing to commit (the caller then stores them directly).
func (h *writeHandle) setMeta(mode os.FileMode, mtime time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return false
	}
	if mode != 0 {
		h.mode = mode
	}
	if !mtime.IsZero() {
		h.mtime = mtime
	}
	return true
}

// Write takes bytes at an offset: appended to the stream when they
// follow it, else into the spool.
func (h *writeHandle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	h.n.fs.Stats.Writes.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.write(ctx, req.Data, req.Offset); err != nil {
		return errno(err)
	}
	resp.Size = len(req.Data)
	h.n.fs.Stats.BytesWritten.Add(int64(len(req.Data)))
	return nil
}

func (h *writeHandle) write(ctx context.Context, data []byte, off int64) error {
	h.dirty = true
	h.claim()
	if h.spool == nil && h.fresh && (h.st == nil && off == 0 || h.st != nil && off == h.st.written) {
		if h.st == nil {
			if err := h.startStream(ctx); err != nil {
				return err
			}
		}
		if _, err := h.st.pw.Write(data); err != nil {
			return fmt.Errorf("fusefs: upload of %s failed: %w", h.n.key, err)
		}
		h.st.written += int64(len(data))
		h.size = max(h.size, h.st.written)
		return nil
	}
	if err := h.toSpool(ctx); err != nil {
		return err
	}
	if err := h.reserve(off + int64(len(data))); err != nil {
		return err
	}
	if _, err := h.spool.WriteAt(data, off); err != nil {
		return err
	}
	h.size = max(h.size, off+int64(len(data)))
	return nil
}

// claim makes this handle the node's writer.
func (h *writeHandle) claim() {
	h.n.mu.Lock()
	h.n.writer = h
	h.n.mu.Unlock()
}

// startStream opens an upload and starts its PUT.
func (h *writeHandle) startStream(ctx context.Context) error {
	dom, key, _ := h.n.where()
	open, err := h.n.fs.cl.Tracker.CreateOpen(ctx, dom, key, h.n.fs.cfg.Class, -1)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	st := &stream{open: open, pw: pw, done: make(chan error, 1)}
	go func() {
		err := h.n.fs.cl.PutFile(context.Background(), open.Dests[0].Path, pr, -1)
		pr.CloseWithError(err)
		st.done <- err
	}()
	h.st = st
	return nil
}

// finishStream ends the PUT and returns its result.
func (h *writeHandle) finishStream() error {
	h.st.pw.Close()
	return <-h.st.done
}

// abandonStream ends a stream without committing it; its bytes are
// deleted by the tracker.
func (h *writeHandle) abandonStream() {
	if h.st == nil {
		return
	}
	h.st.pw.CloseWithError(errors.New("abandoned"))
	<-h.st.done
	dom, _, _ := h.n.where()
	h.n.fs.cl.Tracker.CreateClose(context.Background(), client.CloseArgs{Domain: dom, FID: h.st.open.FID, Dest: h.st.open.Dests[0]})
	h.st = nil
}

// reserve accounts for a spool of size bytes against SpoolLimit.
func (h *writeHandle) reserve(size int64) error {
	if size <= h.reserved {
		return nil
	}
	extra := size - h.reserved
	if h.n.fs.spoolUsed.Add(extra) > h.n.fs.cfg.SpoolLimit {
		h.n.fs.spoolUsed.Add(-extra)
		h.n.fs.log.Warn("fusefs: spool limit reached", "limit", h.n.fs.cfg.SpoolLimit, "key", h.n.key)
		return fuse.Errno(syscall.ENOSPC)
	}
	h.reserved = size
	return nil
}

// toSpool moves the handle to a spool file holding the current content:
// what was streamed so far, or the committed file, or nothing.
func (h *writeHandle) toSpool(ctx context.Context) error {
	if h.spool != nil {
		return nil
	}
	f, err := os.CreateTemp(h.n.fs.cfg.SpoolDir, "spool-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // unlinked: nothing is left behind by a crash
	h.spool = f
	h.n.fs.Stats.Spooled.Add(1)
	dom, key, _ := h.n.where()
	switch {
	case h.st != nil:
		// Finish the upload, fetch it back, and drop it.
		st := h.st
		if err := h.finishStream(); err != nil {
			h.abandonStream()
			return err
		}
		if err := h.reserve(st.written); err != nil {
			h.abandonStream()
			return err
		}
		r := h.n.fs.cl.NewReader(ctx, []string{st.open.Dests[0].Path}, 0, -1)
		_, err := io.Copy(h.spool, r)
		r.Close()
		h.st.pw = nil
		h.n.fs.cl.Tracker.CreateClose(context.WithoutCancel(ctx), client.CloseArgs{Domain: dom, FID: st.open.FID, Dest: st.open.Dests[0]})
		h.st = nil
		return err
	case !h.fresh:
		a, err := h.n.fs.stat(ctx, dom, key)
		if err != nil || !a.exists {
			return err
		}
		if err := h.reserve(a.size); err != nil {
			return err
		}
		paths, err := h.n.fs.readPaths(ctx, dom, key, a.fid)
		if err != nil {
			return err
		}
		r := h.n.fs.cl.NewReader(ctx, paths, 0, -1)
		defer r.Close()
		n, err := io.Copy(h.spool, r)
		if err == nil && n != a.size {
			err = fmt.Errorf("fusefs: read %d of %d bytes of %s", n, a.size, key)
		}
		return err
	}
	return nil
}

// truncate sets the size.
func (h *writeHandle) truncate(ctx context.Context, size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claim()
	h.dirty = true
	if size == 0 {
		h.abandonStream()
		if h.spool != nil {
			h.spool.Truncate(0)
		}
		h.fresh, h.size = true, 0
		return nil
	}
	if h.st != nil && size >= h.st.written && h.spool == nil {
		// Growing a stream: pad with zeros.
		pad := make([]byte, size-h.st.written)
		return h.write(ctx, pad, h.st.written)
	}
	if err := h.toSpool(ctx); err != nil {
		return err
	}
	if err := h.reserve(size); err != nil {
		return err
	}
	h.size = size
	return h.spool.Truncate(size)
}

// Read serves reads on a handle opened for writing.
func (h *writeHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.mu.Lock()
	if h.dirty || h.spool != nil {
		if err := h.toSpool(ctx); err != nil {
			h.mu.Unlock()
			return errno(err)
		}
		n, err := h.spool.ReadAt(resp.Data[:req.Size], req.Offset)
		h.mu.Unlock()
		if err != nil && err != io.EOF {
			return errno(err)
		}
		resp.Data = resp.Data[:n]
		return nil
	}
	if h.reader == nil {
		dom, key, _ := h.n.where()
		a, err := h.n.fs.stat(ctx, dom, key)
		if err != nil || !a.exists {
			h.mu.Unlock()
			if err == nil {
				err = fuse.ENOENT
			}
			return errno(err)
		}
		h.reader = newReadHandle(h.n, a)
	}
	r := h.reader
	h.mu.Unlock()
	return r.Read(ctx, req, resp)
}

// Flush commits changes, so that an error reaches close(2).
func (h *writeHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return errno(h.commit(ctx))
}

// commit makes the changes durable in the cluster: create_close of the
// stream, or an upload of the spool.
func (h *writeHandle) commit(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return nil
	}
	f := h.n.fs
	dom, key, _ := h.n.where()
	mtime := h.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	meta := metaOf(mtime, h.mode)
	var fid int64
	var err error
	switch {
	case h.st != nil:
		st := h.st
		if err = h.finishStream(); err == nil {
			err = f.cl.Tracker.CreateClose(ctx, client.CloseArgs{Domain: dom, Key: key, FID: st.open.FID, Dest: st.open.Dests[0], Size: st.written, Extra: metaArgs(meta)})
		}
		if err != nil {
			f.cl.Tracker.CreateClose(context.WithoutCancel(ctx), client.CloseArgs{Domain: dom, FID: st.open.FID, Dest: st.open.Dests[0]})
		}
		fid = st.open.FID
		h.st = nil
		// Later writes start from the committed content.
		h.fresh = false
	default:
		var body io.Reader = io.LimitReader(eofReader{}, 0)
		if h.spool != nil {
			body = io.NewSectionReader(h.spool, 0, h.size)
		}
		var r client.Stored
		r, err = f.cl.Store(ctx, dom, key, f.cfg.Class, body, h.size, client.UploadOptions{Meta: meta})
		fid = r.FID
	}
	if err != nil {
		f.Stats.CommitErrors.Add(1)
		f.log.Warn("fusefs: saving a file failed", "domain", dom, "key", key, "err", err)
		return err
	}
	f.Stats.Commits.Add(1)
	h.dirty = false
	a := fileAttr{exists: true, fid: fid, size: h.size, mtime: mtime, mode: h.mode}
	f.attrs.Add(ck(dom, key), a)
	f.noteCommitted(dom, key, a)
	f.mu.Lock()
	if f.pending[ck(dom, key)] == h.n {
		delete(f.pending, ck(dom, key))
	}
	f.mu.Unlock()
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Release commits what is left (errors can only be logged here) and
// frees the spool.
func (h *writeHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	if err := h.commit(context.WithoutCancel(ctx)); err != nil {
		h.n.fs.log.Error("fusefs: changes lost at release", "key", h.n.key, "err", err)
	}
	h.release()
	return nil
}

// release frees the handle's resources.
func (h *writeHandle) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	h.abandonStream()
	if h.spool != nil {
		h.spool.Close()
		h.spool = nil
	}
	h.n.fs.spoolUsed.Add(-h.reserved)
	h.reserved = 0
	if h.reader != nil {
		h.reader.Release(context.Background(), nil)
	}
	h.n.mu.Lock()
	if h.n.writer == h {
		h.n.writer = nil
	}
	h.n.mu.Unlock()
	dom, key, _ := h.n.where()
	h.n.fs.mu.Lock()
	if h.n.fs.pending[ck(dom, key)] == h.n && h.dirty {
		delete(h.n.fs.pending, ck(dom, key))
	}
	h.n.fs.mu.Unlock()
}

// metaArgs encodes metadata as create_close's plugin.meta.* pairs.
func metaArgs(meta map[string]string) protocol.Args {
	a := protocol.Args{}
	client.MetaArgs(a, meta)
	return a
}
