package storage

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// A device's fid files are listed in pages, in path order, with their
// mtime and size; other files (temporary ones, the usage file) are not.
func TestFidListPages(t *testing.T) {
	_, url, root := newTestNode(t)
	fids := []int64{1, 7, 999, 1000, 1234567, 9999999999, 10000000001}
	old := time.Unix(1_700_000_000, 0)
	for _, fid := range fids {
		p := filepath.Join(root, core.FIDPath(1, fid))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", int(fid%7))), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	os.WriteFile(filepath.Join(root, "dev1/0/000/000/0000000002.fid.tmp-x"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(root, "dev1/usage"), []byte("used: 1\n"), 0o644)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the listing does not end")
		}
		resp, body := do(t, "GET", url+"/dev1/?list_fids=1&limit=3&after="+after, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get(core.FidListHeader) != "1" {
			t.Fatalf("listing: %d %q, header %q", resp.StatusCode, body, resp.Header.Get(core.FidListHeader))
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if body == "" {
			lines = nil
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 4 || f[1] != "1700000000" {
				t.Fatalf("line %q: want fid, mtime 1700000000, size, path", l)
			}
			got = append(got, f[0]+":"+f[2])
			after = f[3]
		}
		if len(lines) < 3 {
			break
		}
	}
	// In path order: the eleven-digit fid's directory is "1", where the
	// ten-digit fids starting with 1 are, before 9999999999's.
	var want []string
	for _, fid := range []int64{1, 7, 999, 1000, 1234567, 10000000001, 9999999999} {
		want = append(want, fmt.Sprintf("%d:%d", fid, fid%7))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listed %v; want %v", got, want)
	}
	resp, body := do(t, "GET", url+"/dev1/", nil, nil)
	if resp.Header.Get(core.FidListHeader) != "" || !strings.Contains(body, "Directory listing disabled") {
		t.Errorf("a plain GET of the device lists it: %q", body)
	}
}
