package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// copiesOnDistinctHosts checks that every file has exactly want copies on
// distinct hosts, none on the excluded devices.
func copiesOK(t testing.TB, c *clustertest.Cluster, domain string, files map[string][]byte, want int, exclude map[int]bool) bool {
	hostOf := map[int]string{}
	for _, n := range c.Nodes {
		for _, d := range n.Devids {
			hostOf[d] = n.Name
		}
	}
	for k := range files {
		fi, err := c.Client.Tracker.FileInfo(context.Background(), domain, k)
		if err != nil {
			t.Fatalf("file_info %s: %v", k, err)
		}
		hosts := map[string]bool{}
		for _, d := range fi.Devids {
			if exclude[d] {
				return false
			}
			hosts[hostOf[d]] = true
		}
		if len(fi.Devids) != want || len(hosts) != want || fi.DevCount != want {
			return false
		}
	}
	return true
}

func TestReplicationToMinDevCountOnDistinctHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 3, DevsPerHost: 2})
	c.Must("create_class", protocol.Args{"domain": "test", "class": "three", "mindevcount": "3"})
	two := uploadMany(t, c, "test", "two", "r2/", 30, 3000)
	three := uploadMany(t, c, "test", "three", "r3/", 10, 70000)
	waitFor(t, 30*time.Second, "2 copies on distinct hosts", func() bool { return copiesOK(t, c, "test", two, 2, nil) })
	waitFor(t, 30*time.Second, "3 copies on distinct hosts", func() bool { return copiesOK(t, c, "test", three, 3, nil) })
	verifyAll(t, c, "test", two)
	verifyAll(t, c, "test", three)
	// Every copy on disk is byte-identical: read each path of each file.
	for k, want := range three {
		paths, err := c.Client.Tracker.GetPaths(context.Background(), "test", k, true)
		if err != nil || len(paths) < 2 {
			t.Fatalf("get_paths %s = %v, %v", k, paths, err)
		}
		for _, p := range paths {
			r := c.Client.NewReader(context.Background(), []string{p}, 0, -1)
			got := readAllT(t, r)
			if string(got) != string(want) {
				t.Fatalf("copy %s of %s differs", p, k)
			}
		}
	}
	// updateclass to a smaller class trims the surplus copy.
	k := firstKey(three)
	if err := c.Client.Tracker.UpdateClass(context.Background(), "test", k, "two"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "surplus copy trimmed", func() bool {
		return copiesOK(t, c, "test", map[string][]byte{k: nil}, 2, nil)
	})
}

func firstKey(m map[string][]byte) string {
	for k := range m {
		return k
	}
	return ""
}

func TestDeadDeviceIsReReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 3})
	files := uploadMany(t, c, "test", "two", "d/", 40, 5000)
	waitFor(t, 30*time.Second, "2 copies", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	// Kill host1's disk: stop the node and mark its device dead.
	c.Nodes[0].Stop()
	c.Must("set_state", protocol.Args{"host": "host1", "device": "1", "state": "dead"})
	waitFor(t, 60*time.Second, "every file back at 2 copies without dev1", func() bool {
		return copiesOK(t, c, "test", files, 2, map[int]bool{1: true})
	})
	verifyAll(t, c, "test", files)
}

func TestHostDownReadsAndReplicationResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 2})
	c.Nodes[1].Stop()
	files := uploadMany(t, c, "test", "two", "h/", 10, 20000)
	// Only host1 is up: one copy each, reads work, replication waits.
	verifyAll(t, c, "test", files)
	time.Sleep(500 * time.Millisecond)
	if copiesOK(t, c, "test", files, 2, nil) {
		t.Fatal("files reached 2 copies with one host down")
	}
	c.Restart(c.Nodes[1])
	waitFor(t, 60*time.Second, "replication after the host returns", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	// Now host1 dies: every file is still readable from host2.
	c.Nodes[0].Stop()
	verifyAll(t, c, "test", files)
}

func TestDeleteRemovesBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	files := uploadMany(t, c, "test", "two", "x/", 5, 1000)
	waitFor(t, 30*time.Second, "2 copies", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	if n := len(fidFiles(c)); n != 10 {
		t.Fatalf("%d fid files on disk; want 10", n)
	}
	for k := range files {
		if err := c.Client.Tracker.Delete(context.Background(), "test", k); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "bytes deleted and the delete queue empty", func() bool {
		n, _ := c.Store.QueueLength(context.Background(), store.DeleteQueue)
		return len(fidFiles(c)) == 0 && n == 0
	})
}

func TestAbandonedUploadIsReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Tune: func(cfg *tracker.Config) { cfg.TempfileMaxAge = time.Second }})
	ctx := context.Background()
	open, err := c.Client.Tracker.CreateOpen(ctx, "test", "never-closed", "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client.PutFile(ctx, open.Dests[0].Path, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if len(fidFiles(c)) != 1 {
		t.Fatal("uploaded bytes not on disk")
	}
	waitFor(t, 20*time.Second, "abandoned upload removed, and its fid forgotten", func() bool {
		_, err := c.Do("file_debug", protocol.Args{"fid": fmt.Sprint(open.FID)})
		return len(fidFiles(c)) == 0 && client.IsCode(err, "unknown_fid")
	})
}
