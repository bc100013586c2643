// Package cache holds the client-side caches of tracker answers used by
// the mount: LRUs whose entries expire after a time-to-live, with
// identical concurrent misses coalesced into one load.
package cache

import (
	"context"
	"strings"
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
	lru    *expirable.LRU[string, V]
	group  singleflight.Group
	hits   atomic.Int64
	misses atomic.Int64
}

// New returns a cache of at most size entries that each live for ttl.
func New[V any](size int, ttl time.Duration) *TTL[V] {
	return &TTL[V]{lru: expirable.NewLRU[string, V](size, nil, ttl)}
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

// Add stores a value.
func (c *TTL[V]) Add(key string, v V) { c.lru.Add(key, v) }

// Remove drops one key.
func (c *TTL[V]) Remove(key string) { c.lru.Remove(key) }

// RemovePrefix drops every key that starts with prefix.
func (c *TTL[V]) RemovePrefix(prefix string) {
	for _, k := range c.lru.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.lru.Remove(k)
		}
	}
}

// Purge empties the cache.
func (c *TTL[V]) Purge() { c.lru.Purge() }

// Stats returns the hit and miss counts so far.
func (c *TTL[V]) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// Load returns the cached value of key, or calls load once for all
// concurrent callers that miss on the same key and caches its result.
// The cache is checked again inside the shared call, so a fill that
// raced with another is not repeated. ctx bounds only this caller's wait.
func (c *TTL[V]) Load(ctx context.Context, key string, load func(ctx context.Context) (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		if v, ok := c.lru.Get(key); ok {
			return v, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
		defer cancel()
		v, err := load(fctx)
		if err != nil {
			return v, err
		}
		c.lru.Add(key, v)
		return v, nil
	})
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
