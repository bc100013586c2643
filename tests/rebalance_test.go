package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

func TestDrainEmptiesDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Hosts: 3})
	files := uploadMany(t, c, "test", "two", "dr/", 30, 4000)
	waitFor(t, 30*time.Second, "2 copies", func() bool { return copiesOK(t, c, "test", files, 2, nil) })
	ctx := context.Background()
	onDev1 := func() int {
		fids, err := c.Store.FIDsOnDevice(ctx, 1, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(fids)
	}
	if onDev1() == 0 {
		t.Fatal("dev1 holds nothing to drain")
	}
	c.Must("set_state", protocol.Args{"host": "host1", "device": "1", "state": "drain"})
	// Newest files first, in small batches, so that paging is exercised.
	c.Must("set_server_setting", protocol.Args{"key": "queue_rate_for_rebal", "value": "7"})
	c.Must("rebalance_set_policy", protocol.Args{"policy": "from_devices=1 leave_in_drain_mode=1 fid_age=new"})
	if _, err := c.Do("fsck_start", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("rebalance_start", nil); !client.IsCode(err, "fsck_running") {
		t.Errorf("rebalance during fsck = %v", err)
	}
	c.Must("fsck_stop", nil)
	r := c.Must("rebalance_start", nil)
	if !strings.Contains(r["state"], "source_devs=1") {
		t.Errorf("rebalance_start state = %q", r["state"])
	}
	waitFor(t, 60*time.Second, "dev1 empty, every file at 2 copies elsewhere", func() bool {
		return onDev1() == 0 && copiesOK(t, c, "test", files, 2, map[int]bool{1: true})
	})
	waitFor(t, 10*time.Second, "rebalance finished", func() bool {
		st := c.Must("rebalance_status", nil)["state"]
		return strings.Contains(st, "completed_devs=1") && !strings.Contains(st, "time_finished=0")
	})
	verifyAll(t, c, "test", files)
	if st := c.Must("get_devices", protocol.Args{"devid": "1"})["dev1_status"]; st != "drain" {
		t.Errorf("dev1 state after rebalance = %q; want drain (leave_in_drain_mode)", st)
	}
	// No fid files are left on dev1's disk.
	for _, p := range fidFiles(c) {
		if strings.Contains(p, "/dev1/") {
			t.Errorf("file left on the drained device: %s", p)
		}
	}
}
