package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStoreReadListRenameDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	ctx := context.Background()
	files := map[string][]byte{
		"a/empty":         {},
		"a/small":         []byte("hello mogilefs golden fixture\n"),
		"b/big":           randomBytes(t, 5<<20+123),
		"odd name & % é+": []byte("odd"),
	}
	for k, v := range files {
		n, err := c.Client.Upload(ctx, "test", k, "two", bytes.NewReader(v), int64(len(v)), client.UploadOptions{Checksum: true})
		if err != nil || n != int64(len(v)) {
			t.Fatalf("Upload(%q) = %d, %v", k, n, err)
		}
	}
	// Unknown length (chunked) upload.
	if _, err := c.Client.Upload(ctx, "test", "c/chunked", "", io.MultiReader(bytes.NewReader([]byte("chunk"))), -1, client.UploadOptions{}); err != nil {
		t.Fatalf("chunked upload: %v", err)
	}
	files["c/chunked"] = []byte("chunk")
	for k, want := range files {
		r, err := c.Client.Open(ctx, "test", k)
		if err != nil {
			t.Fatalf("Open(%q): %v", k, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("read back %q: %d bytes, err %v; want %d bytes", k, len(got), err, len(want))
		}
		fi, err := c.Client.Tracker.FileInfo(ctx, "test", k)
		if err != nil || fi.Length != int64(len(want)) || fi.Key != k {
			t.Fatalf("FileInfo(%q) = %+v, %v", k, fi, err)
		}
	}
	keys, next, err := c.Client.Tracker.ListKeys(ctx, "test", "a/", "", 1000)
	if err != nil || fmt.Sprint(keys) != "[a/empty a/small]" || next != "a/small" {
		t.Fatalf("ListKeys = %v %q %v", keys, next, err)
	}
	if err := c.Client.Tracker.Rename(ctx, "test", "a/small", "a/renamed"); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Tracker.Rename(ctx, "test", "a/renamed", "b/big"); !client.IsCode(err, "key_exists") {
		t.Fatalf("rename onto existing = %v", err)
	}
	if _, err := c.Client.Open(ctx, "test", "a/small"); !client.IsCode(err, "unknown_key") {
		t.Fatalf("old name after rename = %v", err)
	}
	if err := c.Client.Tracker.Delete(ctx, "test", "a/renamed"); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Tracker.Delete(ctx, "test", "a/renamed"); !client.IsCode(err, "unknown_key") {
		t.Fatalf("second delete = %v", err)
	}
	// Overwrite replaces the content.
	if _, err := c.Client.Upload(ctx, "test", "b/big", "", bytes.NewReader([]byte("new")), 3, client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := c.Client.Open(ctx, "test", "b/big")
	got, _ := io.ReadAll(r)
	if string(got) != "new" {
		t.Fatalf("after overwrite: %q", got)
	}
}

func TestProtocolErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	tests := []struct {
		cmd  string
		args protocol.Args
		code string
	}{
		{"bogus_command", nil, "unknown_command"},
		{"get_paths", protocol.Args{"key": "x"}, "no_domain"},
		{"get_paths", protocol.Args{"domain": "nope", "key": "x"}, "unreg_domain"},
		{"get_paths", protocol.Args{"domain": "test"}, "no_key"},
		{"get_paths", protocol.Args{"domain": "test", "key": "missing"}, "unknown_key"},
		{"create_open", protocol.Args{"domain": "test", "class": "nope"}, "unreg_class"},
		{"create_close", protocol.Args{"domain": "test", "fid": "999", "devid": "1", "path": "http://x/y"}, "bogus_args"},
		{"create_close", protocol.Args{"domain": "test", "devid": "1", "path": "http://x/y"}, "no_fid"},
		{"create_close", protocol.Args{"domain": "test", "fid": "1", "devid": "1", "path": "p", "checksum": "MD5:zz"}, "invalid_checksum_format"},
		{"list_keys", protocol.Args{"domain": "test", "prefix": "zzz"}, "none_match"},
		{"list_keys", protocol.Args{"domain": "test", "prefix": "f", "after": "a"}, "after_mismatch"},
		{"create_domain", protocol.Args{"domain": "test"}, "domain_exists"},
		{"create_class", protocol.Args{"domain": "test", "class": "z", "mindevcount": "0"}, "invalid_mindevcount"},
		{"create_class", protocol.Args{"domain": "test", "class": "two", "mindevcount": "2"}, "class_exists"},
		{"create_class", protocol.Args{"domain": "test", "class": "p", "mindevcount": "2", "replpolicy": "Bogus()"}, "invalid_replpolicy"},
		{"create_class", protocol.Args{"domain": "test", "class": "h", "mindevcount": "2", "hashtype": "CRC"}, "invalid_hashtype"},
		{"delete_class", protocol.Args{"domain": "test", "class": "default"}, "nodel_default_class"},
		{"delete_domain", protocol.Args{"domain": "test"}, "domain_has_classes"},
		{"create_host", protocol.Args{"host": "host1", "ip": "127.0.0.9", "port": "7500"}, "host_exists"},
		{"create_host", protocol.Args{"host": "h9", "port": "7500"}, "no_ip"},
		{"create_host", protocol.Args{"host": "h9", "ip": "127.0.0.1", "port": "7500"}, "dup"},
		{"delete_host", protocol.Args{"host": "host1"}, "host_not_empty"},
		{"create_device", protocol.Args{"hostname": "host1", "devid": "1"}, "existing_devid"},
		{"create_device", protocol.Args{"hostname": "nohost", "devid": "9"}, "unknown_host"},
		{"create_device", protocol.Args{"hostname": "host1", "devid": "abc"}, "invalid_devid"},
		{"set_state", protocol.Args{"host": "host1", "device": "1", "state": "bogus"}, "bad_params"},
		{"set_state", protocol.Args{"host": "host2", "device": "1", "state": "down"}, "host_mismatch"},
		{"set_server_setting", protocol.Args{"key": "nope", "value": "1"}, "not_writable"},
		{"rebalance_status", nil, "no_rebal_state"},
		{"rebalance_start", nil, "no_rebal_policy"},
		{"rename", protocol.Args{"domain": "test", "from_key": "a"}, "no_key"},
	}
	for _, tt := range tests {
		_, err := c.Do(tt.cmd, tt.args)
		if !client.IsCode(err, tt.code) {
			t.Errorf("%s %v = %v; want ERR %s", tt.cmd, tt.args, err, tt.code)
		}
	}
	// Dead to alive is refused; dead -> down -> alive is allowed.
	c.Must("set_state", protocol.Args{"host": "host1", "device": "1", "state": "dead"})
	if _, err := c.Do("set_state", protocol.Args{"host": "host1", "device": "1", "state": "alive"}); !client.IsCode(err, "state_too_high") {
		t.Errorf("dead->alive = %v", err)
	}
}

func TestStorageNodeDownReadsOtherCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	ctx := context.Background()
	data := randomBytes(t, 1<<20)
	if _, err := c.Client.Upload(ctx, "test", "k", "two", bytes.NewReader(data), int64(len(data)), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, _ := c.Client.Tracker.FileInfo(ctx, "test", "k")
	paths, _ := c.Client.Tracker.GetPaths(ctx, "test", "k", true)
	if len(paths) < 1 || len(fi.Devids) < 1 {
		t.Fatalf("paths %v devids %v", paths, fi.Devids)
	}
	// A reader given a dead URL first moves on to the next.
	dead := "http://127.0.0.1:1/dev9/x.fid"
	r := c.Client.NewReader(ctx, []string{dead, paths[0]}, 0, -1)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("failover read: %d bytes, %v", len(got), err)
	}
	// A range read.
	r = c.Client.NewReader(ctx, paths, 100, 200)
	got, err = io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[100:200]) {
		t.Fatalf("range read: %d bytes, %v", len(got), err)
	}
	// Every node dies: devices become unreachable and uploads are refused.
	for _, n := range c.Nodes {
		n.Stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r := c.Must("get_devices", protocol.Args{"devid": fmt.Sprint(fi.Devids[0])})
		if r["dev1_observed_state"] == "unreachable" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Do("create_open", protocol.Args{"domain": "test", "key": "x"}); !client.IsCode(err, "no_devices") {
		t.Fatalf("create_open with all nodes down = %v", err)
	}
	for _, n := range c.Nodes {
		c.Restart(n)
	}
	c.WaitWritable(2)
	resp, err := http.Get(paths[0])
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestConcurrentCloseCommitsOnce closes one upload from several clients
// at once: exactly one wins, the others get no_temp_file, and the bytes
// stay (a losing close must not queue the winner's bytes for deletion).
func TestConcurrentCloseCommitsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	ctx := context.Background()
	open, err := c.Client.Tracker.CreateOpen(ctx, "test", "k", "one", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client.PutFile(ctx, open.Dests[0].Path, bytes.NewReader([]byte("hello")), 5); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			results <- c.Client.Tracker.CreateClose(ctx, client.CloseArgs{Domain: "test", Key: "k", FID: open.FID, Dest: open.Dests[0], Size: 5})
		}()
	}
	ok := 0
	for i := 0; i < 6; i++ {
		err := <-results
		switch {
		case err == nil:
			ok++
		case client.IsCode(err, "no_temp_file"):
		default:
			t.Errorf("close: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d closes succeeded; want 1", ok)
	}
	time.Sleep(500 * time.Millisecond) // let the delete worker run
	r, err := c.Client.Open(ctx, "test", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "hello" {
		t.Fatalf("after concurrent closes: %q", got)
	}
}
