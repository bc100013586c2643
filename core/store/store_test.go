package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
)

// forEachBackend runs fn against a fresh store on every available backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for kind, dsn := range storetest.DSNs(t) {
		t.Run(string(kind), func(t *testing.T) {
			s, err := store.Open(context.Background(), store.Config{DSN: dsn})
			if err != nil {
				t.Fatalf("Open(%s): %v", dsn, err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s)
		})
	}
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		kind store.Kind
		want string
	}{
		{"DBI:SQLite:dbname=/var/lib/m.db", store.SQLite, "/var/lib/m.db"},
		{"dbi:SQLite:/tmp/x.db", store.SQLite, "/tmp/x.db"},
		{"sqlite:/tmp/y.db", store.SQLite, "/tmp/y.db"},
		{"DBI:mysql:mogilefs:host=10.0.0.5;port=3307", store.MySQL, "u:p@tcp(10.0.0.5:3307)/mogilefs"},
		{"DBI:mysql:database=mfs;host=db1", store.MySQL, "u:p@tcp(db1:3306)/mfs"},
		{"DBI:mysql:mogilefs;mysql_socket=/run/mysqld/mysqld.sock", store.MySQL, "u:p@unix(/run/mysqld/mysqld.sock)/mogilefs"},
	}
	for _, tt := range tests {
		kind, got, err := store.ParseDSN(tt.dsn, "u", "p")
		if err != nil || kind != tt.kind || got != tt.want {
			t.Errorf("ParseDSN(%q) = %v, %q, %v; want %v, %q", tt.dsn, kind, got, err, tt.kind, tt.want)
		}
	}
	for _, bad := range []string{"", "DBI:Pg:dbname=x", "DBI:SQLite:", "nonsense"} {
		if _, _, err := store.ParseDSN(bad, "", ""); err == nil {
			t.Errorf("ParseDSN(%q) accepted", bad)
		}
	}
}

func TestSchemaSetUpOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, ok, err := s.Setting(ctx, "schema_version")
		if err != nil || !ok || v != "17" {
			t.Fatalf("schema_version = %q, %v, %v; want 17", v, ok, err)
		}
	})
}

func TestRefusesOtherSchemaVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SetSetting(ctx, "schema_version", "16"); err != nil {
			t.Fatal(err)
		}
		// Re-open the same database through its handle's DSN is not
		// possible generically, so exercise setup through a second Open
		// only for SQLite, where the DSN is a file.
		if s.Kind() != store.SQLite {
			return
		}
		var file string
		s.DB().QueryRow(`PRAGMA database_list`).Scan(new(int), new(string), &file)
		_, err := store.Open(ctx, store.Config{DSN: "sqlite:" + file})
		if !errors.Is(err, store.ErrSchema) {
			t.Fatalf("Open with schema 16 = %v; want ErrSchema", err)
		}
		s2, err := store.Open(ctx, store.Config{DSN: "sqlite:" + file, NoSchemaCheck: true})
		if err != nil {
			t.Fatalf("Open with NoSchemaCheck = %v", err)
		}
		s2.Close()
	})
}

func TestDomainsAndClasses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id1, err := s.CreateDomain(ctx, "photos")
		if err != nil || id1 != 1 {
			t.Fatalf("CreateDomain = %d, %v", id1, err)
		}
		if _, err := s.CreateDomain(ctx, "photos"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate CreateDomain = %v; want ErrExists", err)
		}
		id2, _ := s.CreateDomain(ctx, "docs")
		if id2 != 2 {
			t.Errorf("second dmid = %d; want 2", id2)
		}
		cid, err := s.CreateClass(ctx, core.Class{DomainID: 1, Name: "thumbs", MinDevCount: 3, HashType: core.HashMD5})
		if err != nil || cid != 1 {
			t.Fatalf("CreateClass = %d, %v", cid, err)
		}
		if _, err := s.CreateClass(ctx, core.Class{DomainID: 1, Name: "thumbs", MinDevCount: 1}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate CreateClass = %v", err)
		}
		cid0, err := s.CreateClass(ctx, core.Class{DomainID: 1, Name: "default", MinDevCount: 1})
		if err != nil || cid0 != 0 {
			t.Fatalf("CreateClass(default) = %d, %v", cid0, err)
		}
		if err := s.UpdateClass(ctx, core.Class{DomainID: 1, ID: 1, Name: "thumbs", MinDevCount: 2, ReplPolicy: "MultipleDevices()"}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateClass(ctx, core.Class{DomainID: 1, ID: 9, MinDevCount: 2}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateClass(missing) = %v", err)
		}
		cls, err := s.Classes(ctx)
		if err != nil || len(cls) != 2 {
			t.Fatalf("Classes = %v, %v", cls, err)
		}
		if c := cls[1]; c.Name != "thumbs" || c.MinDevCount != 2 || c.HashType != core.HashNone || c.Policy() != "MultipleDevices()" {
			t.Errorf("updated class = %+v", c)
		}
		if err := s.DeleteDomain(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDomain(ctx, 2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DeleteDomain = %v", err)
		}
		doms, _ := s.Domains(ctx)
		if len(doms) != 1 || doms[0].Name != "photos" {
			t.Errorf("Domains = %v", doms)
		}
	})
}

func TestHostsAndDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		h := core.Host{Name: "sto1", Status: "alive", IP: "10.0.0.1", HTTPPort: 7500}
		id, err := s.CreateHost(ctx, h)
		if err != nil || id != 1 {
			t.Fatalf("CreateHost = %d, %v", id, err)
		}
		if _, err := s.CreateHost(ctx, h); !errors.Is(err, store.ErrExists) {
			t.Fatalf("same name = %v", err)
		}
		h2 := core.Host{Name: "sto2", Status: "down", IP: "10.0.0.1", HTTPPort: 7500}
		if _, err := s.CreateHost(ctx, h2); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("same IP = %v; want ErrDuplicate", err)
		}
		h.ID, h.HTTPGetPort, h.AltIP, h.AltMask = 1, 7600, "192.168.0.1", "192.168.0.0/16"
		if err := s.UpdateHost(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDevice(ctx, core.Device{ID: 5, HostID: 1, Status: "alive"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDevice(ctx, core.Device{ID: 5, HostID: 1, Status: "alive"}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate device = %v", err)
		}
		if err := s.DeleteHost(ctx, 1); !errors.Is(err, store.ErrExists) {
			t.Fatalf("DeleteHost with devices = %v", err)
		}
		s.SetDeviceState(ctx, 5, "drain")
		s.SetDeviceWeight(ctx, 5, 40)
		if err := s.UpdateDeviceUsage(ctx, 5, 1000, 250); err != nil {
			t.Fatal(err)
		}
		devs, err := s.Devices(ctx)
		if err != nil || len(devs) != 1 {
			t.Fatalf("Devices = %v, %v", devs, err)
		}
		d := devs[0]
		if d.Status != "drain" || d.Weight != 40 || d.MBTotal != 1000 || d.MBUsed != 250 || d.MBAsOf == 0 || d.MBFree() != 750 {
			t.Errorf("device = %+v", d)
		}
		hosts, _ := s.Hosts(ctx)
		if len(hosts) != 1 || hosts[0].GetPort() != 7600 || hosts[0].AltMask != "192.168.0.0/16" {
			t.Errorf("hosts = %+v", hosts)
		}
	})
}

func TestFileLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "k", Devids: []int{1, 2}}, 0)
		if err != nil || fid < 1 {
			t.Fatalf("RegisterTempfile = %d, %v", fid, err)
		}
		tf, err := s.TempfileByFID(ctx, fid)
		if err != nil || fmt.Sprint(tf.Devids) != "[1 2]" || tf.Key != "k" {
			t.Fatalf("TempfileByFID = %+v, %v", tf, err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "k", Length: 30, Devid: 1, HashType: core.HashMD5, Checksum: make([]byte, 16), ClaimTempfile: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TempfileByFID(ctx, fid); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("tempfile after the commit claimed it = %v", err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "k", Length: 30, Devid: 1}); !errors.Is(err, store.ErrFIDExists) {
			t.Fatalf("recommit = %v", err)
		}
		f, err := s.FileByKey(ctx, 1, "k")
		if err != nil || f.FID != fid || f.Length != 30 || f.DevCount != 1 {
			t.Fatalf("FileByKey = %+v, %v", f, err)
		}
		if ht, sum, err := s.Checksum(ctx, fid); err != nil || ht != core.HashMD5 || len(sum) != 16 {
			t.Errorf("Checksum = %d, %x, %v", ht, sum, err)
		}
		// Overwrite: a new fid for the same key replaces the old one.
		fid2, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "k", Devids: []int{2}}, 0)
		if fid2 <= fid {
			t.Fatalf("fids not increasing: %d then %d", fid, fid2)
		}
		replaced, err := s.CommitFile(ctx, store.Commit{FID: fid2, DomainID: 1, Key: "k", Length: 5, Devid: 2})
		if err != nil || replaced != fid {
			t.Fatalf("overwrite commit = %d, %v; want %d", replaced, err, fid)
		}
		rows, _ := s.DebugRows(ctx, fid)
		if rows["delqueue"]["fid"] != fmt.Sprint(fid) {
			t.Errorf("old fid not queued for deletion: %v", rows)
		}
		rows, _ = s.DebugRows(ctx, fid2)
		if rows["replqueue"]["nexttry"] != "0" || rows["replqueue"]["fromdevid"] != "2" {
			t.Errorf("replication not queued: %v", rows)
		}
		if devs, _ := s.FileDevids(ctx, fid2); fmt.Sprint(devs) != "[2]" {
			t.Errorf("FileDevids = %v", devs)
		}
		// Rename, onto an existing key, and delete.
		if err := s.RenameKey(ctx, 1, "k", "k2", store.Durable); err != nil {
			t.Fatal(err)
		}
		fid3, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "x"}, 0)
		s.CommitFile(ctx, store.Commit{FID: fid3, DomainID: 1, Key: "x", Devid: 1})
		if err := s.RenameKey(ctx, 1, "x", "k2", store.Durable); !errors.Is(err, store.ErrExists) {
			t.Fatalf("rename onto existing = %v", err)
		}
		if err := s.RenameKey(ctx, 1, "nope", "y", store.Durable); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rename missing = %v", err)
		}
		if _, err := s.DeleteKey(ctx, 1, "x", store.Durable); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteKey(ctx, 1, "x", store.Durable); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice = %v", err)
		}
		if max, _ := s.MaxFID(ctx); max != fid2 {
			t.Errorf("MaxFID = %d; want %d", max, fid2)
		}
	})
}

func TestExplicitFIDAndMinFID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.RegisterTempfile(ctx, store.Tempfile{FID: 100, DomainID: 1}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RegisterTempfile(ctx, store.Tempfile{FID: 100, DomainID: 1}, 0); !errors.Is(err, store.ErrExists) {
			t.Fatalf("explicit fid twice = %v", err)
		}
		if _, err := s.RegisterTempfile(ctx, store.Tempfile{FID: 50, DomainID: 1}, 60); !errors.Is(err, store.ErrExists) {
			t.Fatalf("explicit fid below min = %v", err)
		}
		// Automatic fids never go at or below minFID.
		fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1}, 500)
		if err != nil || fid <= 500 {
			t.Fatalf("auto fid with min 500 = %d, %v", fid, err)
		}
	})
}

func TestListKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		keys := []string{"a/1", "a/2", "a/b/3", "a_x", "A/9", "b", "a%y"}
		for i, k := range keys {
			fid, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: k}, 0)
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: k, Length: int64(i), Devid: 1}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			prefix, after string
			limit         int
			want          string
		}{
			{"", "", 100, "[A/9 a%y a/1 a/2 a/b/3 a_x b]"},
			{"a/", "", 100, "[a/1 a/2 a/b/3]"},
			{"a/", "a/1", 100, "[a/2 a/b/3]"},
			{"a/", "", 2, "[a/1 a/2]"},
			{"a_", "", 100, "[a_x]"},
			{"a%", "", 100, "[a%y]"},
			{"zz", "", 100, "[]"},
		}
		for _, tt := range tests {
			got, err := s.ListKeys(ctx, 1, tt.prefix, tt.after, tt.limit)
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("ListKeys(%q, %q, %d) = %v, %v; want %s", tt.prefix, tt.after, tt.limit, got, err, tt.want)
			}
		}
		files, err := s.ListFids(ctx, 2, 3)
		if err != nil || len(files) != 3 || files[0].FID != 3 {
			t.Errorf("ListFids = %v, %v", files, err)
		}
	})
}

func TestSettingsAndFsckLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		s.SetSetting(ctx, "fsck_sum_evcount_MISS", "3")
		s.SetSetting(ctx, "fsck_sum_evcount_BLEN", "1")
		s.SetSetting(ctx, "memcache_ttl", "10")
		if err := s.DeleteSettingsPrefix(ctx, "fsck_sum_evcount_"); err != nil {
			t.Fatal(err)
		}
		m, _ := s.Settings(ctx)
		if len(m) != 2 || m["memcache_ttl"] != "10" {
			t.Errorf("Settings = %v", m)
		}
		if _, ok, _ := s.Setting(ctx, "nope"); ok {
			t.Error("missing setting found")
		}
		s.AddFsckLog(ctx, 7, "MISS", 2)
		s.AddFsckLog(ctx, 8, "NOPA", 0)
		rows, err := s.FsckLog(ctx, 0, 100)
		if err != nil || len(rows) != 2 || rows[0].EvCode != "MISS" || rows[1].Devid.Valid {
			t.Fatalf("FsckLog = %+v, %v", rows, err)
		}
		if n, _ := s.MaxFsckLogID(ctx); n != rows[1].LogID {
			t.Errorf("MaxFsckLogID = %d", n)
		}
		s.ClearFsckLog(ctx)
		if rows, _ := s.FsckLog(ctx, 0, 100); len(rows) != 0 {
			t.Errorf("log not cleared: %v", rows)
		}
		now, err := s.Now(ctx)
		if err != nil || now < 1.7e9 {
			t.Errorf("Now = %d, %v", now, err)
		}
	})
}

func TestListDirAndMeta(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		keys := []string{"a/1", "a/2", "a/b/3", "a/b/c/4", "a/b/d", "a/c/", "a/d", "a0", "b/x", "top"}
		for i, k := range keys {
			fid, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: k}, 0)
			meta := map[string]string{"mtime": fmt.Sprint(1000 + i)}
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: k, Length: int64(i), Devid: 1, Meta: meta}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(prefix, after string, limit int) string {
			es, more, err := s.ListDir(ctx, 1, prefix, "/", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, e := range es {
				switch {
				case e.Marker:
					parts = append(parts, fmt.Sprintf("%s(dir):%d:%s", e.Name, e.Length, e.Meta["mtime"]))
				case e.IsDir:
					parts = append(parts, e.Name+"(dir)")
				default:
					parts = append(parts, fmt.Sprintf("%s:%d:%s", e.Name, e.Length, e.Meta["mtime"]))
				}
			}
			return fmt.Sprint(parts, more)
		}
		tests := []struct {
			prefix, after string
			limit         int
			want          string
		}{
			{"", "", 100, "[a/(dir) a0:7:1007 b/(dir) top:9:1009] false"},
			{"a/", "", 100, "[a/1:0:1000 a/2:1:1001 a/b/(dir) a/c/(dir):5:1005 a/d:6:1006] false"},
			{"a/", "", 2, "[a/1:0:1000 a/2:1:1001] true"},
			{"a/", "a/2", 2, "[a/b/(dir) a/c/(dir):5:1005] true"},
			{"a/", "a/b/\xff", 10, "[a/c/(dir):5:1005 a/d:6:1006] false"},
			{"a/b/", "", 100, "[a/b/3:2:1002 a/b/c/(dir) a/b/d:4:1004] false"},
			{"a/c/", "", 100, "[a/c/:5:1005] false"},
			{"zz/", "", 100, "[] false"},
		}
		for _, tt := range tests {
			if got := list(tt.prefix, tt.after, tt.limit); got != tt.want {
				t.Errorf("ListDir(%q, after %q, %d) = %s; want %s", tt.prefix, tt.after, tt.limit, got, tt.want)
			}
		}
		f, _ := s.FileByKey(ctx, 1, "top")
		if err := s.SetFileMeta(ctx, f.FID, map[string]string{"mode": "0600"}, store.Durable); err != nil {
			t.Fatal(err)
		}
		m, err := s.FileMeta(ctx, f.FID)
		if err != nil || m["mode"] != "0600" || m["mtime"] != "1009" {
			t.Errorf("FileMeta = %v, %v", m, err)
		}
	})
}

// FileAndMeta answers what FileAndDevids and FileMeta do, in one query:
// a file with copies and metadata, one with neither, and none.
func TestFileAndMeta(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		commit := func(key string, meta map[string]string, copies []int) int64 {
			fid, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: key}, 0)
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: key, Length: 7, Devid: 3, Copies: copies, Meta: meta}); err != nil {
				t.Fatal(err)
			}
			return fid
		}
		fid := commit("full", map[string]string{"mtime": "5", "mode": "420"}, []int{1, 2})
		f, devids, meta, err := s.FileAndMeta(ctx, 1, "full")
		if err != nil || f.FID != fid || f.Length != 7 || fmt.Sprint(devids) != "[1 2 3]" || len(meta) != 2 || meta["mtime"] != "5" || meta["mode"] != "420" {
			t.Errorf("FileAndMeta(full) = %+v, %v, %v, %v", f, devids, meta, err)
		}
		fid = commit("bare", nil, nil)
		if f, devids, meta, err := s.FileAndMeta(ctx, 1, "bare"); err != nil || f.FID != fid || fmt.Sprint(devids) != "[3]" || len(meta) != 0 {
			t.Errorf("FileAndMeta(bare) = %+v, %v, %v, %v", f, devids, meta, err)
		}
		if _, _, _, err := s.FileAndMeta(ctx, 1, "none"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FileAndMeta(none): %v; want ErrNotFound", err)
		}
	})
}

// A listing of more files than one metadata query asks for (1,024) gets
// every file's own metadata: the fids are asked for in batches, each
// padded to a power of two.
func TestListDirMetaOfBigDirectory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 1100
		for i := range n {
			k := fmt.Sprintf("big/f%04d", i)
			fid, _ := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: k}, 0)
			meta := map[string]string{"mtime": fmt.Sprint(i)}
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: k, Devid: 1, Meta: meta}); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []int{n, 1027, 3} {
			es, _, err := s.ListDir(ctx, 1, "big/", "/", "", limit)
			if err != nil || len(es) != limit {
				t.Fatalf("ListDir(limit %d) = %d entries, %v", limit, len(es), err)
			}
			for i, e := range es {
				if want := fmt.Sprint(i); e.Meta["mtime"] != want || len(e.Meta) != 1 {
					t.Fatalf("limit %d: %s has metadata %v; want mtime %s", limit, e.Name, e.Meta, want)
				}
			}
		}
	})
}

// TestConcurrentCommits commits many uploads of one key at once (they are
// batched on SQLite): every commit succeeds, one fid stays, every other
// is queued for deletion, and a second claim of any fid fails.
func TestConcurrentCommits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 40
		fids := make([]int64, n)
		for i := range fids {
			fids[i], _ = s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "hot"}, 0)
		}
		errs := make(chan error, 2*n)
		var wg sync.WaitGroup
		for _, fid := range fids {
			for twice := 0; twice < 2; twice++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "hot", Length: 1, Devid: 1, ClaimTempfile: true})
					errs <- err
				}()
			}
		}
		wg.Wait()
		close(errs)
		ok, notFound := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrNotFound):
				notFound++
			default:
				t.Errorf("commit: %v", err)
			}
		}
		if ok != n || notFound != n {
			t.Fatalf("%d commits succeeded and %d were refused; want %d and %d", ok, notFound, n, n)
		}
		if q, _ := s.QueueLength(ctx, store.DeleteQueue); q != n-1 {
			t.Errorf("%d fids queued for deletion; want %d", q, n-1)
		}
		if _, err := s.FileByKey(ctx, 1, "hot"); err != nil {
			t.Errorf("the key is gone: %v", err)
		}
	})
}

// A client-chosen fid may not alias any fid the database has used, nor
// push the fid counter to the end of its range.
func TestExplicitFIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reg := func(fid int64) (int64, error) {
			return s.RegisterTempfile(ctx, store.Tempfile{FID: fid, DomainID: 1, Key: fmt.Sprint("k", fid), Devids: []int{1}}, 0)
		}
		// A file deleted while one of its copies could not be removed
		// yet: its fid is still referenced by file_on and the queue.
		old, err := reg(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: old, DomainID: 1, Key: "gone", Length: 3, Devid: 1, ClaimTempfile: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteKey(ctx, 1, "gone", store.Durable); err != nil {
			t.Fatal(err)
		}
		if _, err := reg(old); !errors.Is(err, store.ErrExists) {
			t.Errorf("explicit fid of a deleted file still queued for deletion: %v; want ErrExists", err)
		}
		// Past the counter, within the headroom: accepted, and the
		// counter moves past it.
		next := old + 10
		if got, err := reg(next); err != nil || got != next {
			t.Fatalf("explicit fid %d: %d, %v", next, got, err)
		}
		if auto, err := reg(0); err != nil || auto <= next {
			t.Errorf("next automatic fid %d, %v; want above %d", auto, err, next)
		}
		// A gap below the highest allocated fid is not reused either.
		if _, err := reg(next - 1); !errors.Is(err, store.ErrExists) {
			t.Errorf("explicit fid below the highest allocated: %v; want ErrExists", err)
		}
		// The end of the fid space is refused, and uploads go on.
		if _, err := reg(9223372036854775807); !errors.Is(err, store.ErrFIDRange) {
			t.Errorf("explicit fid 2^63-1: %v; want ErrFIDRange", err)
		}
		if _, err := reg(next + store.ExplicitFIDHeadroom + 100); !errors.Is(err, store.ErrFIDRange) {
			t.Errorf("explicit fid past the headroom: %v; want ErrFIDRange", err)
		}
		if auto, err := reg(0); err != nil || auto > next+100 {
			t.Errorf("automatic fid after the refused ones: %d, %v", auto, err)
		}
	})
}

// The files of a dead device are queued for replication and their copies
// there forgotten, a whole batch in one call.
func TestMoveToReplication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.CreateDomain(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		var fids []int64
		for i := 0; i < 50; i++ {
			fid := int64(1000 + i)
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: fmt.Sprint("k", i), Length: 1, Devid: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddCopy(ctx, fid, 2); err != nil {
				t.Fatal(err)
			}
			fids = append(fids, fid)
		}
		if err := s.MoveToReplication(ctx, fids, 2); err != nil {
			t.Fatal(err)
		}
		if left, err := s.FIDsOnDevice(ctx, 2, 0, 100); err != nil || len(left) != 0 {
			t.Errorf("copies left on the dead device: %v, %v", left, err)
		}
		if n, err := s.QueueLength(ctx, store.ReplicateQueue); err != nil || n != 50 {
			t.Errorf("replicate queue = %d, %v; want 50", n, err)
		}
		f, err := s.FileByFID(ctx, 1007)
		if err != nil || f.DevCount != 1 {
			t.Errorf("file 1007 = %+v, %v; want devcount 1", f, err)
		}
	})
}

// Listing a device's fids in fid order walks an index on SQLite, not a
// sort of every copy on the device: the dead-device reaper pages through
// millions (with the schema's index on devid alone, each page sorted the
// whole device, and a million-file disk was requeued at ~1,000 a second).
func TestFIDsOnDeviceUsesAnIndex(t *testing.T) {
	dsn := storetest.DSNs(t)[store.SQLite]
	s, err := store.Open(context.Background(), store.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{
		`SELECT fid FROM file_on WHERE devid=2 AND fid > 0 ORDER BY fid LIMIT 1000`,
		`SELECT fid FROM file_on WHERE devid=2 AND fid < 9 ORDER BY fid DESC LIMIT 1000`,
	} {
		rows, err := s.DB().Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", q, p)
		}
	}
	// Every copy recorded writes a page of each of file_on's indexes:
	// one on devid alone (the original's) is devid_fid's prefix, and is
	// dropped (a tenth of a small file's commit).
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND tbl_name='file_on' AND name='devid'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("file_on's index on devid alone: %d (%v), want dropped", n, err)
	}
}

// TestAddCopyOfDeletedFileRefused: a replication or rebalance that ends
// after the file was deleted must not record its copy. The delete job may
// already have removed the fid's copies, and would never learn of the new
// one: its bytes would stay on the device with nothing to remove them.
// Refused, the copy is the replicator's to remove (a stray).
func TestAddCopyOfDeletedFileRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		fid, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "doomed", Devids: []int{1}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "doomed", Length: 5, Devid: 1, ClaimTempfile: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteKey(ctx, 1, "doomed", store.Durable); err != nil {
			t.Fatal(err)
		}
		if err := s.AddCopy(ctx, fid, 2); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddCopy of a deleted fid = %v; want ErrNotFound", err)
		}
		if err := s.AddCopyDone(ctx, fid, 3, store.ReplicateQueue); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddCopyDone of a deleted fid = %v; want ErrNotFound", err)
		}
		// The deleted fid's own copy stays listed until the delete job
		// removes it; the refused ones must not be.
		devs, err := s.FileDevids(ctx, fid)
		if err != nil || fmt.Sprint(devs) != "[1]" {
			t.Errorf("FileDevids = %v, %v; want [1]", devs, err)
		}
	})
}

// TestStrayQueue: a stray copy is a file_to_queue row of type 3 with its
// device, one per fid, claimed like the other queues.
func TestStrayQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.EnqueueStray(ctx, 41, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueStray(ctx, 41, 4); !errors.Is(err, store.ErrExists) {
			t.Errorf("a second stray of the fid = %v; want ErrExists", err)
		}
		items, err := s.ClaimQueue(ctx, store.StrayQueue, 10, 30)
		if err != nil || len(items) != 1 || items[0].FID != 41 || items[0].FromDevid != 3 {
			t.Fatalf("ClaimQueue(stray) = %+v, %v; want fid 41 on device 3", items, err)
		}
		if again, _ := s.ClaimQueue(ctx, store.StrayQueue, 10, 30); len(again) != 0 {
			t.Errorf("a leased stray was claimed again: %+v", again)
		}
		if n, _ := s.QueueLength(ctx, store.FsckQueue); n != 0 {
			t.Errorf("the fsck queue holds %d rows; strays are not fsck work", n)
		}
		if err := s.DoneQueue(ctx, store.StrayQueue, 41); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.QueueLength(ctx, store.StrayQueue); n != 0 {
			t.Errorf("stray queue after DoneQueue: %d rows", n)
		}
	})
}

// The delete job's work on a batch of fids is recorded in one call: a
// fid with no copy left is forgotten whole (copies, checksum, queue row),
// one with copies left forgets those removed and is due again later.
func TestFinishDeletes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.CreateDomain(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		for _, fid := range []int64{7, 8, 9} {
			if _, err := s.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: fmt.Sprint("k", fid), Length: 1, Devid: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddCopy(ctx, fid, 2); err != nil {
				t.Fatal(err)
			}
			if err := s.SetChecksum(ctx, fid, 1, []byte("0123456789abcdef")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DeleteKey(ctx, 1, fmt.Sprint("k", fid), store.Durable); err != nil {
				t.Fatal(err)
			}
		}
		if m, err := s.FilesDevids(ctx, []int64{7, 8, 9, 10}); err != nil || fmt.Sprint(m) != "map[7:[1 2] 8:[1 2] 9:[1 2]]" {
			t.Errorf("FilesDevids = %v, %v", m, err)
		}
		// fids 7 and 9: both copies removed; fid 8: the one on device 2
		// is left.
		if err := s.FinishDeletes(ctx, []store.DeleteDone{
			{FID: 7, Removed: []int{1, 2}},
			{FID: 8, Removed: []int{1}, RetryIn: 600, FailCount: 3},
			{FID: 9, Removed: []int{1, 2}},
		}); err != nil {
			t.Fatal(err)
		}
		if m, err := s.FilesDevids(ctx, []int64{7, 8, 9}); err != nil || fmt.Sprint(m) != "map[8:[2]]" {
			t.Errorf("FilesDevids after = %v, %v; want map[8:[2]]", m, err)
		}
		for _, fid := range []int64{7, 9} {
			if d, err := s.FileDevids(ctx, fid); err != nil || len(d) != 0 {
				t.Errorf("fid %d copies = %v, %v; want none", fid, d, err)
			}
			if _, sum, err := s.Checksum(ctx, fid); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("fid %d checksum = %x, %v; want none", fid, sum, err)
			}
		}
		if d, err := s.FileDevids(ctx, 8); err != nil || len(d) != 1 || d[0] != 2 {
			t.Errorf("fid 8 copies = %v, %v; want [2]", d, err)
		}
		if n, err := s.QueueLength(ctx, store.DeleteQueue); err != nil || n != 1 {
			t.Errorf("delete queue = %d, %v; want fid 8 alone", n, err)
		}
		// fid 8 is due in 600 s, not now.
		if items, err := s.ClaimQueue(ctx, store.DeleteQueue, 10, 30); err != nil || len(items) != 0 {
			t.Errorf("claimed %v, %v; want nothing due", items, err)
		}
	})
}

// NoSync opens SQLite with synchronous=NORMAL (commits not fsynced one
// by one), the default with FULL; MySQL refuses it (its server decides).
func TestNoSyncCommits(t *testing.T) {
	ctx := context.Background()
	for _, noSync := range []bool{false, true} {
		s, err := store.Open(ctx, store.Config{DSN: "DBI:SQLite:dbname=" + filepath.Join(t.TempDir(), "m.db"), NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		var mode int
		if err := s.DB().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 2, true: 1}[noSync]; mode != want {
			t.Errorf("NoSync=%v: PRAGMA synchronous = %d; want %d", noSync, mode, want)
		}
		s.Close()
	}
	if _, err := store.Open(ctx, store.Config{DSN: "DBI:mysql:mogilefs:host=127.0.0.1;port=1", NoSync: true}); err == nil || !strings.Contains(err.Error(), "innodb_flush_log_at_trx_commit") {
		t.Errorf("NoSync on MySQL: %v; want a refusal naming the server's setting", err)
	}
}

// A claim of queued work whose commit reaches the database but whose
// answer is lost with the connection (its node cut off as it committed)
// is still the caller's: ClaimQueue returns the rows it leased instead of
// an error that leaves them leased to no one until the lease ends. A
// claim whose commit never arrived is run again.
func TestClaimSurvivesLostCommitAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, fid := range []int64{21, 22, 23} {
			if err := s.EnqueueReplication(ctx, fid, 1, 0); err != nil {
				t.Fatal(err)
			}
		}
		faults := 0
		store.SetCommitFault(s, func(commit func() error) error {
			faults++
			if faults == 1 {
				if err := commit(); err != nil {
					return err
				}
			}
			if faults <= 2 {
				return mysql.ErrInvalidConn // applied then lost, then never sent
			}
			return commit()
		})
		items, err := s.ClaimQueue(ctx, store.ReplicateQueue, 2, 1000)
		if err != nil || len(items) != 2 {
			t.Fatalf("claim whose answer was lost = %+v, %v; want the 2 rows it leased", items, err)
		}
		items2, err := s.ClaimQueue(ctx, store.ReplicateQueue, 10, 1000)
		if err != nil || len(items2) != 1 {
			t.Fatalf("claim whose commit never arrived = %+v, %v; want the third row", items2, err)
		}
		seen := map[int64]bool{}
		for _, it := range append(items, items2...) {
			seen[it.FID] = true
		}
		if len(seen) != 3 {
			t.Errorf("claimed %v; want each of 21, 22, 23 once", seen)
		}
		if again, err := s.ClaimQueue(ctx, store.ReplicateQueue, 10, 1000); err != nil || len(again) != 0 {
			t.Errorf("leased rows claimed again: %+v, %v", again, err)
		}
	})
}

// Unreferenced keeps the fids that no copy on the device and no upload
// under way refers to.
func TestUnreferenced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.CreateDomain(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitFile(ctx, store.Commit{FID: 7, DomainID: 1, Key: "k", Length: 1, Devid: 1}); err != nil {
			t.Fatal(err)
		}
		upload, err := s.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "u", Devids: []int{2}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Unreferenced(ctx, 1, []int64{7, upload, 99})
		if err != nil || fmt.Sprint(got) != "[99]" {
			t.Errorf("Unreferenced(dev 1) = %v, %v; want [99]", got, err)
		}
		if got, err := s.Unreferenced(ctx, 2, []int64{7, upload}); err != nil || fmt.Sprint(got) != "[7]" {
			t.Errorf("Unreferenced(dev 2) = %v, %v; want [7] (its copy is on dev 1)", got, err)
		}
	})
}

// withoutRowid returns the tables of an SQLite store that are WITHOUT
// ROWID.
func withoutRowid(t *testing.T, s *store.Store) []string {
	rows, err := s.DB().Query(`SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE '%WITHOUT ROWID' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

// A new SQLite store keeps the tables each small file writes WITHOUT
// ROWID (a page fewer per row written); one made by the original, with
// rowid tables, keeps its shape and works alike.
func TestSQLiteTableShapes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(dir, "new.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := fmt.Sprint(withoutRowid(t, s)); got != "[file file_meta file_on file_to_delete2]" {
		t.Errorf("new store: tables WITHOUT ROWID %s, want [file file_meta file_on file_to_delete2]", got)
	}
	// The original's shape: every table a rowid table.
	old := filepath.Join(dir, "old.db")
	raw, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(store.SQLiteTables, `CREATE INDEX devid ON file_on (devid)`) {
		if _, err := raw.Exec(strings.ReplaceAll(q, " WITHOUT ROWID", "")); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	o, err := store.Open(ctx, store.Config{DSN: "sqlite:" + old})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := withoutRowid(t, o); fmt.Sprint(got) != "[file_meta]" {
		t.Errorf("original's store: tables WITHOUT ROWID %v, want only the new file_meta", got)
	}
	var devidIndexes int
	if err := o.DB().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='devid'`).Scan(&devidIndexes); err != nil || devidIndexes != 0 {
		t.Errorf("original's store: index on file_on(devid) %d (%v), want dropped", devidIndexes, err)
	}
	for _, st := range []*store.Store{s, o} {
		fid, err := st.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "k", Devids: []int{1, 2}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "k", Length: 3, Devid: 1, Copies: []int{2},
			Meta: map[string]string{"mtime": "1"}, ClaimTempfile: true, Satisfied: true}); err != nil {
			t.Fatal(err)
		}
		if f, err := st.FileByKey(ctx, 1, "k"); err != nil || f.FID != fid || f.DevCount != 2 {
			t.Errorf("FileByKey = %+v, %v", f, err)
		}
		if devs, err := st.FileDevids(ctx, fid); err != nil || fmt.Sprint(devs) != "[1 2]" {
			t.Errorf("FileDevids = %v, %v", devs, err)
		}
		if m, err := st.FileMeta(ctx, fid); err != nil || m["mtime"] != "1" {
			t.Errorf("FileMeta = %v, %v", m, err)
		}
		if _, err := st.DeleteKey(ctx, 1, "k", store.Durable); err != nil {
			t.Fatal(err)
		}
		if rows, _ := st.DebugRows(ctx, fid); rows["file_to_delete2"]["fid"] != fmt.Sprint(fid) && rows["delqueue"]["fid"] != fmt.Sprint(fid) {
			t.Errorf("deleted file not queued: %v", rows)
		}
	}
}
