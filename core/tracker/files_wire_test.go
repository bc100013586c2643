package tracker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

func TestWireFileLifecycle(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	n1, n2 := nodeURL(c.Nodes[0]), nodeURL(c.Nodes[1])
	p1 := func(fid int) string { return fmt.Sprintf("%s/dev1/0/000/000/%010d.fid", n1, fid) }
	p2 := func(fid int) string { return fmt.Sprintf("%s/dev2/0/000/000/%010d.fid", n2, fid) }

	// create_open: the first device, or all with multi_dest.
	o := w.ok("create_open domain=d&key=a&class=two")
	if o["fid"] != "1" || (o["path"] != p1(1) && o["path"] != p2(1)) {
		t.Fatalf("create_open = %v", o)
	}
	path, devid := o["path"], o["devid"]
	m := w.ok("create_open domain=d&key=m&class=two&multi_dest=1")
	if m["dev_count"] != "2" || m["fid"] != "2" {
		t.Errorf("multi_dest create_open = %v", m)
	}
	put(t, path, []byte("hello"))

	// create_close refuses what does not match the upload.
	w.code("create_close domain=d&key=a&fid=1&devid="+devid+"&path=http://elsewhere/x&size=5", "bogus_args")
	w.code("create_close domain=d&key=a&devid="+devid+"&path="+path, "no_fid")
	w.code("create_close domain=d&key=a&fid=1&path="+path, "no_devid")
	w.code("create_close domain=d&key=a&fid=1&devid="+devid, "no_path")
	w.code("create_close domain=d&key=a&fid=x&devid="+devid+"&path="+path, "bogus_args")
	w.code("create_close domain=d&key=a&fid=1&devid="+devid+"&path="+path+"&checksum=MD5:zz", "invalid_checksum_format")
	w.code("create_close domain=d&key=a&fid=999&devid="+devid+"&path="+strings.Replace(path, "0000000001", "0000000999", 1), "no_temp_file")
	w.expect("create_close domain=d&key=a&fid=1&devid="+devid+"&path="+path+"&size=7",
		"ERR size_mismatch Expected:+7%3B+actual:+5%3B+path:+"+path)
	// A refused close abandons the upload.
	w.code("create_close domain=d&key=a&fid=1&devid="+devid+"&path="+path+"&size=5", "no_temp_file")

	fid, devid, path := upload(t, w, "d", "a", "two", []byte("hello"))
	if fid != "3" {
		t.Errorf("fid = %s; want 3", fid)
	}
	w.expect("get_paths domain=d&key=a", "OK path1="+path+"&paths=1")
	w.expect("get_paths domain=d&key=a&noverify=1", "OK path1="+path+"&paths=1")
	w.expect("file_info domain=d&key=a", "OK class=two&devcount=1&domain=d&fid=3&key=a&length=5")
	w.expect("file_info domain=d&key=a&devices=1", "OK class=two&devcount=1&devids="+devid+"&domain=d&fid=3&key=a&length=5")
	dbg := w.ok("file_debug domain=d&key=a")
	if dbg["fid_fid"] != "3" || dbg["fid_dkey"] != "a" || dbg["fid_length"] != "5" || dbg["devids"] != devid {
		t.Errorf("file_debug = %v", dbg)
	}
	w.expect("file_debug fid=3", "OK "+protocolLine(dbg))
	w.expect("list_keys domain=d&prefix=a", "OK key_1=a&key_count=1&next_after=a")
	w.code("list_keys domain=d&prefix=zz", "none_match")
	lf := w.ok("list_fids from=0&to=100")
	if lf["fid_count"] != "1" || lf["fid_1_fid"] != "3" || lf["fid_1_key"] != "a" || lf["fid_1_length"] != "5" {
		t.Errorf("list_fids = %v", lf)
	}

	// rename, updateclass, delete and their refusals.
	upload(t, w, "d", "b", "one", []byte("bee"))
	w.code("rename domain=d&from_key=a&to_key=b", "key_exists")
	w.code("rename domain=d&from_key=nope&to_key=c", "unknown_key")
	w.expect("rename domain=d&from_key=a&to_key=c", "OK ")
	w.code("get_paths domain=d&key=a", "unknown_key")
	w.expect("updateclass domain=d&key=c&class=one", "OK ")
	w.code("updateclass domain=d&key=c&class=nope", "class_not_found")
	w.code("updateclass domain=d&key=nope&class=one", "invalid_key")
	w.code("updateclass domain=d&key=c", "no_class")
	if fi := w.ok("file_info domain=d&key=c"); fi["class"] != "one" {
		t.Errorf("file_info after updateclass = %v", fi)
	}
	w.expect("delete domain=d&key=c", "OK ")
	w.code("delete domain=d&key=c", "unknown_key")
	w.code("file_info domain=d&key=c", "unknown_key")
}

// Requests that name nothing usable get the original's error codes.
func TestWireFileRefusals(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	w.code("create_open key=a", "no_domain")
	w.code("create_open domain=nope&key=a", "unreg_domain")
	w.code("create_open domain=d&key=a&class=nope", "unreg_class")
	w.code("create_open domain=d&key="+strings.Repeat("k", 1025), "invalid_key")
	w.expect("get_limits", "OK key_bytes=1024")
	if o := w.ok("create_open domain=d&key=" + strings.Repeat("k", 1024)); o["fid"] == "" {
		t.Errorf("a key of 1,024 bytes: %v", o)
	}
	w.code("create_open domain=d&key=a&fid=-1", "bad_params")
	w.code("create_open domain=d&key=a&size=big", "bad_params")
	w.code("get_paths domain=d", "no_key")
	w.code("get_paths domain=d&key=nope", "unknown_key")
	w.code("file_info domain=nope&key=a", "unreg_domain")
	w.code("delete domain=d", "no_key")
	w.code("rename domain=d&from_key=a", "no_key")
	w.code("list_keys", "no_domain")
	w.code("nosuchcommand", "unknown_command")

	// A client-chosen fid: taken once, refused again, bounded.
	if o := w.ok("create_open domain=d&key=x&fid=1000"); o["fid"] != "1000" {
		t.Errorf("explicit fid = %v", o)
	}
	w.code("create_open domain=d&key=y&fid=1000", "fid_in_use")
	w.code("create_open domain=d&key=y&fid=9223372036854775807", "bad_params")
	if o := w.ok("create_open domain=d&key=z"); o["fid"] != "1001" {
		t.Errorf("fid after an explicit one = %v; want 1001", o)
	}
}

// Metadata (the plugin.meta extension), directory listings and checksums.
func TestWireMetaListingsChecksums(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	o := w.ok("create_open domain=d&key=dir/a&class=one")
	put(t, o["path"], []byte("abc"))
	w.expect("create_close domain=d&key=dir/a&fid="+o["fid"]+"&devid="+o["devid"]+"&path="+o["path"]+"&size=3&plugin.meta.keys=1&plugin.meta.key0=mtime&plugin.meta.value0=1700000000", "OK ")
	upload(t, w, "d", "dir/sub/b", "one", []byte("b"))
	upload(t, w, "d", "top", "one", []byte("t"))
	if fi := w.ok("file_info domain=d&key=dir/a"); fi["plugin.meta.keys"] != "1" || fi["plugin.meta.value0"] != "1700000000" {
		t.Errorf("file_info metadata = %v", fi)
	}
	w.expect("plugin_meta_set domain=d&key=dir/a&plugin.meta.keys=1&plugin.meta.key0=mode&plugin.meta.value0=644", "OK ")
	w.code("plugin_meta_set domain=d&key=dir/a", "bad_params")
	w.code("plugin_meta_set domain=d&key=dir/a&plugin.meta.keys=x", "bad_params")
	w.code("plugin_meta_set domain=d&key=nope&plugin.meta.keys=1&plugin.meta.key0=a&plugin.meta.value0=b", "unknown_key")
	w.expect("list_keys domain=d&prefix=dir/&delimiter=/",
		"OK entries=2&entry_1=dir/a&entry_1_fid="+o["fid"]+"&entry_1_meta_mode=644&entry_1_meta_mtime=1700000000&entry_1_size=3&entry_1_type=file"+
			"&entry_2=dir/sub/&entry_2_type=dir&more=0&next_after=dir/sub/"+strings.Repeat("%FF", 248))
	if top := w.ok("list_keys domain=d&delimiter=/"); top["entries"] != "2" || top["entry_1"] != "dir/" || top["entry_2"] != "top" || top["entry_1_fid"] != "" {
		t.Errorf("top-level listing = %v", top)
	}
	// A directory with a marker (mkdir's "dir/" key) comes with the
	// marker's fid, size and metadata.
	m := w.ok("create_open domain=d&key=dir/&class=one")
	put(t, m["path"], nil)
	w.expect("create_close domain=d&key=dir/&fid="+m["fid"]+"&devid="+m["devid"]+"&path="+m["path"]+"&size=0&plugin.meta.keys=1&plugin.meta.key0=mode&plugin.meta.value0=755", "OK ")
	if top := w.ok("list_keys domain=d&delimiter=/"); top["entry_1"] != "dir/" || top["entry_1_type"] != "dir" || top["entry_1_fid"] != m["fid"] ||
		top["entry_1_size"] != "0" || top["entry_1_meta_mode"] != "755" || top["entry_2_fid"] == "" {
		t.Errorf("top-level listing with dir/'s marker = %v", top)
	}

	// A class with MD5: the checksum is kept, and verified when asked.
	w.ok("create_class domain=d&class=md5&mindevcount=1&hashtype=MD5")
	o = w.ok("create_open domain=d&key=sum&class=md5")
	put(t, o["path"], []byte("abc"))
	bad := "MD5:00000000000000000000000000000000"
	close := "create_close domain=d&key=sum&fid=" + o["fid"] + "&devid=" + o["devid"] + "&path=" + o["path"] + "&size=3"
	w.code(close+"&checksum="+bad+"&checksumverify=1", "checksum_mismatch")
	o = w.ok("create_open domain=d&key=sum&class=md5")
	put(t, o["path"], []byte("abc"))
	close = "create_close domain=d&key=sum&fid=" + o["fid"] + "&devid=" + o["devid"] + "&path=" + o["path"] + "&size=3"
	w.expect(close+"&checksum=MD5:900150983cd24fb0d6963f7d28e17f72&checksumverify=1", "OK ")
	if fi := w.ok("file_info domain=d&key=sum"); fi["checksum"] != "MD5:900150983cd24fb0d6963f7d28e17f72" {
		t.Errorf("file_info checksum = %v", fi)
	}
}

// A file stored without an mtime gets the time of its create_close,
// shown by file_info only when asked (the original's replies unchanged).
func TestWireCreatedTime(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	before := time.Now().UnixNano()
	upload(t, w, "d", "perl", "one", []byte("x"))
	after := time.Now().UnixNano()
	w.expect("file_info domain=d&key=perl", "OK class=one&devcount=1&domain=d&fid=1&key=perl&length=1")
	fi := w.ok("file_info domain=d&key=perl&created=1")
	if fi["plugin.meta.keys"] != "1" || fi["plugin.meta.key0"] != "mogilefs.created" {
		t.Fatalf("file_info created=1 = %v", fi)
	}
	if at, err := strconv.ParseInt(fi["plugin.meta.value0"], 10, 64); err != nil || at < before || at > after {
		t.Errorf("recorded %v, not between %d and %d", fi["plugin.meta.value0"], before, after)
	}
	// A client that gives its own mtime gets nothing recorded.
	o := w.ok("create_open domain=d&key=mount&class=one")
	put(t, o["path"], []byte("y"))
	w.expect("create_close domain=d&key=mount&fid="+o["fid"]+"&devid="+o["devid"]+"&path="+o["path"]+"&size=1&plugin.meta.keys=1&plugin.meta.key0=mtime&plugin.meta.value0=5", "OK ")
	w.expect("file_info domain=d&key=mount&created=1", "OK class=one&devcount=1&domain=d&fid=2&key=mount&length=1&plugin.meta.key0=mtime&plugin.meta.keys=1&plugin.meta.value0=5")
}

// A client that writes every copy itself (create_open write_copies,
// create_close copy_devids) gets them recorded at once, each checked on
// its node; a copy missing, short or failed is not recorded, is removed,
// and replication makes the class's copies as usual.
func TestWireClientWrittenCopies(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d"})
	ctx := context.Background()
	replQueue := func() int64 {
		n, err := c.Store.QueueLength(ctx, store.ReplicateQueue)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Without write_copies (the original's clients): no copies= and the
	// tracker replicates.
	if o := w.ok("create_open domain=d&key=plain&class=two&multi_dest=1"); o["copies"] != "" {
		t.Errorf("create_open without write_copies = %v", o)
	}
	open := func(key string) (fid string, devids, paths [2]string) {
		t.Helper()
		o := w.ok("create_open domain=d&key=" + key + "&class=two&multi_dest=1&write_copies=1")
		if o["copies"] != "2" || o["dev_count"] != "2" {
			t.Fatalf("create_open with write_copies = %v", o)
		}
		return o["fid"], [2]string{o["devid_1"], o["devid_2"]}, [2]string{o["path_1"], o["path_2"]}
	}
	closeLine := func(key, fid string, devids, paths [2]string, extra string) string {
		return fmt.Sprintf("create_close domain=d&key=%s&fid=%s&devid=%s&path=%s&size=5%s", key, fid, devids[0], paths[0], extra)
	}
	devids := func(key string) string {
		return w.ok("file_info domain=d&key=" + key + "&devices=1")["devids"]
	}
	body := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return string(b)
	}

	// Both copies written: both recorded, nothing queued.
	fid, ds, ps := open("both")
	put(t, ps[0], []byte("hello"))
	put(t, ps[1], []byte("hello"))
	w.expect(closeLine("both", fid, ds, ps, "&copy_devids="+ds[1]), "OK ")
	if got := devids("both"); got != ds[0]+","+ds[1] && got != ds[1]+","+ds[0] {
		t.Errorf("devids of both = %q; want %s and %s", got, ds[0], ds[1])
	}
	if n := replQueue(); n != 0 {
		t.Errorf("replication queue after a close with both copies: %d rows; want 0", n)
	}

	// Refused: a device that is not one of the upload's, or named twice.
	fid, ds, ps = open("bad")
	put(t, ps[0], []byte("hello"))
	w.code(closeLine("bad", fid, ds, ps, "&copy_devids=99"), "bogus_args")
	w.code(closeLine("bad", fid, ds, ps, "&copy_devids="+ds[0]), "bogus_args")
	w.code(closeLine("bad", fid, ds, ps, "&copy_devids=x"), "bogus_args")

	// The second copy short, then missing, then failed: the first is
	// recorded, the second removed, and replication writes it right.
	for _, tc := range []struct{ key, second, extra string }{
		{"short", "hell", "&copy_devids="},
		{"missing", "", "&copy_devids="},
		{"failed", "hell", "&failed_devids="},
	} {
		fid, ds, ps := open(tc.key)
		put(t, ps[0], []byte("hello"))
		if tc.second != "" {
			put(t, ps[1], []byte(tc.second))
		}
		w.expect(closeLine(tc.key, fid, ds, ps, tc.extra+ds[1]), "OK ")
		waitFor(t, tc.key+"'s second copy replicated", func() bool {
			d := devids(tc.key)
			return (d == ds[0]+","+ds[1] || d == ds[1]+","+ds[0]) && body(ps[1]) == "hello"
		})
	}
	waitFor(t, "the queues empty", func() bool {
		n, err := c.Store.QueueLength(ctx, store.StrayQueue)
		return err == nil && n == 0 && replQueue() == 0
	})
}

// A copy on a device this tracker has not seen yet (another tracker
// added it and handed it out in create_open): create_close re-reads the
// configuration rather than call the request bogus.
func TestWireCopyOnDeviceNewToTracker(t *testing.T) {
	c, w := startWire(t, clustertest.Options{Domain: "d", Tune: func(cfg *tracker.Config) {
		noJobs(cfg)
		cfg.MonitorInterval = time.Hour // no re-read of the configuration meanwhile
	}})
	ctx := context.Background()
	n2 := c.Nodes[1]
	if err := os.MkdirAll(filepath.Join(n2.DocRoot, "dev3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Store.CreateDevice(ctx, core.Device{ID: 3, HostID: 2, Status: core.DevAlive}); err != nil {
		t.Fatal(err)
	}
	doms, err := c.Store.Domains(ctx)
	if err != nil || len(doms) != 1 {
		t.Fatalf("domains: %v %v", doms, err)
	}
	dmid := doms[0].ID
	fid, err := c.Store.RegisterTempfile(ctx, store.Tempfile{DomainID: dmid, Key: "k", Devids: []int{1, 3}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p1 := nodeURL(c.Nodes[0]) + core.FIDPath(1, fid)
	p3 := nodeURL(n2) + core.FIDPath(3, fid)
	put(t, p1, []byte("hello"))
	put(t, p3, []byte("hello"))
	w.expect(fmt.Sprintf("create_close domain=d&key=k&fid=%d&devid=1&path=%s&size=5&copy_devids=3", fid, p1), "OK ")
	if got := w.ok("file_info domain=d&key=k&devices=1")["devids"]; got != "1,3" {
		t.Errorf("devids = %q, want 1,3", got)
	}
}

// delete, rename and plugin_meta_set with nosync=1 (ours: mogmount's) are
// answered as the others, and sync answers once they are durable; a
// tracker playing the original does not know sync.
func TestWireDeferredChangesAndSync(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	upload(t, w, "d", "a", "", []byte("aa"))
	upload(t, w, "d", "b", "", []byte("bb"))
	w.expect("rename domain=d&from_key=a&to_key=c&nosync=1", "OK ")
	w.code("rename domain=d&from_key=a&to_key=c&nosync=1", "unknown_key")
	w.expect("plugin_meta_set domain=d&key=c&nosync=1&plugin.meta.keys=1&plugin.meta.key0=mode&plugin.meta.value0=600", "OK ")
	w.expect("delete domain=d&key=b&nosync=1", "OK ")
	w.code("delete domain=d&key=b&nosync=1", "unknown_key")
	w.expect("sync", "OK ")
	if fi := w.ok("file_info domain=d&key=c"); fi["length"] != "2" || fi["plugin.meta.keys"] != "1" || fi["plugin.meta.value0"] != "600" {
		t.Errorf("file_info after deferred changes: %v", fi)
	}
	w.code("file_info domain=d&key=b", "unknown_key")

	_, plain := startWire(t, clustertest.Options{Domain: "d", Tune: func(c *tracker.Config) { c.NoJobs, c.Plain = true, true }})
	plain.code("sync", "unknown_command")
}
