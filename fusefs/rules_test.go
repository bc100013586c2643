package fusefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// The rules of the mount that need no FUSE and no cluster (those that
// need a cluster use fusefs/memcluster: mount_rules_test.go).

func TestErrnoTable(t *testing.T) {
	tests := []struct {
		err  error
		want syscall.Errno
	}{
		{&protocol.Error{Code: "unknown_key"}, syscall.ENOENT},
		{fmt.Errorf("wrapped: %w", &protocol.Error{Code: "unreg_domain"}), syscall.ENOENT},
		{&protocol.Error{Code: "key_exists"}, syscall.EEXIST},
		{&protocol.Error{Code: "no_devices"}, syscall.ENOSPC},
		{&protocol.Error{Code: "invalid_key"}, syscall.ENAMETOOLONG},
		{&protocol.Error{Code: "unreg_class"}, syscall.EINVAL},
		{&protocol.Error{Code: "db"}, syscall.EIO},
		{&protocol.Error{Code: "no_temp_file"}, syscall.EIO},
		{&protocol.Error{Code: "unknown_command"}, syscall.ENOTSUP},
		{&protocol.Error{Code: "invalid_key", Kind: core.NotFound}, syscall.ENOENT},
		{core.E(core.Unavailable, "tracker", errors.New("refused")), syscall.EIO},
		{core.E(core.Permission, "put", nil), syscall.EACCES},
		{context.Canceled, syscall.EINTR},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), syscall.ETIMEDOUT},
		{fmt.Errorf("spool: %w", syscall.ENOSPC), syscall.ENOSPC},
		{errors.New("storage node said no"), syscall.EIO},
	}
	for _, tt := range tests {
		got := errno(tt.err)
		var en fuse.Errno
		if !errors.As(got, &en) || syscall.Errno(en) != tt.want {
			t.Errorf("errno(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
	if errno(nil) != nil {
		t.Error("errno(nil) is not nil")
	}
}

func TestParentOf(t *testing.T) {
	for key, want := range map[string]string{"a": "", "a/b": "a/", "a/b/c": "a/b/", "a/b/": "a/", "dir/": ""} {
		if got := parentOf(key); got != want {
			t.Errorf("parentOf(%q) = %q; want %q", key, got, want)
		}
	}
}

// Directory inode numbers are stable, differ between directories and
// domains, and have the top bit set so that they never meet a file's.
func TestDirInode(t *testing.T) {
	a, b, c := dirInode("d", "x/"), dirInode("d", "y/"), dirInode("e", "x/")
	if a != dirInode("d", "x/") {
		t.Error("a directory's inode changed between calls")
	}
	if a == b || a == c {
		t.Errorf("distinct directories share an inode: %x %x %x", a, b, c)
	}
	for _, n := range []uint64{a, b, c} {
		if n&(1<<63) == 0 {
			t.Errorf("directory inode %x lacks the top bit", n)
		}
	}
}

func TestFidOfURL(t *testing.T) {
	for u, want := range map[string]int64{
		"http://127.0.0.1:7500/dev1/0/000/000/0000000123.fid": 123,
		"http://h/dev2/9/223/372/9223372036854775806.fid":     9223372036854775806,
		"http://h/dev1/usage":                                 -1,
	} {
		if got := fidOfURL(u); got != want {
			t.Errorf("fidOfURL(%q) = %d; want %d", u, got, want)
		}
	}
}

// mtime (to the nanosecond) and mode bits survive the metadata round trip;
// metadata that does not parse leaves the attributes as they were.
func TestMetaRoundTrip(t *testing.T) {
	mt := time.Unix(1700000000, 123456789)
	var a fileAttr
	applyMeta(&a, metaOf(mt, 0o640|os.ModeDir))
	if !a.mtime.Equal(mt) || a.mode != 0o640 {
		t.Errorf("round trip gave mtime %v mode %o; want %v 640", a.mtime, a.mode, mt)
	}
	if m := metaOf(mt, 0); m["mode"] != "" {
		t.Errorf("no mode set, yet metadata has mode %q", m["mode"])
	}
	b := fileAttr{mtime: mt, mode: 0o600}
	applyMeta(&b, map[string]string{"mtime": "soon", "mode": "rwx"})
	if !b.mtime.Equal(mt) || b.mode != 0o600 {
		t.Errorf("bad metadata changed the attributes: %v %o", b.mtime, b.mode)
	}
	e := attrFromEntry(client.Entry{FID: 7, Size: 9, Meta: metaOf(mt, 0o644)})
	if !e.exists || e.fid != 7 || e.size != 9 || !e.mtime.Equal(mt) || e.mode != 0o644 {
		t.Errorf("attrFromEntry = %+v", e)
	}
}

func TestCheckName(t *testing.T) {
	for _, limit := range []int{0, 1024} { // 0: the default, the original's 255
		f, err := New(Config{Cluster: memcluster.New("d"), SpoolDir: t.TempDir(), MaxKeyBytes: limit})
		if err != nil {
			t.Fatal(err)
		}
		want := limit
		if want == 0 {
			want = client.MaxKeyBytes
		}
		prefix := strings.Repeat("p/", (want-200)/2) // a deep key: the names are short
		if err := f.checkName(prefix, strings.Repeat("n", want-len(prefix))); err != nil {
			t.Errorf("limit %d: a key of exactly the limit refused: %v", want, err)
		}
		if err := f.checkName(prefix, strings.Repeat("n", want-len(prefix)+1)); !isErrno(err, syscall.ENAMETOOLONG) {
			t.Errorf("limit %d: a key past the limit: %v; want ENAMETOOLONG", want, err)
		}
		if err := f.checkName("", strings.Repeat("n", 256)); !isErrno(err, syscall.ENAMETOOLONG) {
			t.Errorf("limit %d: a name of 256 bytes: %v; want ENAMETOOLONG (NAME_MAX)", want, err)
		}
	}
}

// A cached listing: a file this mount commits appears in it at once (or
// has its attributes updated), and a file and a directory may share a name.
func TestListingPutFile(t *testing.T) {
	l := newListing([]dirEnt{{name: "sub", isDir: true}, {name: "f", detailed: true, attr: fileAttr{exists: true, size: 1}}}, false)
	if l.hasAny() {
		t.Error("an empty directory reported as existing")
	}
	l.putFile("f", fileAttr{exists: true, size: 5})
	l.putFile("sub", fileAttr{exists: true, size: 2})
	l.putFile("new", fileAttr{exists: true, size: 3})
	if !l.hasAny() {
		t.Error("a directory with a committed file does not exist")
	}
	if got := l.named("f"); len(got) != 1 || got[0].attr.size != 5 {
		t.Errorf("f after the update: %+v", got)
	}
	if got := l.named("sub"); len(got) != 2 {
		t.Errorf("sub: %+v; want the directory and the file", got)
	}
	if got := l.named("new"); len(got) != 1 || !got[0].detailed || got[0].attr.size != 3 {
		t.Errorf("new: %+v", got)
	}
	if n := len(l.entries()); n != 4 {
		t.Errorf("%d entries; want 4", n)
	}
}
