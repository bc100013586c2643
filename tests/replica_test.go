package tests

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
)

// TestReadReplicas configures a read replica with the original's slave_*
// settings and shows that get_paths and file_info read from it, and go
// back to the master when it fails. The "replica" is a second database
// holding one key the master lacks, so the test can tell who answered.
func TestReadReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dsns := storetest.DSNs(t)
	replicaDSN := storetest.DSNs(t)["mysql"]
	if dsns["mysql"] == "" || replicaDSN == "" {
		t.Skip("read replicas are a MySQL feature: set " + storetest.MySQLEnv)
	}
	c := clustertest.Start(t, clustertest.Options{DSN: dsns["mysql"], Domain: "test"})
	ctx := context.Background()
	rep, err := store.Open(ctx, store.Config{DSN: replicaDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	// The replica knows domain 1 and a key "only-on-replica" on dev1.
	rep.CreateDomain(ctx, "test")
	fid, _ := rep.RegisterTempfile(ctx, store.Tempfile{DomainID: 1, Key: "only-on-replica"}, 0)
	if _, err := rep.CommitFile(ctx, store.Commit{FID: fid, DomainID: 1, Key: "only-on-replica", Length: 3, Devid: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("get_paths", protocol.Args{"domain": "test", "key": "only-on-replica", "noverify": "1"}); !client.IsCode(err, "unknown_key") {
		t.Fatalf("master knows the replica's key? %v", err)
	}
	c.Must("set_server_setting", protocol.Args{"key": "slave_r1", "value": replicaDSN})
	c.Must("set_server_setting", protocol.Args{"key": "slave_keys", "value": "r1"})
	waitFor(t, 10*time.Second, "reads from the replica", func() bool {
		_, err := c.Do("get_paths", protocol.Args{"domain": "test", "key": "only-on-replica", "noverify": "1"})
		return err == nil
	})
	if r := c.Must("file_info", protocol.Args{"domain": "test", "key": "only-on-replica"}); r["length"] != "3" {
		t.Errorf("file_info from the replica = %v", r)
	}
	// The replica fails at run time (its file table disappears): the very
	// request that meets the failure is answered by the master, and so are
	// the next ones.
	raw, err := sql.Open("mysql", strings.TrimPrefix(replicaDSN, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("RENAME TABLE file TO file_gone"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Do("get_paths", protocol.Args{"domain": "test", "key": "only-on-replica", "noverify": "1"}); !client.IsCode(err, "unknown_key") {
			t.Fatalf("get_paths %d after the replica broke: %v; want the master's unknown_key", i, err)
		}
	}
	if _, err := raw.Exec("RENAME TABLE file_gone TO file"); err != nil {
		t.Fatal(err)
	}
	// A replica that cannot be reached: reads go to the master.
	c.Must("set_server_setting", protocol.Args{"key": "slave_r1", "value": "mysql:nobody@tcp(127.0.0.1:1)/nothing"})
	waitFor(t, 10*time.Second, "reads back on the master", func() bool {
		_, err := c.Do("get_paths", protocol.Args{"domain": "test", "key": "only-on-replica", "noverify": "1"})
		return client.IsCode(err, "unknown_key")
	})
}
