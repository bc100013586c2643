package storage

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// dirCache keeps the device directories of the docroot, and the
// directories of fid files in them, open between requests. Opening a
// directory beneath a root walks it a component at a time, opening and
// closing each directory on the way: for a small PUT and the tracker's
// size check of it, most of the node's system calls.
//
// A device directory is checked on each use: the path is looked up again
// (one stat) and an entry opened as another directory (a disk mounted
// over it, the directory replaced) is retired. A directory of fid files
// is not: one removed behind the node's back answers "not found", and
// every such answer is confirmed by the callers with a fresh walk (see
// dropOnMiss). Entries unused for dirIdle are closed, so that a device
// the node no longer serves can be unmounted.
type dirCache struct {
	docRoot string
	mu      sync.Mutex
	devs    map[string]*cachedDir // by device directory name ("dev1")
	dirs    map[dirKey]*cachedDir // by device entry and path beneath it
	swept   time.Time
}

type dirKey struct {
	dev *cachedDir
	dir string
}

// cachedDir is one open directory and its users.
type cachedDir struct {
	root    *os.Root
	dev     *cachedDir // nil for a device directory
	key     string     // device name or path beneath the device
	id      fileID     // device directories: the directory opened
	refs    int
	last    time.Time
	retired bool // out of the cache: closed when its last user is done
}

// fileID identifies a directory on its file system.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

const (
	// dirIdle is how long an unused directory stays open.
	dirIdle = 10 * time.Second
)

// maxCachedDirs bounds the open directories, descriptors the connections
// cannot have: 256, or a 16th of the descriptor limit when that is less.
// Past it the idle ones are closed at once.
var maxCachedDirs = func() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 64
	}
	return int(min(256, max(rl.Cur/16, 16)))
}()

func newDirCache(docRoot string) *dirCache {
	return &dirCache{docRoot: docRoot, devs: map[string]*cachedDir{}, dirs: map[dirKey]*cachedDir{}}
}

// device returns the open device directory name of the docroot.
func (c *dirCache) device(name string) (*cachedDir, error) {
	p := c.docRoot + "/" + name
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	id, ok := idOf(fi)
	now := time.Now()
	c.mu.Lock()
	if d := c.devs[name]; d != nil {
		if ok && d.id == id {
			d.refs++
			d.last = now
			c.mu.Unlock()
			return d, nil
		}
		c.retire(d)
	}
	c.mu.Unlock()
	root, err := os.OpenRoot(p)
	if err != nil {
		return nil, err
	}
	d := &cachedDir{root: root, key: name, refs: 1, last: now}
	fi, err = root.Stat(".")
	if err == nil {
		d.id, ok = idOf(fi)
	}
	if err != nil || !ok {
		d.retired = true // not cached: closed after this use
		return d, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.devs[name]; o != nil && o.id == d.id {
		// Opened meanwhile by another request: use that one.
		o.refs++
		o.last = now
		root.Close()
		return o, nil
	} else if o != nil {
		c.retire(o)
	}
	c.devs[name] = d
	c.sweepLocked(now)
	return d, nil
}

// subdir returns the open directory dir beneath the device directory
// dev; create makes it (and its parents) when it does not exist.
func (c *dirCache) subdir(dev *cachedDir, dir string, create bool) (*cachedDir, error) {
	k := dirKey{dev, dir}
	now := time.Now()
	c.mu.Lock()
	if d := c.dirs[k]; d != nil {
		d.refs++
		d.last = now
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()
	var root *os.Root
	var err error
	if create {
		root, err = openDir(dev.root, dir)
	} else {
		root, err = dev.root.OpenRoot(dir)
	}
	if err != nil {
		return nil, err
	}
	d := &cachedDir{root: root, dev: dev, key: dir, refs: 1, last: now}
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.dirs[k]; o != nil {
		o.refs++
		o.last = now
		root.Close()
		return o, nil
	}
	if dev.retired {
		d.retired = true
		return d, nil
	}
	c.dirs[k] = d
	c.sweepLocked(now)
	return d, nil
}

// release ends one use of d.
func (c *dirCache) release(d *cachedDir) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.refs--
	d.last = time.Now()
	if d.retired && d.refs == 0 {
		d.root.Close()
	}
}

// drop takes d out of the cache (it answered "not found": it may have
// been removed and made again); it is closed once its users are done.
func (c *dirCache) drop(d *cachedDir) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retire(d)
}

// retire takes d out of the cache, and with a device directory the
// directories beneath it; c.mu is held.
func (c *dirCache) retire(d *cachedDir) {
	if d.retired {
		return
	}
	d.retired = true
	if d.dev == nil {
		if c.devs[d.key] == d {
			delete(c.devs, d.key)
		}
		for k, s := range c.dirs {
			if k.dev == d {
				c.retire(s)
			}
		}
	} else if k := (dirKey{d.dev, d.key}); c.dirs[k] == d {
		delete(c.dirs, k)
	}
	if d.refs == 0 {
		d.root.Close()
	}
}

// sweep closes the directories unused for dirIdle.
func (c *dirCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
}

func (c *dirCache) sweepLocked(now time.Time) {
	full := len(c.dirs)+len(c.devs) > maxCachedDirs
	if !full && now.Sub(c.swept) < dirIdle {
		return
	}
	c.swept = now
	for _, d := range c.dirs {
		if d.refs == 0 && (full || now.Sub(d.last) >= dirIdle) {
			c.retire(d)
		}
	}
	for _, d := range c.devs {
		if d.refs == 0 && now.Sub(d.last) >= dirIdle {
			c.retire(d)
		}
	}
}

// isMiss reports whether err says a path does not exist (or a component
// of it is not a directory).
func isMiss(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || isNotDir(err)
}
