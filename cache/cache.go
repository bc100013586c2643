// Package cache holds the client-side caches of tracker answers used by
// the mount: LRUs whose entries expire after a time-to-live, with
// identical concurrent misses coalesced into one load.
package cache

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// fillTimeout bounds a load shared by several callers: it runs detached
// from the first caller's context, so one caller giving up does not fail
// the others.
const fillTimeout = 30 * time.Second

// TTL is a size-bounded LRU with per-entry expiry, safe for concurrent use.
type TTL[V any] struct {
	lru   *expirable.LRU[string, V]
	group singleflight.Group
	// fills are the loads in flight, by key: an Add or Remove of their
	// key (or a RemovePrefix or Purge covering it) while they run marks
	// them stale, and a stale load's answer is returned but not cached,
	// since it may predate the change.
	mu     sync.Mutex
	fills  map[string]*fill
	hits   atomic.Int64
	misses atomic.Int64
	// joined, when set by a test, runs once a caller is waiting for a
	// load (its own or a shared one).
	joined func()
}

type fill struct{ stale bool }

// New returns a cache of at most size entries that each live for ttl
// (0: until evicted).
func New[V any](size int, ttl time.Duration) *TTL[V] {
	return &TTL[V]{lru: expirable.NewLRU[string, V](size, nil, ttl), fills: map[string]*fill{}}
}

// changed marks the loads in flight whose key matches as stale; callers
// that come later do not wait for them but start a load of their own.
func (c *TTL[V]) changed(match func(string) bool) {
	c.mu.Lock()
	for k, f := range c.fills {
		if match(k) {
			f.stale = true
			c.group.Forget(k)
			delete(c.fills, k)
		}
	}
	c.mu.Unlock()
}

// changedKey marks the load in flight of key, if any, as stale.
func (c *TTL[V]) changedKey(key string) {
	c.mu.Lock()
	if f := c.fills[key]; f != nil {
		f.stale = true
		c.group.Forget(key)
		delete(c.fills, key)
	}
	c.mu.Unlock()
}

// Get returns the cached value of key.
func (c *TTL[V]) Get(key string) (V, bool) {
	v, ok := c.lru.Get(key)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return v, ok
}

// Add stores a value; a load of key in flight will not overwrite it.
func (c *TTL[V]) Add(key string, v V) {
	c.changedKey(key)
	c.lru.Add(key, v)
}

// Remove drops one key; a load of key in flight will not be cached.
func (c *TTL[V]) Remove(key string) {
	c.changedKey(key)
	c.lru.Remove(key)
}

// RemovePrefix drops every key that starts with prefix.
func (c *TTL[V]) RemovePrefix(prefix string) {
	c.changed(func(k string) bool { return strings.HasPrefix(k, prefix) })
	for _, k := range c.lru.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.lru.Remove(k)
		}
	}
}

// Purge empties the cache.
func (c *TTL[V]) Purge() {
	c.changed(func(string) bool { return true })
	c.lru.Purge()
}

// Len returns the number of entries cached (expired ones included until
// they are swept).
func (c *TTL[V]) Len() int { return c.lru.Len() }

// Stats returns the hit and miss counts so far.
func (c *TTL[V]) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// Load returns the cached value of key, or calls load once for all
// concurrent callers that miss on the same key and caches its result.
// The cache is checked again inside the shared call, so a fill that
// raced with another is not repeated. A load during which the key was
// added or removed is returned to its callers but not cached: it may be
// older than the change. ctx bounds only this caller's wait.
func (c *TTL[V]) Load(ctx context.Context, key string, load func(ctx context.Context) (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		if v, ok := c.lru.Get(key); ok {
			return v, nil
		}
		f := &fill{}
		c.mu.Lock()
		c.fills[key] = f
		c.mu.Unlock()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
		defer cancel()
		v, err := load(fctx)
		c.mu.Lock()
		if c.fills[key] == f {
			delete(c.fills, key)
		}
		if err == nil && !f.stale {
			// Under c.mu: an Add that marks fills stale cannot slip in
			// between the check and the store.
			c.lru.Add(key, v)
		}
		c.mu.Unlock()
		return v, err
	})
	if c.joined != nil {
		c.joined()
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
