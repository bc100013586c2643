package storage

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// The directories of a PUT stay open for the next requests: a second
// PUT into the same directory and the side channel's size check of it
// open nothing.
func TestDirectoriesStayOpen(t *testing.T) {
	s, url, _ := newTestNode(t)
	put := func(fid int64) {
		t.Helper()
		if resp, body := do(t, "PUT", url+core.FIDPath(1, fid), strings.NewReader("bytes"), nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT fid %d: %d %s", fid, resp.StatusCode, body)
		}
	}
	put(1)
	s.dirs.mu.Lock()
	dev, sub := s.dirs.devs["dev1"], s.dirs.dirs[dirKey{s.dirs.devs["dev1"], "0/000/000"}]
	s.dirs.mu.Unlock()
	if dev == nil || sub == nil {
		t.Fatalf("after a PUT: device %v, fid directory %v cached; want both", dev, sub)
	}
	put(2)
	if got := s.sideCommand(context.Background(), "size "+core.FIDPath(1, 2)); got != core.FIDPath(1, 2)+" 5\r\n" {
		t.Errorf("size: %q", got)
	}
	s.dirs.mu.Lock()
	same := s.dirs.devs["dev1"] == dev && s.dirs.dirs[dirKey{dev, "0/000/000"}] == sub && len(s.dirs.dirs) == 1
	refs := dev.refs + sub.refs
	s.dirs.mu.Unlock()
	if !same {
		t.Error("the next requests opened the directories again")
	}
	if refs != 0 {
		t.Errorf("%d uses of the cached directories not released", refs)
	}
	// Unused for dirIdle, they are closed.
	s.dirs.sweep(time.Now().Add(dirIdle + time.Second))
	s.dirs.mu.Lock()
	n := len(s.dirs.devs) + len(s.dirs.dirs)
	s.dirs.mu.Unlock()
	_, err := sub.root.Stat(".")
	if n != 0 || err == nil {
		t.Errorf("after an idle sweep: %d directories cached (want 0); the fid directory still open: %v", n, err == nil)
	}
}

// Directories changed behind the node's back are not served from the
// cache: a device directory replaced (a disk mounted over it), a fid
// directory removed, or removed and made again with files in it.
func TestCachedDirectoriesChangedBehindTheNode(t *testing.T) {
	_, url, root := newTestNode(t)
	get := func(fid int64) int {
		resp, _ := do(t, "GET", url+core.FIDPath(1, fid), nil, nil)
		return resp.StatusCode
	}
	put := func(fid int64, body string) {
		t.Helper()
		if resp, b := do(t, "PUT", url+core.FIDPath(1, fid), strings.NewReader(body), nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT fid %d: %d %s", fid, resp.StatusCode, b)
		}
	}
	put(1, "one")
	// The fid directory removed: a PUT makes it again.
	fidDir := filepath.Join(root, filepath.Dir(core.FIDPath(1, 1)))
	if err := os.RemoveAll(fidDir); err != nil {
		t.Fatal(err)
	}
	put(2, "two")
	if _, err := os.Stat(filepath.Join(root, core.FIDPath(1, 2))); err != nil {
		t.Errorf("PUT after its directory was removed: %v", err)
	}
	// Removed and made again with a file in it: the file is found.
	if err := os.RemoveAll(fidDir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(fidDir, 0o755)
	os.WriteFile(filepath.Join(root, core.FIDPath(1, 3)), []byte("three"), 0o644)
	if code := get(3); code != http.StatusOK {
		t.Errorf("GET of a file in a directory made again: %d; want 200", code)
	}
	put(4, "four")
	// The device directory replaced: requests go to the new one.
	if err := os.Rename(filepath.Join(root, "dev1"), filepath.Join(root, "old-dev1")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "dev1"), 0o755)
	if code := get(4); code != http.StatusNotFound {
		t.Errorf("GET of a file of the replaced device directory: %d; want 404", code)
	}
	put(5, "five")
	if _, err := os.Stat(filepath.Join(root, core.FIDPath(1, 5))); err != nil {
		t.Errorf("PUT after the device directory was replaced: not in the new one: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "old-dev1", strings.TrimPrefix(core.FIDPath(1, 5), "/dev1/"))); err == nil {
		t.Error("PUT after the device directory was replaced went to the old one")
	}
	if resp, _ := do(t, "DELETE", url+core.FIDPath(1, 5), nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	if code := get(5); code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", code)
	}
}

// Past maxCachedDirs the idle directories are closed at once: random
// reads across many directories do not hold a descriptor each.
func TestDirectoryCacheBounded(t *testing.T) {
	s, _, root := newTestNode(t)
	dev, err := s.dirs.device("dev1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.dirs.release(dev)
	for i := 0; i < maxCachedDirs+50; i++ {
		dir := filepath.Join("0", fmt.Sprintf("%03d", i/1000), fmt.Sprintf("%03d", i%1000))
		os.MkdirAll(filepath.Join(root, "dev1", dir), 0o755)
		d, err := s.dirs.subdir(dev, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		s.dirs.release(d)
	}
	s.dirs.mu.Lock()
	n := len(s.dirs.dirs)
	s.dirs.mu.Unlock()
	if n > maxCachedDirs {
		t.Errorf("%d directories open; want at most %d", n, maxCachedDirs)
	}
}
