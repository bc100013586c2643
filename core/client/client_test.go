package client

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// scripted returns a fake tracker whose answers are given per command.
func scripted(t *testing.T, answers map[string]func(protocol.Args) string) (*Tracker, *fakeTracker) {
	t.Helper()
	f := newFakeTracker(t, func(line string) string {
		req, ok := protocol.ParseRequest(line)
		if !ok {
			return "ERR bad_request bad\r\n"
		}
		if a := answers[req.Command]; a != nil {
			return a(req.Args)
		}
		return "ERR unknown_command " + req.Command + "\r\n"
	})
	tr, err := NewTracker([]string{f.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, f
}

func ok(a protocol.Args) string { return protocol.OKLine(a) }

func TestCallsParseReplies(t *testing.T) {
	var closed protocol.Args
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"create_open": func(protocol.Args) string {
			return ok(protocol.Args{"fid": "7", "dev_count": "2", "devid_1": "1", "path_1": "http://a/1", "devid_2": "2", "path_2": "http://b/1"})
		},
		"create_close": func(a protocol.Args) string { closed = a; return ok(nil) },
		"get_paths": func(protocol.Args) string {
			return ok(protocol.Args{"paths": "2", "path1": "http://a/1", "path2": "http://b/1"})
		},
		"file_info": func(protocol.Args) string {
			return ok(protocol.Args{"fid": "7", "domain": "d", "class": "c", "key": "k", "length": "5", "devcount": "2", "devids": "1,2",
				"plugin.meta.keys": "1", "plugin.meta.key0": "mtime", "plugin.meta.value0": "9"})
		},
		"list_keys": func(a protocol.Args) string {
			if a["after"] == "k2" {
				return "ERR none_match none\r\n"
			}
			return ok(protocol.Args{"key_count": "2", "key_1": "k1", "key_2": "k2", "next_after": "k2"})
		},
		"get_domains": func(protocol.Args) string { return ok(protocol.Args{"domains": "2", "domain1": "a", "domain2": "b"}) },
	})
	ctx := context.Background()
	o, err := tr.CreateOpen(ctx, "d", "k", "", 5)
	if err != nil || o.FID != 7 || len(o.Dests) != 2 || o.Dests[1].Devid != 2 || o.Dests[1].Path != "http://b/1" {
		t.Errorf("CreateOpen = %+v, %v", o, err)
	}
	err = tr.CreateClose(ctx, CloseArgs{Domain: "d", Key: "k", FID: 7, Dest: o.Dests[0], Size: 5, Checksum: "MD5:00", Verify: true, Extra: protocol.Args{"x": "y"}})
	if err != nil || closed["fid"] != "7" || closed["devid"] != "1" || closed["size"] != "5" || closed["checksumverify"] != "1" || closed["x"] != "y" {
		t.Errorf("CreateClose sent %v, %v", closed, err)
	}
	if p, err := tr.GetPaths(ctx, "d", "k", true); err != nil || len(p) != 2 {
		t.Errorf("GetPaths = %v, %v", p, err)
	}
	fi, err := tr.FileInfo(ctx, "d", "k")
	if err != nil || fi.FID != 7 || fi.Length != 5 || fi.DevCount != 2 || len(fi.Devids) != 2 || fi.Meta["mtime"] != "9" {
		t.Errorf("FileInfo = %+v, %v", fi, err)
	}
	keys, next, err := tr.ListKeys(ctx, "d", "k", "", 10)
	if err != nil || len(keys) != 2 || next != "k2" {
		t.Errorf("ListKeys = %v %q %v", keys, next, err)
	}
	if keys, _, err := tr.ListKeys(ctx, "d", "k", "k2", 10); err != nil || len(keys) != 0 {
		t.Errorf("ListKeys past the end = %v, %v; want an empty page", keys, err)
	}
	if ds, err := tr.Domains(ctx); err != nil || strings.Join(ds, ",") != "a,b" {
		t.Errorf("Domains = %v, %v", ds, err)
	}
	if err := tr.Delete(ctx, "d", "k"); !IsCode(err, "unknown_command") {
		t.Errorf("an ERR reply: %v", err)
	}
}

// A plain tracker (no listing extension) is listed key by key, each
// subdirectory skipped over with after.
func TestListDirPlainTracker(t *testing.T) {
	keys := []string{"a", "b/1", "b/2", "b/3", "c", "d/x/y"}
	var calls atomic.Int32
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"list_keys": func(a protocol.Args) string {
			calls.Add(1)
			var out []string
			for _, k := range keys {
				if strings.HasPrefix(k, a["prefix"]) && k > a["after"] {
					out = append(out, k)
				}
			}
			if len(out) == 0 {
				return "ERR none_match none\r\n"
			}
			r := protocol.Args{"key_count": fmt.Sprint(len(out))}
			for i, k := range out {
				r[fmt.Sprintf("key_%d", i+1)] = k
			}
			return ok(r)
		},
	})
	page, err := tr.ListDir(context.Background(), "dom", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, fmt.Sprintf("%s:%v", e.Name, e.IsDir))
	}
	if want := "a:false b/:true c:false d/:true"; strings.Join(got, " ") != want {
		t.Errorf("entries %v; want %s", got, want)
	}
	if page.Detailed {
		t.Error("a plain tracker's listing marked detailed")
	}
}

func TestParseEntriesAndMeta(t *testing.T) {
	r := protocol.Args{"entries": "3", "next_after": "b", "more": "1",
		"entry_1": "a", "entry_1_fid": "3", "entry_1_size": "10", "entry_1_meta_mtime": "5",
		"entry_2": "b/", "entry_2_type": "dir", "entry_9_meta_x": "ignored",
		"entry_3": "c/", "entry_3_type": "dir", "entry_3_fid": "7", "entry_3_size": "0", "entry_3_meta_mode": "755"}
	p := parseEntries(r)
	if e := p.Entries[2]; !e.IsDir || !e.Marker || e.FID != 7 || e.Meta["mode"] != "755" {
		t.Errorf("dir entry with its marker %+v", e)
	}
	if !p.Detailed || !p.More || p.Next != "b" || len(p.Entries) != 3 {
		t.Fatalf("page %+v", p)
	}
	if e := p.Entries[0]; e.FID != 3 || e.Size != 10 || e.Meta["mtime"] != "5" {
		t.Errorf("file entry %+v", e)
	}
	if e := p.Entries[1]; !e.IsDir || e.Meta != nil || e.Marker {
		t.Errorf("dir entry %+v", e)
	}
	recs := Records(protocol.Args{"devices": "2", "dev1_devid": "1", "dev2_devid": "2", "dev2_status": "dead"}, "devices", "dev")
	if len(recs) != 2 || recs[1]["status"] != "dead" {
		t.Errorf("Records = %v", recs)
	}
}

// A dead tracker is skipped for the next one; an ERR reply is not a
// transport failure and is not retried elsewhere.
func TestFailoverBetweenTrackers(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	var served atomic.Int32
	f := newFakeTracker(t, func(string) string { served.Add(1); return "OK \r\n" })
	tr, err := NewTracker([]string{deadAddr, f.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// The trackers are tried in random order (a live connection first):
	// send until the dead one has had its turn, so that the test does not
	// pass or fail by the draw.
	marked := func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		_, ok := tr.dead[deadAddr]
		return ok
	}
	n := 0
	for ; n < 5 || (!marked() && n < 500); n++ {
		if _, err := tr.Do(context.Background(), "noop", nil); err != nil {
			t.Fatalf("request %d with one tracker dead: %v", n, err)
		}
	}
	if served.Load() != int32(n) {
		t.Errorf("the live tracker served %d of %d", served.Load(), n)
	}
	if !marked() {
		t.Errorf("the dead tracker was not marked after %d requests", n)
	}
}

// A command that is not idempotent is not sent again after it may have
// reached the tracker.
func TestNonIdempotentNotResent(t *testing.T) {
	var seen atomic.Int32
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				if n, _ := c.Read(buf); n > 0 {
					seen.Add(1)
				}
				c.Close() // the tracker died before answering
			}()
		}
	}()
	tr, _ := NewTracker([]string{ln.Addr().String()}, Options{})
	defer tr.Close()
	if err := tr.Delete(context.Background(), "d", "k"); err == nil {
		t.Fatal("a delete without an answer succeeded")
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("delete sent %d times; want once", n)
	}
	seen.Store(0)
	tr.GetPaths(context.Background(), "d", "k", true)
	if n := seen.Load(); n < 2 {
		t.Errorf("get_paths (idempotent) sent %d times; want a retry", n)
	}
}

// fakeNode is a storage node in memory for the byte paths.
type fakeNode struct {
	mu    sync.Mutex
	files map[string][]byte
	// cutAt, when > 0, ends GET bodies after that many bytes.
	cutAt int
	fail  bool
}

func newNode(t *testing.T) (*fakeNode, *httptest.Server) {
	n := &fakeNode{files: map[string][]byte{}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		fail, cut := n.fail, n.cutAt
		n.mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.Method {
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.files[r.URL.Path] = b
			n.mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			n.mu.Lock()
			b, ok := n.files[r.URL.Path]
			n.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			if cut > 0 {
				// Claim the whole range, send part of it, and hang up.
				var start int
				fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
				w.Header().Set("Content-Length", fmt.Sprint(len(b)-start))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(b[start:min(len(b), start+cut)])
				panic(http.ErrAbortHandler)
			}
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		case http.MethodDelete:
			n.mu.Lock()
			delete(n.files, r.URL.Path)
			n.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s.Close)
	return n, s
}

// A read that loses its node in the middle resumes at the same offset
// from the next copy; when every copy fails, Refresh is asked for more.
func TestReaderFailsOverMidStream(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100000)
	n1, s1 := newNode(t)
	n2, s2 := newNode(t)
	n1.files["/f"], n2.files["/f"] = data, data
	n1.cutAt = 12345
	c := &Client{Nodes: NewNodeClient(), ReadRetries: 1}
	r := c.NewReader(context.Background(), []string{s1.URL + "/f", s2.URL + "/f"}, 0, -1)
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(data))
	}
	// A range, every copy down, then fresh paths.
	n1.fail, n2.fail = true, true
	n3, s3 := newNode(t)
	n3.files["/f"] = data
	refreshed := 0
	r = c.NewReader(context.Background(), []string{s1.URL + "/f", s2.URL + "/f"}, 100, 200)
	r.Refresh = func(ctx context.Context) ([]string, error) { refreshed++; return []string{s3.URL + "/f"}, nil }
	got, err = io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[100:200]) || refreshed != 1 {
		t.Errorf("range after refresh: %q, %v, %d refreshes", got, err, refreshed)
	}
	// No copy at all: ErrNoPaths.
	r = c.NewReader(context.Background(), []string{s1.URL + "/f"}, 0, -1)
	if _, err := io.ReadAll(r); !errors.Is(err, ErrNoPaths) {
		t.Errorf("no readable copy: %v; want ErrNoPaths", err)
	}
}

// Store streams to the first destination that takes the body, sends the
// checksum and metadata, and abandons the upload when the PUT fails.
func TestStore(t *testing.T) {
	_, good := newNode(t)
	// The first destination refuses connections: nothing of the body is
	// consumed, so the next one gets it.
	deadLn, _ := net.Listen("tcp", "127.0.0.1:0")
	deadLn.Close()
	badSrv := struct{ URL string }{"http://" + deadLn.Addr().String()}
	var closes []protocol.Args
	var mu sync.Mutex
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"create_open": func(protocol.Args) string {
			return ok(protocol.Args{"fid": "9", "dev_count": "2", "devid_1": "1", "path_1": badSrv.URL + "/9", "devid_2": "2", "path_2": good.URL + "/9"})
		},
		"create_close": func(a protocol.Args) string { mu.Lock(); closes = append(closes, a); mu.Unlock(); return ok(nil) },
	})
	c := &Client{Tracker: tr, Nodes: NewNodeClient()}
	body := []byte("hello world")
	st, err := c.Store(context.Background(), "d", "k", "", bytes.NewReader(body), int64(len(body)), UploadOptions{Checksum: true, Meta: map[string]string{"mtime": "1"}})
	if err != nil || st.FID != 9 || st.Size != int64(len(body)) {
		t.Fatalf("Store = %+v, %v", st, err)
	}
	sum := md5.Sum(body)
	if len(closes) != 1 || closes[0]["devid"] != "2" || closes[0]["checksum"] != "MD5:"+hex.EncodeToString(sum[:]) || closes[0]["plugin.meta.key0"] != "mtime" {
		t.Errorf("create_close got %v", closes)
	}
	// Both destinations down: the upload is abandoned (no key).
	closes = nil
	bad2, bad2Srv := newNode(t)
	bad2.fail = true
	tr2, _ := scripted(t, map[string]func(protocol.Args) string{
		"create_open": func(protocol.Args) string {
			return ok(protocol.Args{"fid": "3", "path": bad2Srv.URL + "/3", "devid": "1"})
		},
		"create_close": func(a protocol.Args) string { mu.Lock(); closes = append(closes, a); mu.Unlock(); return ok(nil) },
	})
	c2 := &Client{Tracker: tr2, Nodes: NewNodeClient()}
	if _, err := c2.Upload(context.Background(), "d", "k", "", bytes.NewReader(body), -1, UploadOptions{}); err == nil {
		t.Error("an upload to a failing node succeeded")
	}
	if len(closes) != 1 || closes[0]["key"] != "" {
		t.Errorf("abandon: create_close got %v; want one without key", closes)
	}
}

// Replies and transport failures carry kinds: the mount and the tools
// branch on those, not on codes or texts.
func TestErrorKinds(t *testing.T) {
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"updateclass": func(a protocol.Args) string {
			if a.Get("class") == "bogus" {
				return "ERR class_not_found Class+not+found\r\n"
			}
			return "ERR invalid_key Invalid+key\r\n"
		},
		"create_open": func(protocol.Args) string { return "ERR invalid_key key+is+too+long\r\n" },
		"rename":      func(protocol.Args) string { return "ERR key_exists x\r\n" },
	})
	ctx := context.Background()
	if err := tr.UpdateClass(ctx, "d", "k", "c"); !core.Is(core.NotFound, err) {
		t.Errorf("updateclass of a missing key: %v (kind %v); want not found", err, core.KindOf(err))
	}
	if err := tr.UpdateClass(ctx, "d", "k", "bogus"); !core.Is(core.Invalid, err) {
		t.Errorf("updateclass to an unknown class: kind %v; want invalid", core.KindOf(err))
	}
	if _, err := tr.Do(ctx, "create_open", protocol.Args{"domain": "d", "key": "k"}); !core.Is(core.TooLong, err) {
		t.Errorf("create_open of a long key: kind %v; want too long", core.KindOf(err))
	}
	if _, err := tr.Do(ctx, "nosuch", nil); !core.Is(core.Unsupported, err) {
		t.Errorf("unknown command: kind %v; want unsupported", core.KindOf(err))
	}
	if err := tr.Rename(ctx, "d", "a", "b"); !core.Is(core.Exists, err) {
		t.Errorf("rename onto a key: kind %v; want exists", core.KindOf(err))
	}

	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	down, err := NewTracker([]string{deadAddr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, err := down.Do(ctx, "noop", nil); !core.Is(core.Unavailable, err) {
		t.Errorf("no tracker up: %v (kind %v); want unavailable", err, core.KindOf(err))
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-short.Done()
	if _, err := down.Do(short, "noop", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a request out of time: %v; want a deadline error", err)
	}
}

// get_devices and get_hosts come back as the model's types.
func TestDevicesAndHosts(t *testing.T) {
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"get_devices": func(protocol.Args) string {
			return "OK devices=2&dev1_devid=7&dev1_hostid=2&dev1_status=alive&dev1_weight=100&dev1_mb_total=1000&dev1_mb_used=250&dev1_observed_state=writeable&dev1_utilization=12.5" +
				"&dev2_devid=3&dev2_hostid=1&dev2_status=dead&dev2_mb_total=&dev2_mb_used=\r\n"
		},
		"get_hosts": func(protocol.Args) string {
			return "OK hosts=1&host1_hostid=1&host1_hostname=h&host1_hostip=10.0.0.1&host1_http_port=7500&host1_http_get_port=7600&host1_status=alive\r\n"
		},
	})
	devs, err := tr.Devices(context.Background())
	if err != nil || len(devs) != 2 {
		t.Fatalf("Devices = %+v, %v", devs, err)
	}
	if d := devs[0]; d.ID != 3 || d.Status != core.DevDead || d.MBTotal != -1 || d.MBFree() != -1 {
		t.Errorf("device with unknown space = %+v", d)
	}
	if d := devs[1]; d.ID != 7 || d.HostID != 2 || d.MBFree() != 750 || d.Observed != "writeable" || d.Utilization != "12.5" {
		t.Errorf("device = %+v", d)
	}
	hosts, err := tr.Hosts(context.Background())
	if err != nil || len(hosts) != 1 || hosts[0].IP != "10.0.0.1" || hosts[0].GetPort() != 7600 || hosts[0].HTTPPort != 7500 {
		t.Errorf("Hosts = %+v, %v", hosts, err)
	}
}

// Space asks get_space; a tracker without it gets the devices summed.
func TestSpace(t *testing.T) {
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"get_space": func(protocol.Args) string { return "OK total_mb=100&used_mb=40&devices=2&filesystems=1\r\n" },
	})
	if total, used, err := tr.Space(context.Background()); err != nil || total != 100 || used != 40 {
		t.Errorf("Space = %d, %d, %v", total, used, err)
	}
	plain, _ := scripted(t, map[string]func(protocol.Args) string{
		"get_devices": func(protocol.Args) string {
			return "OK devices=3&dev1_devid=1&dev1_status=alive&dev1_mb_total=100&dev1_mb_used=10&dev2_devid=2&dev2_status=dead&dev2_mb_total=100&dev2_mb_used=10&dev3_devid=3&dev3_status=alive&dev3_mb_total=50&dev3_mb_used=5\r\n"
		},
	})
	if total, used, err := plain.Space(context.Background()); err != nil || total != 150 || used != 15 {
		t.Errorf("Space from a plain tracker = %d, %d, %v", total, used, err)
	}
}

// The fsck and settings calls return the model, not reply maps.
func TestFsckAndSettings(t *testing.T) {
	tr, _ := scripted(t, map[string]func(protocol.Args) string{
		"server_settings": func(protocol.Args) string {
			return "OK key_count=2&key_1=memcache_ttl&value_1=60&key_2=rebal_policy&value_2=from_devices%3D1\r\n"
		},
		"fsck_status": func(protocol.Args) string {
			return "OK running=1&host=tr1&max_fid_checked=50&end_fid=200&start_time=1000&stop_time=0&current_time=1030&policy_only=0&num_MISS=3&num_NOPA=1\r\n"
		},
		"fsck_getlog": func(a protocol.Args) string {
			if a.Get("after_logid") != "0" {
				return "OK row_count=0\r\n"
			}
			return "OK row_count=2&row_1_logid=4&row_1_utime=1001&row_1_evcode=MISS&row_1_fid=9&row_1_devid=2&row_2_logid=5&row_2_utime=1002&row_2_evcode=NOPA&row_2_fid=10\r\n"
		},
	})
	ctx := context.Background()
	s, err := tr.ServerSettings(ctx)
	if err != nil || len(s) != 2 || s["memcache_ttl"] != "60" || s["rebal_policy"] != "from_devices=1" {
		t.Errorf("ServerSettings = %v, %v", s, err)
	}
	f, err := tr.FsckStatus(ctx)
	if err != nil || !f.Running || f.Host != "tr1" || f.MaxChecked != 50 || f.EndFID != 200 || f.Elapsed() != 30 || f.PolicyOnly || f.Counts["MISS"] != 3 || f.Counts["NOPA"] != 1 || len(f.Counts) != 2 {
		t.Errorf("FsckStatus = %+v, %v", f, err)
	}
	evs, err := tr.FsckLog(ctx, 0)
	if err != nil || len(evs) != 2 || evs[0] != (FsckEvent{LogID: 4, UTime: 1001, EvCode: "MISS", FID: 9, Devid: 2}) || evs[1].Devid != 0 || evs[1].LogID != 5 {
		t.Errorf("FsckLog = %+v, %v", evs, err)
	}
	if evs, err := tr.FsckLog(ctx, 5); err != nil || len(evs) != 0 {
		t.Errorf("FsckLog after the last = %+v, %v", evs, err)
	}
}

// With DeferMetadata, deletes, renames and metadata changes carry
// nosync=1, and Sync sends sync only when such a change was made since the
// last one; a tracker that does not know sync (the original) made them
// durable already; a failed sync is sent again next time.
func TestDeferredMetadataAndSync(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]string{}
	syncs := 0
	failSync := false
	note := func(cmd string) func(protocol.Args) string {
		return func(a protocol.Args) string {
			mu.Lock()
			defer mu.Unlock()
			sent[cmd] = a["nosync"]
			return ok(nil)
		}
	}
	f := newFakeTracker(t, func(line string) string {
		req, _ := protocol.ParseRequest(line)
		switch req.Command {
		case "delete", "rename", "plugin_meta_set":
			return note(req.Command)(req.Args)
		case "sync":
			mu.Lock()
			defer mu.Unlock()
			syncs++
			if failSync {
				return "ERR failure database\r\n"
			}
			return ok(nil)
		}
		return "ERR unknown_command x\r\n"
	})
	seen := func() (map[string]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(sent), syncs
	}
	setFail := func(v bool) { mu.Lock(); failSync = v; mu.Unlock() }
	tr, err := NewTracker([]string{f.addr()}, Options{DeferMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if err := tr.Sync(ctx); err != nil {
		t.Errorf("Sync with nothing deferred: %v", err)
	}
	if _, n := seen(); n != 0 {
		t.Errorf("Sync with nothing deferred sent %d syncs", n)
	}
	tr.Delete(ctx, "d", "k")
	tr.Rename(ctx, "d", "a", "b")
	tr.SetMeta(ctx, "d", "b", map[string]string{"mode": "600"})
	if s, _ := seen(); s["delete"] != "1" || s["rename"] != "1" || s["plugin_meta_set"] != "1" {
		t.Errorf("nosync sent: %v", s)
	}
	setFail(true)
	err = tr.Sync(ctx)
	if _, n := seen(); err == nil || n != 1 {
		t.Errorf("a failed sync: %v, %d syncs sent", err, n)
	}
	setFail(false)
	err = tr.Sync(ctx)
	if _, n := seen(); err != nil || n != 2 {
		t.Errorf("Sync after a failed one: %v, %d syncs sent", err, n)
	}
	err = tr.Sync(ctx)
	if _, n := seen(); err != nil || n != 2 {
		t.Errorf("Sync again: %v, %d syncs sent", err, n)
	}

	// Without the option, nothing is deferred; an original tracker.
	plain, _ := scripted(t, map[string]func(protocol.Args) string{"delete": func(a protocol.Args) string {
		if a["nosync"] != "" {
			return "ERR bad nosync\r\n"
		}
		return ok(nil)
	}})
	if err := plain.Delete(ctx, "d", "k"); err != nil {
		t.Errorf("a plain delete: %v", err)
	}
	// An original tracker answers sync with unknown_command, once: its
	// changes are durable when answered, and the next fsyncs (every
	// rename over a file) ask nothing.
	var origSyncs atomic.Int64
	orig, _ := scripted(t, map[string]func(protocol.Args) string{"delete": ok, "sync": func(protocol.Args) string {
		origSyncs.Add(1)
		return "ERR unknown_command sync\r\n"
	}})
	orig.opts.DeferMetadata = true
	for range 3 {
		orig.Delete(ctx, "d", "k")
		if err := orig.Sync(ctx); err != nil {
			t.Errorf("Sync on a tracker without sync: %v", err)
		}
	}
	if n := origSyncs.Load(); n != 1 {
		t.Errorf("three Syncs on a tracker without sync sent %d syncs; want 1", n)
	}

	// Unsynced changes are synced SyncDelay after the first of them.
	soon, err := NewTracker([]string{f.addr()}, Options{DeferMetadata: true, SyncDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer soon.Close()
	soon.Delete(ctx, "d", "k")
	soon.Rename(ctx, "d", "a", "b")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, n := seen(); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			_, n := seen()
			t.Fatalf("%d syncs sent after deferred changes and their delay, want 3", n)
		}
	}
	time.Sleep(150 * time.Millisecond)
	if _, n := seen(); n != 3 {
		t.Errorf("%d syncs sent, want one for the two changes", n)
	}
}

// A Sync that finds the changes already taken by a Sync in flight waits
// for that one: it must not answer before they are durable.
func TestSyncWaitsForSyncInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := newFakeTracker(t, func(line string) string {
		req, _ := protocol.ParseRequest(line)
		if req.Command == "sync" {
			once.Do(func() { close(started) })
			<-release
		}
		return ok(nil)
	})
	tr, err := NewTracker([]string{f.addr()}, Options{DeferMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	tr.Delete(ctx, "d", "k")
	first := make(chan error, 1)
	go func() { first <- tr.Sync(ctx) }()
	<-started
	second := make(chan error, 1)
	go func() { second <- tr.Sync(ctx) }()
	select {
	case err := <-second:
		t.Errorf("a second Sync answered (%v) while the sync covering its changes was in flight", err)
		second <- nil
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Sync: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second Sync: %v", err)
	}
}
