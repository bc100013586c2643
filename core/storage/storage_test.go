package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestNode(t testing.TB) (*Server, string, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"dev1", "dev2"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	s, err := New(Config{DocRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL, root
}

func do(t testing.TB, method, url string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPutGetDelete(t *testing.T) {
	_, url, root := newTestNode(t)
	p := "/dev1/0/000/000/0000000123.fid"
	resp, _ := do(t, "PUT", url+p, strings.NewReader("hello mogilefs"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != "hello mogilefs" {
		t.Fatalf("on disk: %q", b)
	}
	resp, body := do(t, "GET", url+p, nil, nil)
	if resp.StatusCode != 200 || body != "hello mogilefs" || resp.Header.Get("Content-Length") != "14" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("GET = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = do(t, "HEAD", url+p, nil, nil)
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 14 {
		t.Fatalf("HEAD = %d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	ranges := []struct {
		rng    string
		status int
		body   string
	}{
		{"bytes=0-4", 206, "hello"},
		{"bytes=6-", 206, "mogilefs"},
		{"bytes=6-100", 206, "mogilefs"},
		{"bytes=100-", 416, ""},
	}
	for _, rr := range ranges {
		resp, body := do(t, "GET", url+p, nil, map[string]string{"Range": rr.rng})
		if resp.StatusCode != rr.status || (rr.status == 206 && body != rr.body) {
			t.Errorf("Range %s = %d %q; want %d %q", rr.rng, resp.StatusCode, body, rr.status, rr.body)
		}
	}
	resp, _ = do(t, "DELETE", url+p, nil, nil)
	if resp.StatusCode != 204 {
		t.Errorf("DELETE = %d", resp.StatusCode)
	}
	resp, _ = do(t, "DELETE", url+p, nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("second DELETE = %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", url+p, nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("GET after DELETE = %d", resp.StatusCode)
	}
}

func TestPutRules(t *testing.T) {
	_, url, root := newTestNode(t)
	sum := md5.Sum([]byte("abc"))
	good := base64.StdEncoding.EncodeToString(sum[:])
	bad := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
	}{
		{"plain", "/dev1/a/b.fid", nil, 200},
		{"md5 ok", "/dev1/a/c.fid", map[string]string{"Content-MD5": good}, 201},
		{"md5 ok unpadded", "/dev1/a/d.fid", map[string]string{"Content-MD5": strings.TrimRight(good, "=")}, 201},
		{"md5 bad", "/dev1/a/e.fid", map[string]string{"Content-MD5": bad}, 400},
		{"no device dir", "/dev9/x.fid", nil, 404},
		{"not a dev", "/notadev/x.fid", nil, 404},
		{"too shallow", "/x.fid", nil, 400},
		{"dotdot", "/dev1/../x.fid", nil, 400},
		{"bad chars", "/dev1/a b.fid", nil, 400},
		{"encoded dots", "/dev1/%2e%2e/x.fid", nil, 400},
	}
	for _, tt := range tests {
		resp, body := do(t, "PUT", url+tt.path, strings.NewReader("abc"), tt.hdr)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: PUT %s = %d %q; want %d", tt.name, tt.path, resp.StatusCode, body, tt.status)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "dev1/a/e.fid")); err == nil {
		t.Error("file with bad MD5 was kept")
	}
	if _, err := os.Stat(filepath.Join(root, "x.fid")); err == nil {
		t.Error("a path trick wrote outside the device")
	}
	for _, m := range []string{"MKCOL", "POST", "OPTIONS"} {
		resp, _ := do(t, m, url+"/dev1/a/", nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("%s = %d; want 400", m, resp.StatusCode)
		}
	}
	// Leftover temp files: none.
	ents, _ := os.ReadDir(filepath.Join(root, "dev1/a"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

func TestSymlinkOutOfDeviceRefused(t *testing.T) {
	_, url, root := newTestNode(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(root, "dev1", "link"))
	resp, body := do(t, "GET", url+"/dev1/link/secret", nil, nil)
	if resp.StatusCode == 200 || strings.Contains(body, "secret") {
		t.Fatalf("GET through symlink = %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, "PUT", url+"/dev1/link/new", strings.NewReader("x"), nil)
	if resp.StatusCode < 400 {
		t.Fatalf("PUT through symlink = %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Fatal("PUT wrote through a symlink out of the device")
	}
	for _, p := range []string{"/dev1/../../etc/passwd", "/dev1/%2e%2e/%2e%2e/etc/passwd", "/dev1/x%00y"} {
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.URL.Opaque = p
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "root:") {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
	}
}

func TestChunkedPutAndDisconnect(t *testing.T) {
	_, url, root := newTestNode(t)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("xyz"))
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", url+"/dev1/c/1.fid", pr) // unknown length: chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked PUT = %v %v", resp, err)
	}
	resp.Body.Close()
	if b, _ := os.ReadFile(filepath.Join(root, "dev1/c/1.fid")); string(b) != "xyz" {
		t.Fatalf("chunked body on disk = %q", b)
	}

	// A client that promises 1000 bytes, sends 10 and hangs up leaves no file.
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /dev1/c/2.fid HTTP/1.0\r\nContent-Length: 1000\r\n\r\n0123456789")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(root, "dev1/c/2.fid")); err == nil {
		t.Fatal("cut-off PUT left a file under the fid's name")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "dev1/c"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file left after cut-off PUT: %s", e.Name())
		}
	}
}

func TestRangePut(t *testing.T) {
	_, url, root := newTestNode(t)
	do(t, "PUT", url+"/dev1/r/1.fid", strings.NewReader("abc"), map[string]string{"Content-Range": "bytes 0-2/6"})
	do(t, "PUT", url+"/dev1/r/1.fid", strings.NewReader("def"), map[string]string{"Content-Range": "bytes 3-5/6"})
	if b, _ := os.ReadFile(filepath.Join(root, "dev1/r/1.fid")); string(b) != "abcdef" {
		t.Fatalf("range PUTs gave %q", b)
	}
}

func TestUsageAndDirectory(t *testing.T) {
	s, url, _ := newTestNode(t)
	if err := s.WriteUsage(); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", url+"/dev1/usage", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("usage = %d", resp.StatusCode)
	}
	keys := []string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if v == "" && k != "device" {
			t.Errorf("usage line %q has no value", line)
		}
		keys = append(keys, k)
	}
	if strings.Join(keys, ",") != "available,device,disk,time,total,use,used" {
		t.Errorf("usage keys = %v", keys)
	}
	resp, body = do(t, "GET", url+"/dev1/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Directory listing disabled") {
		t.Errorf("directory GET = %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", url+"/", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("GET / = %d", resp.StatusCode)
	}
}

func TestSideChannel(t *testing.T) {
	s, url, _ := newTestNode(t)
	do(t, "PUT", url+"/dev1/0/000/999/0000999001.fid", strings.NewReader("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.ServeSide(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	exchanges := []struct{ req, resp string }{
		{"size /dev1/0/000/999/0000999001.fid", "/dev1/0/000/999/0000999001.fid 64"},
		{"size /dev1/0/000/999/0000999999.fid", "/dev1/0/000/999/0000999999.fid -1"},
		{"MD5 /dev1/0/000/999/0000999001.fid", "/dev1/0/000/999/0000999001.fid MD5=fe3a1ff59f3b89b2ad3d33f08984874b"},
		{"MD5 /dev1/0/000/999/0000999001.fid fsck", "/dev1/0/000/999/0000999001.fid MD5=fe3a1ff59f3b89b2ad3d33f08984874b"},
		{"SHA-1 /dev1/0/000/999/0000999001.fid", "/dev1/0/000/999/0000999001.fid SHA-1=ce4303f6b22257d9c9cf314ef1dee4707c6e1c13"},
		{"MD5 /dev1/nope.fid", "/dev1/nope.fid MD5=-1"},
		{"size /dev1/../../etc/passwd", "ERROR: uri invalid (contains ..)"},
		{"bogus", "ERROR: unknown command: bogus"},
	}
	for _, ex := range exchanges {
		fmt.Fprintf(c, "%s\r\n", ex.req)
		line, err := r.ReadString('\n')
		if err != nil || line != ex.resp+"\r\n" {
			t.Errorf("%q -> %q, %v; want %q", ex.req, line, err, ex.resp)
		}
	}
	fmt.Fprintf(c, "watch\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("watch: %v after %q", err, lines)
		}
		lines = append(lines, line)
		if line == ".\n" {
			break
		}
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "1\t") || !strings.HasPrefix(lines[1], "2\t") {
		t.Errorf("watch report = %q", lines)
	}
}

// TestLargeGetStreams checks that a big file is streamed, not read whole
// before the first byte is sent: the file's last bytes are changed on disk
// after the client has its first bytes, and the client must receive the
// changed bytes. A node that buffered the body would send the old ones.
func TestLargeGetStreams(t *testing.T) {
	_, url, root := newTestNode(t)
	const size = 256 << 20
	p := filepath.Join(root, "dev1/big.fid")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url + "/dev1/big.fid")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != size {
		t.Fatalf("Content-Length = %d", resp.ContentLength)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	marker := []byte("written after the first bytes were sent")
	if _, err := f.WriteAt(marker, size-int64(len(marker))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != size-4096 {
		t.Fatalf("rest = %d bytes, %v", len(rest), err)
	}
	if tail := rest[len(rest)-len(marker):]; !bytes.Equal(tail, marker) {
		t.Errorf("the body ends in %q: the node read the whole file before sending it", tail)
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/dev1/0/000/000/0000000001.fid", "/dev1/../x", "/dev1/./x", "//x", "/", "/dev1/", "/a\x00b", `/dev1\..\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		first, rest, err := splitPath(p)
		if err != nil {
			return
		}
		for _, c := range strings.Split(first+"/"+rest, "/") {
			if c == ".." || c == "." {
				t.Fatalf("splitPath(%q) let %q through", p, c)
			}
		}
		if strings.ContainsAny(first+rest, "\x00\\") {
			t.Fatalf("splitPath(%q) let NUL or backslash through", p)
		}
		// What it accepts stays inside a device: the first part names one
		// directory, and joining the parts does not climb out of it.
		if strings.Contains(first, "/") || (first == "" && rest != "") {
			t.Fatalf("splitPath(%q) = %q, %q", p, first, rest)
		}
		if rest != "" {
			if p != "/"+first+"/"+rest {
				t.Fatalf("splitPath(%q) = %q, %q: not the path's parts", p, first, rest)
			}
			if j := filepath.Join(first, rest); j != first && !strings.HasPrefix(j, first+"/") {
				t.Fatalf("splitPath(%q) = %q, %q: joined %q leaves %q", p, first, rest, j, first)
			}
		}
	})
}

// A node fsyncs every file it writes and its directory before it answers;
// with NoSync (mogstored --fsync=false) it answers without, and the file
// is as much in place for readers.
func TestNoSyncWritesWithoutFsync(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, "dev1"), 0o755)
		s, err := New(Config{DocRoot: root, NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s)
		p := "/dev1/0/000/000/0000000007.fid"
		if resp, _ := do(t, "PUT", ts.URL+p, strings.NewReader("seven"), nil); resp.StatusCode != 200 {
			t.Fatalf("NoSync=%v: PUT = %d", noSync, resp.StatusCode)
		}
		if resp, _ := do(t, "COPY", ts.URL+p, nil, map[string]string{"Destination": "/dev1/0/000/000/0000000008.fid"}); resp.StatusCode/100 != 2 {
			t.Fatalf("NoSync=%v: COPY = %d", noSync, resp.StatusCode)
		}
		ts.Close()
		if b, _ := os.ReadFile(filepath.Join(root, "dev1/0/000/000/0000000008.fid")); string(b) != "seven" {
			t.Errorf("NoSync=%v: copy on disk: %q", noSync, b)
		}
		syncs := s.Stats().Syncs.Load()
		if noSync && syncs != 0 || !noSync && syncs < 3 {
			t.Errorf("NoSync=%v: %d fsyncs for a PUT and a COPY", noSync, syncs)
		}
	}
}
