package storage

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// POST /devN/?delete_fids=1 removes each fid's file as a DELETE of it
// with the fid-deleted header would: gone, answered 204 (404 when there
// was none), and a late write of it refused.
func TestDeleteFids(t *testing.T) {
	_, url, root := newTestNode(t)
	for _, fid := range []int64{5, 6, 1234} {
		p := filepath.Join(root, core.FIDPath(1, fid))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := do(t, "POST", url+"/dev1/?delete_fids=1", strings.NewReader("5\n1234\n77\n"), nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(core.FidDeleteHeader) != "1" {
		t.Fatalf("POST: %d %q, header %q", resp.StatusCode, body, resp.Header.Get(core.FidDeleteHeader))
	}
	if body != "5 204\n1234 204\n77 404\n" {
		t.Errorf("answer %q; want 5 and 1234 deleted, 77 not found", body)
	}
	for fid, want := range map[int64]bool{5: false, 1234: false, 6: true} {
		_, err := os.Stat(filepath.Join(root, core.FIDPath(1, fid)))
		if got := err == nil; got != want {
			t.Errorf("fid %d there after the deletion: %v, want %v", fid, got, want)
		}
	}
	// The fid is deleted for good: a late write of it is refused.
	if resp, _ := do(t, "PUT", url+core.FIDPath(1, 5), strings.NewReader("late"), nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT of a fid deleted in a batch: %d; want 409", resp.StatusCode)
	}
	for _, bad := range []string{
		"/dev1/?delete_fids=1 x",   // not a fid
		"/dev1/0/?delete_fids=1 5", // not a device
		"/dev1/ 5",                 // no delete_fids
		"/dev9/?delete_fids=1 5",   // no such device
	} {
		path, fids, _ := strings.Cut(bad, " ")
		resp, _ := do(t, "POST", url+path, strings.NewReader(fids+"\n"), nil)
		if resp.StatusCode/100 != 4 || resp.Header.Get(core.FidDeleteHeader) != "" {
			t.Errorf("POST %s with %q: %d (header %q); want a 4xx without the header", path, fids, resp.StatusCode, resp.Header.Get(core.FidDeleteHeader))
		}
	}
	if _, err := os.Stat(filepath.Join(root, core.FIDPath(1, 6))); err != nil {
		t.Errorf("fid 6 removed by a refused request: %v", err)
	}
}
