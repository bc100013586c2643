package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/admin"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// mogadm runs the admin tool in-process and returns its output and status.
func mogadm(t *testing.T, c *clustertest.Cluster, prog string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := admin.Run(context.Background(), prog, append([]string{"--trackers=" + c.TrackerAddr}, args...),
		admin.Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("from stdin")})
	return out.String(), errb.String(), code
}

func TestMogadmClusterCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{NoRegister: true, Layout: [][]int{{1}, {2}}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	steps := [][]string{
		{"host", "add", "host1", "--ip=" + n1.IP, "--port=" + itoa(n1.Port), "--status=alive"},
		{"host", "add", "host2", "--ip=" + n2.IP, "--port=" + itoa(n2.Port), "--status=alive"},
		{"device", "add", "host1", "1"},
		{"device", "add", "host2", "dev2"},
		{"domain", "add", "photos"},
		{"class", "add", "photos", "thumbs", "--mindevcount=2", "--hashtype=MD5"},
		{"class", "modify", "photos", "thumbs", "--replpolicy=MultipleDevices()"},
		{"settings", "set", "memcache_ttl", "60"},
		{"device", "modify", "host1", "1", "--weight=50"},
		{"fsck", "reset"},
	}
	for _, s := range steps {
		if out, errs, code := mogadm(t, c, "mogadm", s...); code != 0 {
			t.Fatalf("mogadm %v = %d\n%s%s", s, code, out, errs)
		}
	}
	out, _, _ := mogadm(t, c, "mogadm", "class", "list")
	if !strings.Contains(out, "photos") || !strings.Contains(out, "thumbs") || !strings.Contains(out, "MultipleDevices()") || !strings.Contains(out, "MD5") {
		t.Errorf("class list:\n%s", out)
	}
	// class modify without --mindevcount keeps it (the original reset it to 2).
	if !regexpMatch(`thumbs\s+2\s`, out) {
		t.Errorf("class list lost mindevcount:\n%s", out)
	}
	out, _, _ = mogadm(t, c, "mogadm", "host", "list")
	if !strings.Contains(out, "host1 [1]: alive") || !strings.Contains(out, "host2 [2]: alive") {
		t.Errorf("host list:\n%s", out)
	}
	out, _, _ = mogadm(t, c, "mogadm", "device", "list")
	if !strings.Contains(out, "dev1:") || !strings.Contains(out, "dev2:") {
		t.Errorf("device list:\n%s", out)
	}
	c.WaitWritable(2)
	out, errs, code := mogadm(t, c, "mogadm", "check")
	if code != 0 || !strings.Contains(out, "writeable") || !strings.Contains(out, "total:") {
		t.Errorf("check = %d:\n%s%s", code, out, errs)
	}
	out, _, _ = mogadm(t, c, "mogadm", "settings", "list")
	if !strings.Contains(out, "memcache_ttl = 60") {
		t.Errorf("settings list:\n%s", out)
	}
	out, _, _ = mogadm(t, c, "mogadm", "device", "next")
	if strings.TrimSpace(out) != "3" {
		t.Errorf("device next = %q", out)
	}
	out, _, _ = mogadm(t, c, "mogadm", "fsck", "status")
	if !strings.Contains(out, "Running: Stopped") {
		t.Errorf("fsck status:\n%s", out)
	}
	if _, errs, code := mogadm(t, c, "mogadm", "rebalance", "policy", "--options=from_devices=1 to_devices=2"); code != 0 {
		t.Errorf("rebalance policy: %s", errs)
	}
	out, _, _ = mogadm(t, c, "mogadm", "rebalance", "test")
	if !strings.Contains(out, "Source devices:      1") || !strings.Contains(out, "Destination devices: 2") {
		t.Errorf("rebalance test:\n%s", out)
	}
	if _, errs, code := mogadm(t, c, "mogadm", "rebalance", "policy", "--options=bogus_key=1"); code == 0 || !strings.Contains(errs, "bad_rebal_pol") {
		t.Errorf("bad rebalance policy accepted: %s", errs)
	}
	// Errors: a clear message and exit 1.
	if _, errs, code := mogadm(t, c, "mogadm", "domain", "add", "photos"); code != 1 || !strings.Contains(errs, "domain_exists") {
		t.Errorf("duplicate domain = %d %q", code, errs)
	}
	if _, errs, code := mogadm(t, c, "mogadm", "frobnicate"); code != 1 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command = %d %q", code, errs)
	}
	if _, errs, code := mogadm(t, c, "mogadm", "class", "delete", "photos", "thumbs"); code != 0 {
		t.Errorf("class delete: %s", errs)
	}
	if _, errs, code := mogadm(t, c, "mogadm", "domain", "delete", "photos"); code != 0 {
		t.Errorf("domain delete: %s", errs)
	}
}

func TestFileTools(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := randomBytes(t, 3<<20)
	os.WriteFile(src, data, 0o644)
	if _, errs, code := mogadm(t, c, "mogupload", "--domain=test", "--key=dir/file", "--file="+src, "--class=two"); code != 0 {
		t.Fatalf("mogupload: %s", errs)
	}
	if _, errs, code := mogadm(t, c, "mogupload", "--domain=test", "--key=stdin", "--file=-"); code != 0 {
		t.Fatalf("mogupload from stdin: %s", errs)
	}
	dst := filepath.Join(dir, "dst")
	if _, errs, code := mogadm(t, c, "mogfetch", "--domain=test", "--key=dir/file", "--file="+dst); code != 0 {
		t.Fatalf("mogfetch: %s", errs)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("mogfetch wrote different bytes")
	}
	out, _, _ := mogadm(t, c, "mogfetch", "--domain=test", "--key=stdin", "--file=-")
	if out != "from stdin" {
		t.Errorf("mogfetch to stdout = %q", out)
	}
	out, _, _ = mogadm(t, c, "moglistkeys", "--domain=test")
	if out != "dir/file\nstdin\n" {
		t.Errorf("moglistkeys = %q", out)
	}
	out, _, _ = mogadm(t, c, "mogfileinfo", "--domain=test", "--key=dir/file")
	if !strings.Contains(out, "- file: dir/file") || !strings.Contains(out, "length:") || !strings.Contains(out, " - http://") {
		t.Errorf("mogfileinfo:\n%s", out)
	}
	out, _, _ = mogadm(t, c, "moglistfids", "--fromfid=0", "--count=10")
	if strings.Count(out, "fid ") != 2 {
		t.Errorf("moglistfids:\n%s", out)
	}
	if _, errs, code := mogadm(t, c, "mogrename", "--domain=test", "--old_key=stdin", "--new_key=renamed"); code != 0 {
		t.Errorf("mogrename: %s", errs)
	}
	if _, errs, code := mogadm(t, c, "mogdelete", "--domain=test", "--key=renamed"); code != 0 {
		t.Errorf("mogdelete: %s", errs)
	}
	if _, errs, code := mogadm(t, c, "mogfetch", "--domain=test", "--key=renamed", "--file="+filepath.Join(dir, "x")); code != 1 || !strings.Contains(errs, "unknown_key") {
		t.Errorf("fetch of deleted key = %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("failed fetch left a file behind")
	}
	out, _, _ = mogadm(t, c, "mogfiledebug", "--domain=test", "--key=dir/file")
	if !strings.Contains(out, "fid_dkey: dir/file") {
		t.Errorf("mogfiledebug:\n%s", out)
	}
}
