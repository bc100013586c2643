package tests

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// diskPath returns where a copy of key lives on disk, on the node holding devid.
func diskPath(t *testing.T, c *clustertest.Cluster, domain, key string, devid int) string {
	t.Helper()
	fi, err := c.Client.Tracker.FileInfo(context.Background(), domain, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		for _, d := range n.Devids {
			if d == devid {
				return n.DocRoot + core.FIDPath(devid, fi.FID)
			}
		}
	}
	t.Fatalf("no node has dev%d", devid)
	return ""
}

func TestFsckFindsAndRepairs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 3})
	c.Must("create_class", protocol.Args{"domain": "test", "class": "md5", "mindevcount": "2", "hashtype": "MD5"})
	files := uploadMany(t, c, "test", "two", "f/", 6, 10000)
	summed := uploadMany(t, c, "test", "md5", "s/", 2, 5000)
	for k, v := range summed {
		files[k] = v
	}
	waitFor(t, 30*time.Second, "2 copies", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	ctx := context.Background()
	// Damage: remove one copy, truncate another, corrupt a checksummed one.
	fiA, _ := c.Client.Tracker.FileInfo(ctx, "test", "f/a/0000")
	os.Remove(diskPath(t, c, "test", "f/a/0000", fiA.Devids[0]))
	fiB, _ := c.Client.Tracker.FileInfo(ctx, "test", "f/b/x0001")
	os.Truncate(diskPath(t, c, "test", "f/b/x0001", fiB.Devids[1]), 10)
	fiS, _ := c.Client.Tracker.FileInfo(ctx, "test", "s/a/0000")
	if !strings.HasPrefix(fiS.Checksum, "MD5:") {
		t.Fatalf("checksum not stored by replication: %q", fiS.Checksum)
	}
	p := diskPath(t, c, "test", "s/a/0000", fiS.Devids[0])
	b, _ := os.ReadFile(p)
	b[0] ^= 0xff
	os.WriteFile(p, b, 0o644)

	c.Must("fsck_reset", nil)
	c.Must("fsck_start", nil)
	waitFor(t, 60*time.Second, "fsck to finish and repairs to settle", func() bool {
		st := c.Must("fsck_status", nil)
		if st["running"] != "0" || st["max_fid_checked"] != st["end_fid"] {
			return false
		}
		n, _ := c.Store.QueueLength(ctx, store.FsckQueue)
		return n == 0 && copiesOK(t, c, "test", files, 2, nil)
	})
	st := c.Must("fsck_status", nil)
	for _, code := range []string{"num_MISS", "num_BLEN", "num_BSUM", "num_REPL"} {
		if st[code] == "" || st[code] == "0" {
			t.Errorf("fsck_status %s = %q; status %v", code, st[code], st)
		}
	}
	// Every copy of every file is right again.
	verifyAll(t, c, "test", files)
	for k, want := range files {
		paths, _ := c.Client.Tracker.GetPaths(ctx, "test", k, true)
		for _, pth := range paths {
			got := readAllT(t, c.Client.NewReader(ctx, []string{pth}, 0, -1))
			if string(got) != string(want) {
				t.Errorf("%s: copy %s still wrong after fsck", k, pth)
			}
		}
	}
	log := c.Must("fsck_getlog", nil)
	if log["row_count"] == "0" {
		t.Error("fsck_getlog is empty")
	}
}
