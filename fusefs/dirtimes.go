package fusefs

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// A directory's mtime moves when this mount makes, removes or renames an
// entry in it, as on a local disk: git's untracked cache and Python's
// import cache rely on it. The new time is shown at once and written to
// the directory's marker behind, at most once every dirFlushEvery per
// directory, so that a busy directory costs one metadata update then
// rather than one per file. (git writes its objects into 256 directories
// at once: a flush every second wrote each of them every second, 7,600
// tracker commits for 12,900 objects.) A directory without a marker (made by another client's keys)
// or on a tracker without the metadata extension keeps it while mounted.
// utimes replaces what is pending: rsync -a and tar set directory times
// after filling them, and that time is the one kept.

// dirFlushEvery is how often changed directory times are written: as
// often as the mount's other deferred metadata changes are made durable
// (client.Options.SyncDelay), and within the time another mount may show
// a cached answer (DefaultCacheTTL).
const dirFlushEvery = 5 * time.Second

// dirTimes holds the directory times this mount changed.
type dirTimes struct {
	mu      sync.Mutex
	changed map[string]dirChange // ck(dom, prefix) -> newest change, shown
	dirty   map[string]dirChange // of those, the ones not written yet
	started bool                 // the flusher runs
	stop    chan struct{}        // closed by Close
	done    chan struct{}        // closed when the flusher has stopped
	// flushMu is held while times are written and while utimes sets a
	// directory's time, so that a late write never undoes a utimes.
	flushMu sync.Mutex
}

// dirChange is a directory and when its entries last changed.
type dirChange struct {
	dom, prefix string
	at          time.Time
}

// maxChangedDirs bounds the times kept; past it the written ones go.
const maxChangedDirs = 100000

// touchDir records that the entries of directory prefix of dom changed now.
func (f *FS) touchDir(dom, prefix string) {
	t := &f.dirTimes
	c := dirChange{dom: dom, prefix: prefix, at: time.Now()}
	k := ck(dom, prefix)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.changed == nil {
		t.changed, t.dirty = map[string]dirChange{}, map[string]dirChange{}
	}
	if len(t.changed) >= maxChangedDirs {
		for k := range t.changed {
			if _, pending := t.dirty[k]; !pending {
				delete(t.changed, k)
			}
		}
	}
	t.changed[k], t.dirty[k] = c, c
	if !t.started && t.stop == nil {
		t.started = true
		t.stop, t.done = make(chan struct{}), make(chan struct{})
		go f.flushDirTimesEvery(t.stop, t.done)
	}
}

// changedAt returns when this mount last changed a directory's entries.
func (f *FS) changedAt(dom, prefix string) (time.Time, bool) {
	t := &f.dirTimes
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.changed[ck(dom, prefix)]
	return c.at, ok
}

// dropDirChange drops what is pending for a directory: it was removed
// (a flush that took it already finds its marker gone), or utimes set
// its time (the caller holds flushMu then).
func (f *FS) dropDirChange(dom, prefix string) {
	t := &f.dirTimes
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.changed, ck(dom, prefix))
	delete(t.dirty, ck(dom, prefix))
}

// flushDirTimesEvery writes pending directory times until stop closes.
func (f *FS) flushDirTimesEvery(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(dirFlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := f.flushDirTimes(ctx); err != nil {
				f.log.Warn("fusefs: cannot save directory times; they are kept while mounted", "err", err)
			}
			cancel()
		}
	}
}

// flushDirTimes writes the pending directory times to the directories'
// markers.
func (f *FS) flushDirTimes(ctx context.Context) error {
	t := &f.dirTimes
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	batch := t.dirty
	t.dirty = map[string]dirChange{}
	t.mu.Unlock()
	var errs []error
	for _, c := range batch {
		if err := f.saveDirTime(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flushDirTime writes the pending time of one directory, if any.
func (f *FS) flushDirTime(ctx context.Context, dom, prefix string) error {
	t := &f.dirTimes
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	c, ok := t.dirty[ck(dom, prefix)]
	delete(t.dirty, ck(dom, prefix))
	t.mu.Unlock()
	if !ok {
		return nil
	}
	if err := f.saveDirTime(ctx, c); err != nil {
		t.mu.Lock()
		if _, newer := t.dirty[ck(dom, prefix)]; !newer {
			t.dirty[ck(dom, prefix)] = c // written at the next flush
		}
		t.mu.Unlock()
		return err
	}
	return nil
}

// saveDirTime writes one directory's time to its marker, when it has one
// and the tracker stores metadata.
func (f *FS) saveDirTime(ctx context.Context, c dirChange) error {
	if c.prefix == "" || f.noMeta.Load() {
		return nil // a domain, or a tracker that keeps no times
	}
	// Nothing is asked first: what the mount holds of the marker tells
	// whether it is gone or as new already; without it, the write says.
	a, known := f.cachedMarker(c.dom, c.prefix)
	if known && (!a.exists || !a.mtime.Before(c.at)) {
		return nil // no marker, or one as new already
	}
	err := f.cl.SetMeta(ctx, c.dom, c.prefix, map[string]string{"mtime": strconv.FormatInt(c.at.UnixNano(), 10)})
	switch {
	case core.Is(core.NotFound, err):
		f.attrs.Remove(ck(c.dom, c.prefix)) // removed or renamed since
		return nil
	case core.Is(core.Unsupported, err):
		return nil
	case err != nil:
		return err
	}
	if known {
		a.mtime = c.at
		f.noteMarker(c.dom, c.prefix, a)
	}
	return nil
}

// Close writes what the mount still holds in memory (directory times),
// makes the metadata changes made durable (Cluster.Sync) and stops its
// background work. Call it after unmounting.
func (f *FS) Close(ctx context.Context) error {
	t := &f.dirTimes
	t.mu.Lock()
	stop, done := t.stop, t.done
	if stop == nil {
		t.stop = make(chan struct{}) // no flusher starts from now on
	}
	t.mu.Unlock()
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	// Both, whatever the first did: as unmounting a disk writes its
	// metadata out.
	return errors.Join(f.flushDirTimes(ctx), f.cl.Sync(ctx))
}
