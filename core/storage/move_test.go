package storage

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopyThenPatchLeavesSourceAlone(t *testing.T) {
	_, url, root := newTestNode(t)
	src := "/dev1/0/000/000/0000000001.fid"
	dst := "/dev1/0/000/000/0000000002.fid"
	if resp, _ := do(t, "PUT", url+src, strings.NewReader("0123456789"), nil); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	if resp, body := do(t, "COPY", url+src, nil, map[string]string{"Destination": url + dst}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("COPY = %d %s", resp.StatusCode, body)
	}
	// A ranged PUT of the copy (edit_file's way) must not reach the
	// source, even when the copy is a hard link of it.
	if resp, body := do(t, "PUT", url+dst, strings.NewReader("ab"), map[string]string{"Content-Range": "bytes 4-5/*"}); resp.StatusCode != 200 {
		t.Fatalf("ranged PUT = %d %s", resp.StatusCode, body)
	}
	if b, _ := os.ReadFile(filepath.Join(root, src)); string(b) != "0123456789" {
		t.Fatalf("source after patching the copy: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, dst)); string(b) != "0123ab6789" {
		t.Fatalf("copy after patching: %q", b)
	}
	// A second COPY over the existing copy replaces it (204), unless the
	// client says Overwrite: F.
	if resp, _ := do(t, "COPY", url+src, nil, map[string]string{"Destination": dst, "Overwrite": "F"}); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("COPY with Overwrite: F over a file = %d, want 412", resp.StatusCode)
	}
	if resp, _ := do(t, "COPY", url+src, nil, map[string]string{"Destination": dst}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("COPY over a file = %d, want 204", resp.StatusCode)
	}
	if b, _ := os.ReadFile(filepath.Join(root, dst)); string(b) != "0123456789" {
		t.Fatalf("copy after a second COPY: %q", b)
	}
}

func TestMoveRenamesDurably(t *testing.T) {
	_, url, root := newTestNode(t)
	src := "/dev1/0/000/000/0000000001.fid"
	dst := "/dev1/0/000/001/0000001002.fid" // a directory not made yet
	do(t, "PUT", url+src, strings.NewReader("moved bytes"), nil)
	if resp, body := do(t, "MOVE", url+src, nil, map[string]string{"Destination": url + dst}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("MOVE = %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(root, src)); !os.IsNotExist(err) {
		t.Fatalf("source after MOVE: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, dst)); string(b) != "moved bytes" {
		t.Fatalf("destination after MOVE: %q", b)
	}
	if resp, _ := do(t, "MOVE", url+src, nil, map[string]string{"Destination": dst}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("MOVE of a missing file = %d, want 404", resp.StatusCode)
	}
}

func TestMoveCopyRefusals(t *testing.T) {
	_, url, root := newTestNode(t)
	src := "/dev1/0/000/000/0000000001.fid"
	do(t, "PUT", url+src, strings.NewReader("keep me"), nil)
	os.MkdirAll(filepath.Join(root, "dev1/test-write"), 0o755)
	os.WriteFile(filepath.Join(root, "dev1/test-write/probe"), []byte("x"), 0o644)
	for _, tc := range []struct {
		method, path, dest string
		want               int
	}{
		{"MOVE", src, "", http.StatusBadRequest},
		{"MOVE", src, src, http.StatusForbidden},
		{"MOVE", src, "/dev2/0/000/000/0000000001.fid", http.StatusBadGateway},
		{"COPY", src, "http://elsewhere.example:7500/dev1/0/000/000/0000000009.fid", http.StatusBadGateway},
		{"MOVE", src, "/dev1/0/../../etc/passwd", http.StatusBadRequest},
		{"COPY", src, "/dev1/usage", http.StatusForbidden},
		{"MOVE", "/dev1/test-write/probe", "/dev1/0/000/000/0000000003.fid", http.StatusForbidden},
		{"COPY", "/dev1/0", "/dev1/1", http.StatusForbidden},
	} {
		hdr := map[string]string{}
		if tc.dest != "" {
			hdr["Destination"] = tc.dest
		}
		if resp, body := do(t, tc.method, url+tc.path, nil, hdr); resp.StatusCode != tc.want {
			t.Errorf("%s %s to %q = %d %s, want %d", tc.method, tc.path, tc.dest, resp.StatusCode, body, tc.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, src)); string(b) != "keep me" {
		t.Fatalf("source after the refusals: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "dev1/test-write/probe")); err != nil {
		t.Fatalf("the tracker's probe file after a refused MOVE: %v", err)
	}
}
