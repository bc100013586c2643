package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// The upload state machine of a handle open for writing, free of FUSE.
//
// A new or truncated file written in order streams to a storage node as
// it is written (a chunked PUT fed by a pipe), and every byte also goes
// to a local spool file while the spool limit allows: the replay copy.
// Anything else (a write out of order, an overwrite, a truncate to a
// size, a read) makes the spool the only copy and drops the stream. On
// commit (the first flush or fsync with changes) the stream is closed
// and create_close'd; when the stream or its commit failed and the spool
// holds every byte, the spool is uploaded instead, to another
// destination. Changes that could not be saved make the handle failed:
// every later write, flush and fsync returns the error, so the program
// hears of it at close() at the latest.

// errStalled: the storage node took no bytes for StallTimeout.
var errStalled = errors.New("the storage node stopped taking bytes")

// stream is an upload in progress: a PUT fed by a pipe.
type stream struct {
	open    client.OpenResult
	dest    client.Dest
	pw      *io.PipeWriter
	written int64
	closed  bool                    // the body is complete: no more writes
	cancel  context.CancelCauseFunc // ends the PUT
	guard   *stallGuard             // armed while the node owes progress
	done    chan struct{}           // closed when the PUT returned
	err     error                   // the PUT's result, once done
}

// during runs fn, which waits on the node, ending the PUT when the node
// makes no progress for StallTimeout or ctx (the FUSE request: an
// interrupt) ends.
func (s *stream) during(ctx context.Context, fn func() error) error {
	s.guard.arm()
	defer s.guard.disarm()
	unwatch := context.AfterFunc(ctx, func() { s.cancel(context.Cause(ctx)) })
	defer unwatch()
	return fn()
}

// stallGuard cancels an upload that makes no progress for a while: armed
// while bytes or an answer are awaited, rearmed on progress.
type stallGuard struct {
	t *time.Timer
	d time.Duration
}

func newStallGuard(d time.Duration, cancel context.CancelCauseFunc) *stallGuard {
	g := &stallGuard{d: d, t: time.AfterFunc(d, func() { cancel(errStalled) })}
	g.t.Stop()
	return g
}

func (g *stallGuard) arm()    { g.t.Reset(g.d) }
func (g *stallGuard) disarm() { g.t.Stop() }

// wait returns the PUT's result (any number of times).
func (s *stream) wait() error {
	<-s.done
	return s.err
}

// writeHandle holds changes to a file until they are committed.
type writeHandle struct {
	n *fileNode

	mu       sync.Mutex // guards the fields below
	dirty    bool       // changes not yet committed
	fresh    bool       // content starts empty (create or O_TRUNC)
	st       *stream
	spool    spoolFile
	complete bool // the spool holds the whole current content
	// buffering: a new file written in order so far, its bytes in the
	// spool (none yet: no spool), no stream started: saved whole at
	// commit while it stays within SmallFileMax, streamed past it.
	buffering bool
	reserved  int64 // spool bytes counted against SpoolLimit
	size      int64
	mtime     time.Time         // set by utimes while open; zero = time of commit
	mode      os.FileMode       // set by chmod while open
	own       owner             // set by chown while open, or at create
	xattrs    map[string]string // the file's user.* attributes, kept by the next version
	reader    *readHandle       // reads of unchanged content
	failed    error             // changes lost: returned by every later call
	released  bool
	// patching: the spool holds only the ranges written (exts), over the
	// committed version, which commit patches in place (edit_file)
	// rather than uploading the whole file again.
	patching bool
	exts     []extent
	// pre is the create_open sent when the file was created, for its
	// first save (see reservation).
	pre *reservation
}

// reservation is a create_open sent as a file is created, so that its
// answer is at hand when the file is saved: a small file's close then
// waits for its PUTs and create_close only. One not used (the file was
// unlinked first, or saved by another handle) is abandoned.
type reservation struct {
	dom  string
	made time.Time
	done chan struct{}
	open client.OpenResult
	err  error
}

// reserveFid sends key's create_open in the background.
func (f *FS) reserveFid(dom, key string) *reservation {
	r := &reservation{dom: dom, made: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.open, r.err = f.cl.CreateOpen(ctx, dom, key, f.cfg.Class, -1)
	}()
	return r
}

// wait returns the reservation's answer once it is there.
func (r *reservation) wait(ctx context.Context) (client.OpenResult, error) {
	select {
	case <-r.done:
		return r.open, r.err
	case <-ctx.Done():
		return client.OpenResult{}, ctx.Err()
	}
}

// openUpload opens an upload of key: pre's answer when it has one (pre
// may be nil), else a create_open sent now.
func (f *FS) openUpload(ctx context.Context, dom, key string, size int64, pre *reservation) (client.OpenResult, error) {
	if pre != nil {
		open, err := pre.wait(ctx)
		switch {
		case err == nil:
			return open, nil
		case ctx.Err() != nil:
			f.dropReservation(pre)
			return client.OpenResult{}, err
		}
		// It failed: asked again.
	}
	return f.cl.CreateOpen(ctx, dom, key, f.cfg.Class, size)
}

// dropReservation abandons r, once answered, in the background.
func (f *FS) dropReservation(r *reservation) {
	go func() {
		<-r.done
		if r.err == nil && len(r.open.Dests) > 0 {
			f.abandon(r.dom, r.open.FID, r.open.Dests[0])
		}
	}()
}

// reservationMaxAge is the age past which a reservation is not used: a
// file open for long would meet its upload reaped by the tracker.
const reservationMaxAge = time.Minute

// takeReservation returns the handle's reservation, if any and fresh,
// and forgets it. h.mu is held.
func (h *writeHandle) takeReservation() *reservation {
	r := h.pre
	h.pre = nil
	if r != nil && time.Since(r.made) > reservationMaxAge {
		h.n.fs.dropReservation(r)
		return nil
	}
	return r
}

// extent is a range [off, end) of a file.
type extent struct{ off, end int64 }

// addExtent adds [off, end) to the sorted, disjoint exts, merging what
// it overlaps or touches.
func addExtent(exts []extent, off, end int64) []extent {
	out := make([]extent, 0, len(exts)+1)
	i := 0
	for ; i < len(exts) && exts[i].end < off; i++ {
		out = append(out, exts[i])
	}
	for ; i < len(exts) && exts[i].off <= end; i++ {
		off, end = min(off, exts[i].off), max(end, exts[i].end)
	}
	out = append(out, extent{off, end})
	return append(out, exts[i:]...)
}

// newWriteHandle returns a handle open for writing n. A file opened
// without O_TRUNC starts from its committed content, whose attributes
// must be known: a tracker error fails the open rather than shrinking
// the file on commit.
func newWriteHandle(ctx context.Context, n *fileNode, fresh bool) (*writeHandle, error) {
	h := &writeHandle{n: n, fresh: fresh, dirty: fresh, complete: fresh, buffering: fresh}
	n.mu.Lock()
	h.mode, h.own = n.mode, n.own
	n.mu.Unlock()
	if fresh && !n.isPending() {
		// O_TRUNC of a committed file: the new version keeps its mode and
		// owner, as on a local disk.
		dom, key := n.where()
		a, err := n.fs.stat(ctx, dom, key)
		if err != nil {
			return nil, err
		}
		if a.exists {
			h.mode, h.own, h.xattrs = a.mode, a.own, a.xattrs
		}
	}
	if !fresh {
		dom, key := n.where()
		a, err := n.fs.stat(ctx, dom, key)
		if err != nil {
			return nil, err
		}
		if a.exists {
			h.size, h.mode, h.own, h.xattrs = a.size, a.mode, a.own, a.xattrs
		} else if !n.isPending() {
			return nil, syscall.ENOENT
		} else {
			// Created and not yet committed by another handle: empty.
			h.fresh, h.complete, h.buffering = true, true, true
		}
	}
	n.addWriter(h)
	return h, nil
}

// attr is what the file looks like through this handle.
func (h *writeHandle) attr() fileAttr {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := fileAttr{exists: true, size: h.size, mtime: h.mtime, mode: h.mode, own: h.own, xattrs: h.xattrs}
	if a.mtime.IsZero() {
		a.mtime = time.Now()
	}
	return a
}

// hasChanges reports whether the handle holds uncommitted changes that
// can still be saved. A failed handle has none: its changes are lost (the
// program heard so), and the file is again what the cluster holds.
func (h *writeHandle) hasChanges() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live()
}

// live reports whether the handle has changes to commit; h.mu held.
func (h *writeHandle) live() bool { return h.dirty && h.failed == nil }

// setXattrs changes the attributes for the next commit with apply; false
// when there is nothing to commit (the caller then stores them directly).
func (h *writeHandle) setXattrs(apply func(map[string]string) (map[string]string, error)) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.live() {
		return false, nil
	}
	xs, err := apply(h.xattrs)
	if err != nil {
		return true, err
	}
	h.xattrs = xs
	return true, nil
}

// setOwner records chown for the next commit; false when there is
// nothing to commit (the caller then stores it directly).
func (h *writeHandle) setOwner(caller uint32, uid, gid *uint32) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.live() {
		return false, nil
	}
	def := h.n.fs.defaultOwner()
	if err := chownAllowed(caller, h.own, def, uid, gid); err != nil {
		return true, err
	}
	h.own = applyOwner(h.own, def, uid, gid)
	return true, nil
}

// setMeta records chmod/utimes for the next commit; false when there is
// nothing to commit (the caller then stores them directly).
func (h *writeHandle) setMeta(mode os.FileMode, mtime time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.live() {
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

// write takes bytes at an offset: appended to the stream when they
// follow it, else into the spool.
func (h *writeHandle) write(ctx context.Context, data []byte, off int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writeLocked(ctx, data, off)
}

func (h *writeHandle) writeLocked(ctx context.Context, data []byte, off int64) error {
	if h.failed != nil {
		return h.failed
	}
	h.dirty = true
	h.n.markWriter(h)
	err := h.place(ctx, data, off)
	if err != nil && h.failed == nil {
		// A write refused makes the handle failed: close() must not save
		// a version without the program's bytes (the empty file of an
		// O_TRUNC, a file with a hole where the write was).
		return h.fail(err)
	}
	return err
}

// place puts written bytes in the stream when they follow it, else in
// the spool.
func (h *writeHandle) place(ctx context.Context, data []byte, off int64) error {
	if h.st != nil && !h.st.closed && off == h.st.written {
		return h.streamWrite(ctx, data)
	}
	if h.buffering && off == h.size {
		end := off + int64(len(data))
		if end <= h.n.fs.cfg.SmallFileMax {
			return h.hold(data)
		}
		h.buffering = false
		err := h.startStream(ctx)
		if err == nil {
			if err := h.streamHeld(ctx); err != nil {
				return err
			}
			if h.st != nil {
				return h.streamWrite(ctx, data)
			}
			// The stream failed; the spool, complete, carries on.
		} else if permanent(err) {
			return err // the name is refused: nothing written can be saved
		} else {
			// The tracker could not open an upload now: the bytes go to the
			// spool, saved (with a new try) at close.
			h.n.fs.log.Warn("fusefs: opening an upload failed; the file will be saved from its spool", "key", h.n.name(), "err", err)
		}
	}
	h.buffering = false
	if (h.patching || h.startPatch()) && off <= h.size {
		// A ranged PUT can carry it: written bytes only, where they go.
		end := off + int64(len(data))
		exts := addExtent(h.exts, off, end)
		var held int64 // bytes the spool holds: rewriting a range costs none
		for _, x := range exts {
			held += x.end - x.off
		}
		if err := h.reserve(held); err != nil {
			return err
		}
		if _, err := h.spool.WriteAt(data, off); err != nil {
			return err
		}
		h.exts = exts
		h.size = max(h.size, end)
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

// hold appends data to a small new file's bytes, kept until commit.
func (h *writeHandle) hold(data []byte) error {
	if h.spool == nil {
		sp, err := h.n.fs.newSpool()
		if err != nil {
			return err
		}
		h.spool = sp
	}
	end := h.size + int64(len(data))
	if err := h.reserve(end); err != nil {
		return err
	}
	if _, err := h.spool.WriteAt(data, h.size); err != nil {
		return err
	}
	h.size = end
	return nil
}

// streamHeld sends the bytes held so far into a stream just started.
// A failing stream is dropped (streamWrite); the spool holds them all.
func (h *writeHandle) streamHeld(ctx context.Context) error {
	buf := make([]byte, min(h.size, 128<<10))
	for off := int64(0); off < h.size && h.st != nil; {
		n, err := h.spool.ReadAt(buf[:min(int64(len(buf)), h.size-off)], off)
		if n == 0 && err != nil {
			return err
		}
		if err := h.streamWrite(ctx, buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// startPatch starts keeping only the written ranges of a big committed
// file, to patch it in place at commit, when the cluster may do that.
func (h *writeHandle) startPatch() bool {
	f := h.n.fs
	if h.fresh || h.st != nil || h.spool != nil || f.cfg.PatchMinSize < 0 || h.size < f.cfg.PatchMinSize || f.noEdit.Load() {
		return false
	}
	sp, err := f.newSpool()
	if err != nil {
		return false
	}
	h.spool, h.patching, h.exts = sp, true, nil
	return true
}

// unpatch turns the ranges of a patch into a whole copy: the committed
// version fetched into a new spool, the ranges laid over it.
func (h *writeHandle) unpatch(ctx context.Context) error {
	p, exts, size := h.spool, h.exts, h.size
	h.spool, h.patching, h.exts, h.complete = nil, false, nil, false
	defer p.Close()
	if err := h.toSpool(ctx); err != nil {
		return err
	}
	if err := h.reserve(size); err != nil {
		return err
	}
	for _, x := range exts {
		if _, err := io.Copy(io.NewOffsetWriter(h.spool, x.off), io.NewSectionReader(p, x.off, x.end-x.off)); err != nil {
			return err
		}
	}
	h.size = max(h.size, size)
	return nil
}

// streamWrite appends data to the stream and to the replay spool. A
// stream that fails is dropped: the spool, when complete, carries on.
func (h *writeHandle) streamWrite(ctx context.Context, data []byte) error {
	st := h.st
	if h.complete {
		if err := h.tee(data, st.written); err != nil {
			h.dropSpool()
		}
	}
	err := st.during(ctx, func() error {
		_, err := st.pw.Write(data)
		return err
	})
	if err == nil {
		st.written += int64(len(data))
		h.size = max(h.size, st.written)
		return nil
	}
	end := st.written + int64(len(data))
	err = fmt.Errorf("upload of %s to %s: %w", h.n.name(), st.dest.Path, st.wait())
	h.n.fs.noteFailedDest(st.dest.Devid)
	h.abandonStream()
	if h.complete {
		// The spool has every byte, this write's included: it is
		// uploaded elsewhere at commit.
		h.n.fs.log.Warn("fusefs: streaming upload failed; the file will be saved from its spool", "key", h.n.name(), "err", err)
		h.size = max(h.size, end)
		return nil
	}
	return h.fail(err)
}

// fail makes the handle failed with err, which it returns: its changes
// are lost, and the file is again what the cluster holds. A new file
// that cannot be saved is not in the cluster: it goes now, not when the
// kernel releases the handle after close(). The kernel may hold this
// handle's view (the empty file of an O_TRUNC, its size while written),
// so it is told to ask again.
func (h *writeHandle) fail(err error) error {
	h.n.fs.log.Debug("fusefs: changes lost", "key", h.n.name(), "err", err)
	h.failed = err
	h.n.clearPending()
	h.n.fs.forgetKernel(h.n)
	return err
}

// tee copies streamed bytes into the spool while the limit allows.
func (h *writeHandle) tee(data []byte, off int64) error {
	if h.spool == nil {
		f, err := h.n.fs.newSpool()
		if err != nil {
			return err
		}
		h.spool = f
	}
	if err := h.reserve(off + int64(len(data))); err != nil {
		return err
	}
	_, err := h.spool.WriteAt(data, off)
	return err
}

// dropSpool forgets a replay spool that could not be kept.
func (h *writeHandle) dropSpool() {
	if h.spool != nil {
		h.spool.Close()
		h.spool = nil
	}
	h.complete = false
	h.n.fs.spoolUsed.Add(-h.reserved)
	h.reserved = 0
}

// startStream opens an upload and starts its PUT.
func (h *writeHandle) startStream(ctx context.Context) error {
	dom, key := h.n.where()
	open, err := h.n.fs.openUpload(ctx, dom, key, -1, h.takeReservation())
	if err != nil {
		return err
	}
	dests := h.n.fs.orderDests(open.Dests)
	pr, pw := io.Pipe()
	pctx, cancel := context.WithCancelCause(context.Background())
	st := &stream{open: open, dest: dests[0], pw: pw, cancel: cancel, done: make(chan struct{}),
		guard: newStallGuard(h.n.fs.cfg.StallTimeout, cancel)}
	go func() {
		err := h.n.fs.cl.Put(pctx, st.dest.Path, pr, -1)
		if err != nil && context.Cause(pctx) != nil && !errors.Is(err, context.Cause(pctx)) {
			err = fmt.Errorf("%w (%w)", context.Cause(pctx), err)
		}
		pr.CloseWithError(err)
		st.err = err
		close(st.done)
		cancel(nil)
	}()
	h.st = st
	return nil
}

// finishStream ends the PUT's body and waits for its answer, at most
// StallTimeout (or until ctx ends).
func (h *writeHandle) finishStream(ctx context.Context) error {
	st := h.st
	st.closed = true
	st.pw.Close()
	return st.during(ctx, st.wait)
}

// abandonStream ends a stream without committing it; its bytes are
// deleted by the tracker.
func (h *writeHandle) abandonStream() {
	st := h.st
	if st == nil {
		return
	}
	h.st = nil
	st.cancel(errors.New("abandoned"))
	st.pw.CloseWithError(errors.New("abandoned"))
	st.wait()
	dom, _ := h.n.where()
	h.n.fs.abandon(dom, st.open.FID, st.dest)
}

// abandon tells the tracker an upload will not be committed (its bytes
// are deleted), best effort and detached from the request, which may be
// what failed.
func (f *FS) abandon(dom string, fid int64, dest client.Dest) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.cl.CreateClose(ctx, client.CloseArgs{Domain: dom, FID: fid, Dest: dest})
}

// reserve accounts for a spool of size bytes against SpoolLimit.
func (h *writeHandle) reserve(size int64) error {
	if size <= h.reserved {
		return nil
	}
	extra := size - h.reserved
	if h.n.fs.spoolUsed.Add(extra) > h.n.fs.cfg.SpoolLimit {
		h.n.fs.spoolUsed.Add(-extra)
		h.n.fs.log.Warn("fusefs: spool limit reached", "limit", h.n.fs.cfg.SpoolLimit, "key", h.n.name())
		return syscall.ENOSPC
	}
	h.reserved = size
	return nil
}

// toSpool makes the spool the one copy of the content: the replay copy
// of a stream (the stream is dropped), what was streamed so far fetched
// back from the node, or the committed file. On failure nothing of a
// partial copy is kept; a stream whose bytes cannot be had back fails
// the handle.
func (h *writeHandle) toSpool(ctx context.Context) error {
	if h.failed != nil {
		return h.failed
	}
	if h.patching {
		return h.unpatch(ctx)
	}
	if h.spool != nil && h.complete {
		h.abandonStream()
		return nil
	}
	if h.spool != nil {
		h.dropSpool()
	}
	f, err := h.n.fs.newSpool()
	if err != nil {
		return err
	}
	h.spool = f
	ok := false
	defer func() {
		if !ok {
			h.dropSpool()
		}
	}()
	dom, key := h.n.where()
	switch {
	case h.st != nil:
		// Finish the upload, fetch it back, and drop it.
		st := h.st
		if err := h.finishStream(ctx); err != nil {
			h.abandonStream()
			return h.fail(fmt.Errorf("upload of %s: %w", key, err))
		}
		if err := h.reserve(st.written); err != nil {
			return err // the stream is kept: a commit can still save it
		}
		r := h.n.fs.cl.OpenRange(ctx, []string{st.dest.Path}, 0, st.written, nil)
		n, err := io.Copy(h.spool, r)
		r.Close()
		if err == nil && n != st.written {
			err = fmt.Errorf("read back %d of %d bytes", n, st.written)
		}
		if err != nil {
			return fmt.Errorf("fusefs: reading back the upload of %s: %w", key, err)
		}
		h.abandonStream()
	case !h.fresh:
		a, err := h.n.fs.stat(ctx, dom, key)
		if err != nil {
			return err
		}
		if !a.exists {
			return syscall.ENOENT
		}
		if err := h.reserve(a.size); err != nil {
			return err
		}
		paths, err := h.n.fs.readPaths(ctx, dom, key, a.fid)
		if err != nil {
			return err
		}
		r := h.n.fs.cl.OpenRange(ctx, paths, 0, a.size, nil)
		n, err := io.Copy(h.spool, r)
		r.Close()
		if err == nil && n != a.size {
			err = fmt.Errorf("fusefs: read %d of %d bytes of %s", n, a.size, key)
		}
		if err != nil {
			return err
		}
	}
	h.n.fs.Stats.Spooled.Add(1)
	h.complete, ok = true, true
	return nil
}

// truncate sets the size.
func (h *writeHandle) truncate(ctx context.Context, size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return h.failed
	}
	h.n.markWriter(h)
	h.dirty = true
	if size == 0 {
		h.abandonStream()
		if h.spool != nil {
			h.spool.Truncate(0)
		}
		// Empty content is complete: a stream that starts here keeps
		// its replay copy.
		h.fresh, h.complete, h.buffering, h.size = true, true, true, 0
		return nil
	}
	if h.st != nil && !h.st.closed && size >= h.st.written {
		// Growing a stream: pad with zeros.
		pad := make([]byte, size-h.st.written)
		return h.writeLocked(ctx, pad, h.st.written)
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

// read serves a read on a handle open for writing: from the spool when
// there are changes, else from the committed file.
func (h *writeHandle) read(ctx context.Context, p []byte, off int64) (int, *readHandle, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return 0, nil, h.failed
	}
	if h.dirty || h.spool != nil {
		if err := h.toSpool(ctx); err != nil {
			return 0, nil, err
		}
		if off >= h.size {
			return 0, nil, nil
		}
		n, err := h.spool.ReadAt(p[:min(int64(len(p)), h.size-off)], off)
		if err == io.EOF {
			err = nil
		}
		return n, nil, err
	}
	if h.reader == nil {
		dom, key := h.n.where()
		a, err := h.n.fs.stat(ctx, dom, key)
		if err != nil {
			return 0, nil, err
		}
		if !a.exists {
			return 0, nil, syscall.ENOENT
		}
		h.reader = newReadHandle(h.n, a)
	}
	return 0, h.reader, nil
}

// commit makes the changes durable in the cluster: create_close of the
// stream, or an upload of the spool. A file unlinked while open is not
// saved. An error makes the handle failed.
func (h *writeHandle) commit(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return h.failed
	}
	if !h.dirty {
		return nil
	}
	f := h.n.fs
	n := h.n
	n.opMu.Lock() // no rename or unlink of the name while it is saved
	defer n.opMu.Unlock()
	dom, key := n.where()
	if n.isUnlinked() {
		h.abandonStream()
		h.dirty = false
		return nil
	}
	mtime := h.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	meta := metaOf(mtime, h.mode)
	h.own.addTo(meta)
	addXattrs(meta, h.xattrs)
	var fid int64
	var err error
	if st := h.st; st != nil {
		if err = h.finishStream(ctx); err == nil {
			err = f.cl.CreateClose(ctx, client.CloseArgs{Domain: dom, Key: key, FID: st.open.FID, Dest: st.dest, Size: st.written, Extra: metaArgs(meta)})
			if err == nil {
				fid = st.open.FID
				h.st = nil
			}
		} else {
			f.noteFailedDest(st.dest.Devid)
		}
		if err != nil {
			h.abandonStream()
			if h.complete && !permanent(err) {
				f.log.Warn("fusefs: committing a streamed upload failed; saving it from its spool", "domain", dom, "key", key, "err", err)
				err = nil // saved from the spool below
			}
		}
		// Later writes start from the committed content.
		h.fresh = false
	}
	if fid == 0 && err == nil && h.patching {
		fid, err = h.commitPatch(ctx, dom, key, meta)
	}
	if fid == 0 && err == nil {
		fid, err = f.store(ctx, dom, key, h.spool, h.size, meta, h.takeReservation())
	}
	if err != nil {
		f.Stats.CommitErrors.Add(1)
		f.log.Warn("fusefs: saving a file failed", "domain", dom, "key", key, "err", err)
		return h.fail(fmt.Errorf("saving %s: %w", key, err))
	}
	f.Stats.Commits.Add(1)
	f.log.Debug("fusefs: saved", "domain", dom, "key", key, "fid", fid, "size", h.size)
	h.dirty = false
	a := fileAttr{exists: true, fid: fid, size: h.size, mtime: mtime, mode: h.mode, own: h.own, xattrs: h.xattrs, saved: true}
	f.committed(dom, key, a)
	n.clearPending()
	return nil
}

// commitPatch saves a patching handle in place (FS.patch). When the
// cluster cannot, the whole file is built here and the caller uploads it
// (fid 0, no error); a tracker or nodes without edit_file are not asked
// again.
func (h *writeHandle) commitPatch(ctx context.Context, dom, key string, meta map[string]string) (int64, error) {
	f := h.n.fs
	fid, err := f.patch(ctx, dom, key, h.spool, h.exts, h.size, meta)
	if err == nil {
		f.Stats.Patched.Add(1)
		h.patching, h.exts = false, nil
		h.dropSpool()
		return fid, nil
	}
	if core.Is(core.Unsupported, err) {
		f.noEdit.Store(true)
	}
	f.log.Warn("fusefs: patching a file in place failed; uploading it whole", "domain", dom, "key", key, "err", err)
	return 0, h.unpatch(ctx)
}

// patch saves a new version of key made of its committed version with
// the ranges exts of spool laid over it, size bytes in all, without
// sending the rest: edit_file has a node copy the committed version,
// which is moved into the new fid's place, patched with ranged PUTs and
// committed. Anything failing abandons the new fid; the committed
// version is untouched.
func (f *FS) patch(ctx context.Context, dom, key string, spool io.ReaderAt, exts []extent, size int64, meta map[string]string) (int64, error) {
	e, err := f.cl.EditFile(ctx, dom, key)
	if err != nil {
		return 0, err
	}
	dest := client.Dest{Devid: e.Devid, Path: e.NewPath}
	err = f.cl.Move(ctx, e.OldPath, e.NewPath)
	for _, x := range exts {
		if err != nil {
			break
		}
		err = f.watched(ctx, io.NewSectionReader(spool, x.off, x.end-x.off), func(ctx context.Context, body io.Reader) error {
			return f.cl.PutRange(ctx, e.NewPath, body, x.off, x.end-x.off)
		})
	}
	if err == nil {
		err = f.cl.CreateClose(ctx, client.CloseArgs{Domain: dom, Key: key, FID: e.FID, Dest: dest, Size: size, Extra: metaArgs(meta)})
		if err == nil {
			return e.FID, nil
		}
	}
	f.abandon(dom, e.FID, dest)
	return 0, err
}

// permanent reports whether a commit failed for a reason that saving the
// file again would not cure (its domain is gone, its class or key is
// refused).
func permanent(err error) bool {
	switch core.KindOf(err) {
	case core.NotFound, core.Invalid, core.TooLong:
		return true
	}
	return false
}

// release frees the handle's resources; changes not committed by now
// are dropped (Release commits first).
func (h *writeHandle) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	if h.pre != nil {
		h.n.fs.dropReservation(h.pre)
		h.pre = nil
	}
	h.abandonStream()
	h.dropSpool()
	if h.reader != nil {
		h.reader.release()
	}
	h.n.removeWriter(h)
}

// store uploads size bytes of spool (nil: an empty file) as a new
// version of key: create_open, a PUT to a destination (those that failed
// lately go last), create_close. A destination that fails costs its fid:
// the fid is abandoned, so that the tracker deletes whatever of the PUT
// still lands there (a stopped node, a cut-off link), and the next
// destination not tried yet gets a new fid. Committed elsewhere, the fid
// would leave those bytes with nothing to delete them.
func (f *FS) store(ctx context.Context, dom, key string, spool io.ReaderAt, size int64, meta map[string]string, pre *reservation) (int64, error) {
	tried := map[int]bool{}
	var lastErr error
	closeRetried := false
	for {
		open, err := f.openUpload(ctx, dom, key, size, pre)
		pre = nil
		if err != nil {
			if lastErr != nil {
				return 0, lastErr
			}
			return 0, err
		}
		var dests []client.Dest
		for _, d := range f.orderDests(open.Dests) {
			if !tried[d.Devid] {
				dests = append(dests, d)
			}
		}
		if len(dests) == 0 {
			if len(open.Dests) > 0 {
				f.abandon(dom, open.FID, open.Dests[0])
			}
			if lastErr == nil {
				lastErr = core.Errorf(core.Unavailable, "mogilefs: create_open of "+dom+"/"+key+" gave no destination")
			}
			return 0, lastErr
		}
		// A small file goes to all its copies at once where the tracker
		// takes them so; else to one, and the tracker replicates it.
		copies := 1
		if open.Copies > 1 && size <= f.cfg.SmallFileMax {
			copies = min(open.Copies, len(dests))
		}
		dests = dests[:copies]
		var saved, failed []client.Dest
		for i, err := range f.putAll(ctx, dests, spool, size) {
			tried[dests[i].Devid] = true
			if err == nil {
				saved = append(saved, dests[i])
				continue
			}
			failed = append(failed, dests[i])
			lastErr = err
			if ctx.Err() == nil {
				f.noteFailedDest(dests[i].Devid)
			}
		}
		if len(saved) > 0 {
			err = f.cl.CreateClose(ctx, client.CloseArgs{Domain: dom, Key: key, FID: open.FID, Dest: saved[0], Copies: saved[1:], Failed: failed, Size: size, Extra: metaArgs(meta)})
			if err == nil {
				return open.FID, nil
			}
			f.abandon(dom, open.FID, saved[0])
			if permanent(err) || ctx.Err() != nil || closeRetried {
				return 0, err
			}
			// The tracker may have committed it before its answer was lost:
			// a new version of the same bytes is then saved over it.
			f.log.Warn("fusefs: committing an upload failed; saving it again", "domain", dom, "key", key, "err", err)
			closeRetried, tried, lastErr = true, map[int]bool{}, err
			continue
		}
		f.abandon(dom, open.FID, dests[0])
		if ctx.Err() != nil {
			return 0, lastErr
		}
	}
}

// putAll PUTs size bytes of spool (nil: none) to each of dests at once
// and returns each one's result.
func (f *FS) putAll(ctx context.Context, dests []client.Dest, spool io.ReaderAt, size int64) []error {
	errs := make([]error, len(dests))
	put := func(i int) {
		var body io.Reader = eofReader{}
		if spool != nil {
			body = io.NewSectionReader(spool, 0, size)
		}
		errs[i] = f.putWatched(ctx, dests[i].Path, body, size)
	}
	var wg sync.WaitGroup
	for i := 1; i < len(dests); i++ {
		wg.Go(func() { put(i) })
	}
	put(0)
	wg.Wait()
	return errs
}

// putWatched is a PUT that fails when the node takes no bytes (or sends
// no answer after the last) for StallTimeout.
func (f *FS) putWatched(ctx context.Context, url string, body io.Reader, size int64) error {
	return f.watched(ctx, body, func(ctx context.Context, body io.Reader) error {
		return f.cl.Put(ctx, url, body, size)
	})
}

// watched runs a request sending body, failing it when the node takes no
// bytes (or sends no answer after the last) for StallTimeout.
func (f *FS) watched(ctx context.Context, body io.Reader, send func(ctx context.Context, body io.Reader) error) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	guard := newStallGuard(f.cfg.StallTimeout, cancel)
	guard.arm()
	defer guard.disarm()
	err := send(pctx, &progressReader{r: body, progress: guard.arm})
	if err != nil && context.Cause(pctx) == errStalled {
		err = fmt.Errorf("%w: %w", errStalled, err)
	}
	return err
}

// progressReader calls progress after every read.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.progress()
	return n, err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// noteFailedDest remembers a device an upload just failed on: uploads
// try it last for a while.
func (f *FS) noteFailedDest(devid int) {
	f.failedDests.Add(strconv.Itoa(devid), true)
}

// orderDests puts destinations that failed lately last.
func (f *FS) orderDests(ds []client.Dest) []client.Dest {
	out := make([]client.Dest, 0, len(ds))
	var late []client.Dest
	for _, d := range ds {
		if _, bad := f.failedDests.Get(strconv.Itoa(d.Devid)); bad {
			late = append(late, d)
		} else {
			out = append(out, d)
		}
	}
	return append(out, late...)
}

// metaArgs encodes metadata as create_close's plugin.meta.* pairs.
func metaArgs(meta map[string]string) protocol.Args {
	a := protocol.Args{}
	protocol.EncodeMeta(a, meta)
	return a
}
