package tracker_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// httpDo sends one request with headers and returns the status and body.
func httpDo(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// The exchange of MogileFS::Client's edit_file, on the wire: edit_file,
// MOVE oldpath to newpath, ranged PUTs of newpath, create_close. The old
// version keeps its copy while the edit is open, and an edit that is
// never closed changes nothing.
func TestWireEditFile(t *testing.T) {
	_, w := startWire(t, clustertest.Options{Domain: "d", Tune: noJobs})
	orig := []byte(strings.Repeat("0123456789", 1000))
	oldFID, _, oldPath := upload(t, w, "d", "doc", "two", orig)

	w.code("edit_file domain=d&key=nope", "unknown_key")
	w.code("edit_file domain=d", "no_key")

	// An edit opened and abandoned: the file is as it was.
	e := w.ok("edit_file domain=d&key=doc")
	if code, _ := httpDo(t, "MOVE", e["oldpath"], nil, map[string]string{"Destination": e["newpath"]}); code != http.StatusCreated {
		t.Fatalf("MOVE of the abandoned edit = %d", code)
	}
	httpDo(t, "PUT", e["newpath"], []byte("XXXX"), map[string]string{"Content-Range": "bytes 0-3/*"})
	if fi := w.ok("file_info domain=d&key=doc"); fi["fid"] != oldFID || fi["devcount"] != "1" {
		t.Fatalf("file_info during an open edit = %v", fi)
	}
	if code, b := httpDo(t, "GET", oldPath, nil, nil); code != 200 || !bytes.Equal(b, orig) {
		t.Fatalf("the old version during an open edit: %d, %d bytes", code, len(b))
	}

	// An edit carried through.
	e = w.ok("edit_file domain=d&key=doc")
	if e["fid"] == oldFID || e["devid"] == "" || e["class"] == "" || e["oldpath"] == oldPath {
		t.Fatalf("edit_file = %v", e)
	}
	if code, _ := httpDo(t, "MOVE", e["oldpath"], nil, map[string]string{"Destination": e["newpath"]}); code != http.StatusCreated {
		t.Fatalf("MOVE = %d", code)
	}
	if code, _ := httpDo(t, "HEAD", e["newpath"], nil, nil); code != 200 {
		t.Fatalf("HEAD newpath = %d", code)
	}
	want := append([]byte(nil), orig...)
	for _, p := range []struct {
		at   int
		data string
	}{{5000, "patched"}, {len(orig), "appended"}} {
		hdr := map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/*", p.at, p.at+len(p.data)-1)}
		if code, b := httpDo(t, "PUT", e["newpath"], []byte(p.data), hdr); code != 200 {
			t.Fatalf("ranged PUT at %d = %d %s", p.at, code, b)
		}
		want = append(want[:p.at], append([]byte(p.data), want[min(len(want), p.at+len(p.data)):]...)...)
	}
	w.expect(fmt.Sprintf("create_close domain=d&key=doc&fid=%s&devid=%s&path=%s&size=%d", e["fid"], e["devid"], e["newpath"], len(want)), "OK ")
	if fi := w.ok("file_info domain=d&key=doc"); fi["fid"] != e["fid"] || fi["length"] != fmt.Sprint(len(want)) {
		t.Fatalf("file_info after the edit = %v", fi)
	}
	gp := w.ok("get_paths domain=d&key=doc")
	if code, b := httpDo(t, "GET", gp["path1"], nil, nil); code != 200 || !bytes.Equal(b, want) {
		t.Fatalf("the edited file read back: %d, %d bytes (want %d)", code, len(b), len(want))
	}
}
