package tracker

import (
	"context"
	"sync"
)

// fidLocks keeps apart, within a tracker, the work that writes a copy of
// a fid and then records it (replication, rebalance) and the work that
// finds a fid's copy unrecorded and removes it (the stray remover). The
// removal of a stray checks that its copy is not recorded and then
// deletes it; a copy of the same fid to the same device landing before
// the delete and recorded after the check was removed and then recorded
// as a copy.
type fidLocks struct {
	mu   sync.Mutex
	held map[int64]chan struct{} // closed when the fid is unlocked
}

// lock waits until fid is free and takes it; it fails only when ctx ends.
func (l *fidLocks) lock(ctx context.Context, fid int64) error {
	for {
		if l.tryLock(fid) {
			return nil
		}
		l.mu.Lock()
		ch, busy := l.held[fid]
		l.mu.Unlock()
		if !busy {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tryLock takes fid if it is free.
func (l *fidLocks) tryLock(fid int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[fid]; busy {
		return false
	}
	if l.held == nil {
		l.held = map[int64]chan struct{}{}
	}
	l.held[fid] = make(chan struct{})
	return true
}

// unlock frees fid, taken by lock or tryLock.
func (l *fidLocks) unlock(fid int64) {
	l.mu.Lock()
	ch := l.held[fid]
	delete(l.held, fid)
	l.mu.Unlock()
	close(ch)
}
