package storage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/listener"
)

// rawRequest sends raw bytes to the node's address, then closes the
// writing side when closeWrite is set, and returns the status line.
func rawRequest(t *testing.T, url, raw string, closeWrite bool) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && tempNameRE.MatchString(e.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A ranged PUT cut off used to leave a partial write in the file itself,
// overwriting a committed file in place.
func TestRangePutCutOffKeepsFile(t *testing.T) {
	_, url, root := newTestNode(t)
	p := "/dev1/0/000/000/0000000007.fid"
	if resp, _ := do(t, "PUT", url+p, strings.NewReader("committed content"), nil); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	// A reader that has the file open must go on seeing the old version.
	reader, err := os.Open(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rawRequest(t, url, "PUT "+p+" HTTP/1.1\r\nHost: x\r\nContent-Range: bytes 0-9/17\r\nContent-Length: 10\r\n\r\nXXXX", true)
	time.Sleep(100 * time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != "committed content" {
		t.Errorf("after a cut-off ranged PUT the file holds %q", b)
	}
	if resp, body := do(t, "PUT", url+p, strings.NewReader("NEW"), map[string]string{"Content-Range": "bytes 0-2/17"}); resp.StatusCode != 200 {
		t.Fatalf("ranged PUT: %s %s", resp.Status, body)
	}
	if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != "NEWmitted content" {
		t.Errorf("after a ranged PUT the file holds %q", b)
	}
	if b, _ := io.ReadAll(reader); string(b) != "committed content" {
		t.Errorf("a reader of the old version saw %q: the PUT wrote in place", b)
	}
	if left := tempFiles(t, root); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// An offset past the end used to make a sparse file of that size.
func TestRangePutPastEndRefused(t *testing.T) {
	_, url, root := newTestNode(t)
	p := "/dev1/r/2.fid"
	resp, _ := do(t, "PUT", url+p, strings.NewReader("ab"), map[string]string{"Content-Range": "bytes 1099511627776-1099511627777/*"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("ranged PUT at 1 TiB into a missing file = %s; want 416", resp.Status)
	}
	do(t, "PUT", url+p, strings.NewReader("abc"), nil)
	resp, _ = do(t, "PUT", url+p, strings.NewReader("z"), map[string]string{"Content-Range": "bytes 4-4/5"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("ranged PUT one byte past the end = %s; want 416", resp.Status)
	}
	if st, err := os.Stat(filepath.Join(root, p)); err != nil || st.Size() != 3 {
		t.Errorf("file after refused ranges: %v, %v", st, err)
	}
	resp, _ = do(t, "PUT", url+p, strings.NewReader("de"), map[string]string{"Content-Range": "bytes 3-4/5"})
	if b, _ := os.ReadFile(filepath.Join(root, p)); resp.StatusCode != 200 || string(b) != "abcde" {
		t.Errorf("append at the end = %s, file %q", resp.Status, b)
	}
	resp, _ = do(t, "PUT", url+p, strings.NewReader("toolong"), map[string]string{"Content-Range": "bytes 0-1/5"})
	if resp.StatusCode != 400 {
		t.Errorf("range shorter than the body = %s; want 400", resp.Status)
	}
}

// Without write_networks anyone could PUT or DELETE a device's usage file
// and make the trackers mark the device dead.
func TestNodeFilesNotWritable(t *testing.T) {
	s, url, root := newTestNode(t)
	s.WriteUsage()
	before, _ := os.ReadFile(filepath.Join(root, "dev1", "usage"))
	for _, tt := range []struct{ method, path string }{
		{"PUT", "/dev1/usage"}, {"DELETE", "/dev1/usage"}, {"PUT", "/dev1/test-write"},
		{"DELETE", "/dev1/test-write/test-write-5"}, {"PUT", "/dev1/0/.0000000001.fid.0123456789abcdef.tmp"},
	} {
		if resp, _ := do(t, tt.method, url+tt.path, strings.NewReader("total: 1\nused: 1\n"), nil); resp.StatusCode != 403 {
			t.Errorf("%s %s = %s; want 403", tt.method, tt.path, resp.Status)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(root, "dev1", "usage")); string(after) != string(before) {
		t.Errorf("usage file changed by a client: %q", after)
	}
	// The trackers' write probe still works.
	if resp, _ := do(t, "PUT", url+"/dev1/test-write/test-write-5", strings.NewReader("time=1 rand=5"), nil); resp.StatusCode != 200 {
		t.Errorf("write probe PUT = %s", resp.Status)
	}
}

// A node killed mid-PUT left its temporary file forever.
func TestSweepTemp(t *testing.T) {
	s, _, root := newTestNode(t)
	dir := filepath.Join(root, "dev1", "0", "000")
	os.MkdirAll(dir, 0o755)
	old := filepath.Join(dir, ".0000000001.fid.0123456789abcdef.tmp")
	fresh := filepath.Join(dir, ".0000000002.fid.fedcba9876543210.tmp")
	kept := filepath.Join(dir, "0000000003.fid")
	for _, p := range []string{old, fresh, kept} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	long := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, long, long)
	os.Chtimes(kept, long, long)
	if n := s.SweepTemp(context.Background(), time.Now()); n != 1 {
		t.Errorf("SweepTemp removed %d files; want 1", n)
	}
	for p, want := range map[string]bool{old: false, fresh: true, kept: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v; want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// A malformed chunk is the client's error (400), not the node's (500).
func TestBadChunkIs400(t *testing.T) {
	_, url, _ := newTestNode(t)
	line := rawRequest(t, url, "PUT /dev1/c/1.fid HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", false)
	if !strings.Contains(line, " 400 ") {
		t.Errorf("PUT with a bad chunk size = %q; want 400", line)
	}
}

// Slow uploads on every connection kept every reader out; now writers
// hold at most MaxWriters connections and a stalled body times out.
func TestSlowWritersLeaveRoomForReaders(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "dev1"), 0o755)
	os.WriteFile(filepath.Join(root, "dev1", "f"), []byte("readable"), 0o644)
	s, err := New(Config{DocRoot: root, MaxWriters: 3, BodyTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Listener = listener.Limit(inner, 4, nil)
	ts.Start()
	defer ts.Close()
	addr := inner.Addr().String()
	var slow []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT /dev1/s/%d.fid HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc", i)
		slow = append(slow, c)
	}
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(ts.URL + "/dev1/f")
	if err != nil {
		t.Fatalf("GET while four uploads stall: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "readable" {
		t.Errorf("GET = %q", b)
	}
	// The stalled bodies end within their timeout, with an error the
	// client sees, and leave no temporary files.
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, " 400 ") && !strings.Contains(line, " 503 ") {
			t.Errorf("stalled upload %d got %q; want 400 (timed out) or 503 (too many)", i, line)
		}
	}
	waitTemp := time.Now().Add(5 * time.Second)
	for len(tempFiles(t, root)) > 0 && time.Now().Before(waitTemp) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := tempFiles(t, root); len(left) > 0 {
		t.Errorf("temporary files left by timed-out uploads: %v", left)
	}
}

// On a full disk the usage file was never rewritten (it showed 87 % on a
// full disk), so the trackers kept placing files there.
func TestUsageWrittenOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	root := t.TempDir()
	dev := filepath.Join(root, "dev1")
	os.Mkdir(dev, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dev).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", dev).Run()
	s, err := New(Config{DocRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteUsage(); err != nil {
		t.Fatal(err)
	}
	// Fill the disk.
	f, _ := os.Create(filepath.Join(dev, "filler"))
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if err := s.WriteUsage(); err != nil {
		t.Fatalf("WriteUsage on a full disk: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dev, "usage"))
	if !strings.Contains(string(b), "use: 100%") {
		t.Errorf("usage file on a full disk:\n%s", b)
	}
}

// A PUT whose client gave up before the node got to it (a stalled node,
// resumed) must not put the file in place: the client never heard of it,
// and its bytes would stay with nothing referencing them.
func TestPutOfDepartedClientNotCommitted(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "dev1"), 0o755)
	s, err := New(Config{DocRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-gate // the node is stalled
		// net/http notices the closed connection only once the body
		// has been read to its end; hold that end back until it has,
		// so the test does not race the server's background read.
		r.Body = &endAfterCancel{r.Body, r.Context()}
		s.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "PUT /dev1/0/1.fid HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	<-entered
	c.Close() // the client times out and goes
	time.Sleep(50 * time.Millisecond)
	close(gate)
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(root, "dev1/0/1.fid")); err == nil {
		t.Error("the PUT of a client that had gone away was put in place")
	}
	if left := tempFiles(t, root); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// endAfterCancel returns the end of a body only once ctx is done (or a
// second has passed).
type endAfterCancel struct {
	io.ReadCloser
	ctx context.Context
}

func (b *endAfterCancel) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		select {
		case <-b.ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return n, err
}

// The kernel pads /proc/diskstats columns with runs of spaces; a parser
// that expected "major minor " with single spaces found no device and
// the side channel's watch reported "-" for every one.
func TestIOMillisPaddedColumns(t *testing.T) {
	stats := "   8       0 sda 1234 0 5678 90 12 0 34 56 0 4321 146 0 0 0 0\n" +
		" 254       1 vda1 77 0 88 9 10 0 11 12 0 999 21 0 0 0 0\n"
	if ms, ok := ioMillis(stats, 8, 0); !ok || ms != 4321 {
		t.Errorf("sda: %d, %v; want 4321", ms, ok)
	}
	if ms, ok := ioMillis(stats, 254, 1); !ok || ms != 999 {
		t.Errorf("vda1: %d, %v; want 999", ms, ok)
	}
	if _, ok := ioMillis(stats, 8, 1); ok {
		t.Error("a device not listed was found")
	}
}

// mogadm check (MogileFS-Utils) reads http://IP:7500//devN/usage; the
// original answers 200 and ours answered 403. Repeated slashes are
// folded for reads, and what they lead to is still confined.
func TestRepeatedSlashesRead(t *testing.T) {
	s, url, _ := newTestNode(t)
	s.WriteUsage()
	for _, p := range []string{"//dev1/usage", "/dev1//usage", "///dev1///usage"} {
		if resp, body := do(t, "GET", url+p, nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "total:") {
			t.Errorf("GET %s = %s", p, resp.Status)
		}
	}
	for _, p := range []string{"//dev1/../../etc/passwd", "//..//etc/passwd"} {
		req, _ := http.NewRequest("GET", url+"/x", nil)
		req.URL.Path = p
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("GET %s = 200: a path with repeated slashes led out of the devices", p)
		}
	}
}

// A DELETE of a file ends the PUTs of that file still in progress: an
// upload a client abandoned (its node was cut off, it saved the file
// elsewhere and the tracker deleted this copy) can still arrive whole
// after the DELETE once the link is back, and put in place then its bytes
// would stay with nothing referencing them. The chaos test found this.
func TestDeleteEndsPutInProgress(t *testing.T) {
	for _, ranged := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "ranged"}[ranged], func(t *testing.T) {
			_, url, root := newTestNode(t)
			pr, pw := io.Pipe()
			req, _ := http.NewRequest(http.MethodPut, url+"/dev1/0/000/000/0000000007.fid", pr)
			req.ContentLength = 10
			if ranged {
				req.Header.Set("Content-Range", "bytes 0-9/10")
			}
			done := make(chan *http.Response, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					done <- nil
					return
				}
				resp.Body.Close()
				done <- resp
			}()
			io.WriteString(pw, "hello") // half the body: the PUT is in progress
			// Its temporary file exists once the node has taken the file's
			// state (before it reads the body).
			for deadline := time.Now().Add(5 * time.Second); len(tempFiles(t, root)) == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the PUT never began")
				}
			}
			delDone := make(chan *http.Response, 1)
			go func() {
				resp, _ := do(t, http.MethodDelete, url+"/dev1/0/000/000/0000000007.fid", nil, nil)
				delDone <- resp
			}()
			var del *http.Response
			select {
			case del = <-delDone:
			case <-time.After(2 * time.Second):
				t.Fatal("the DELETE waited for the PUT in progress")
			}
			if del.StatusCode != http.StatusNotFound {
				t.Errorf("DELETE: %s, want 404 (nothing was in place yet)", del.Status)
			}
			io.WriteString(pw, "world") // the rest arrives after the DELETE
			pw.Close()
			if resp := <-done; resp != nil && resp.StatusCode < 300 {
				t.Errorf("the PUT ended by a DELETE answered %s", resp.Status)
			}
			if _, err := os.Stat(filepath.Join(root, "dev1/0/000/000/0000000007.fid")); err == nil {
				t.Error("the bytes of a PUT that was in progress when its file was deleted were put in place")
			}
			if left := tempFiles(t, root); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// A temporary-file age not longer than the body timeout would sweep the
// temporary file of an upload still in progress: refused.
func TestTempMaxAgeMustExceedBodyTimeout(t *testing.T) {
	root := t.TempDir()
	if _, err := New(Config{DocRoot: root, BodyTimeout: time.Minute, TempMaxAge: time.Minute}); err == nil {
		t.Error("a temporary-file age equal to the body timeout was accepted")
	}
	if _, err := New(Config{DocRoot: root, BodyTimeout: time.Minute, TempMaxAge: 2 * time.Minute}); err != nil {
		t.Errorf("a temporary-file age past the body timeout: %v", err)
	}
}

// A PUT that reaches the node after the DELETE of its file (both sent
// while the node was stopped or cut off, and served in the other order)
// must not put the deleted file back: its bytes would stay with nothing
// to remove them. Fids are not reused, so a write of a fid deleted
// lately is a late one.
func TestPutAfterDeleteOfItsFileRefused(t *testing.T) {
	_, url, root := newTestNode(t)
	const path = "/dev1/0/000/000/0000000009.fid"
	if resp, _ := do(t, http.MethodDelete, url+path, nil, map[string]string{core.FidDeletedHeader: "1"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE of a file not there: %s", resp.Status)
	}
	for _, ranged := range []bool{false, true} {
		h := map[string]string{}
		if ranged {
			h["Content-Range"] = "bytes 0-4/5"
		}
		resp, _ := do(t, http.MethodPut, url+path, strings.NewReader("late!"), h)
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("PUT (ranged %v) after the DELETE: %s; want 409", ranged, resp.Status)
		}
	}
	if _, err := os.Stat(filepath.Join(root, path)); err == nil {
		t.Error("a PUT that came after its file's DELETE put the file back")
	}
	// Other files are written as ever.
	const other = "/dev1/0/000/000/0000000010.fid"
	if resp, _ := do(t, http.MethodPut, url+other, strings.NewReader("fresh"), nil); resp.StatusCode >= 300 {
		t.Errorf("PUT of another file: %s", resp.Status)
	}
	// A DELETE that does not say the fid is deleted (a stray copy of a
	// file that lives on) leaves the file writable: its copy can be made
	// there again.
	if resp, _ := do(t, http.MethodDelete, url+other, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of a stray copy: %s", resp.Status)
	}
	if resp, _ := do(t, http.MethodPut, url+other, strings.NewReader("again"), nil); resp.StatusCode >= 300 {
		t.Errorf("PUT of a copy after a stray copy's DELETE: %s; want it stored", resp.Status)
	}
}

// A plain DELETE (a stray copy of a file that lives on) refuses the
// writes of the file sent before it (X-MogileFS-Sent earlier than the
// DELETE's), which are the late deliveries of copies the tracker gave up
// on, and takes those sent after it: the tracker's next copy. Accepted,
// a late copy sent before the DELETE stayed unrecorded, and stayed
// forever once its file was deleted (the netns chaos test's orphans).
func TestWriteSentBeforePlainDeleteRefused(t *testing.T) {
	_, url, root := newTestNode(t)
	const path = "/dev1/0/000/000/0000000011.fid"
	sent := func(at time.Time) map[string]string {
		return map[string]string{core.SentHeader: strconv.FormatInt(at.UnixNano(), 10)}
	}
	t0 := time.Now()
	if resp, _ := do(t, http.MethodPut, url+path, strings.NewReader("stray"), sent(t0)); resp.StatusCode >= 300 {
		t.Fatalf("PUT: %s", resp.Status)
	}
	t1 := t0.Add(time.Second)
	if resp, _ := do(t, http.MethodDelete, url+path, nil, sent(t1)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	if resp, _ := do(t, http.MethodPut, url+path, strings.NewReader("late!"), sent(t0.Add(time.Millisecond))); resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT sent before the DELETE, served after it: %s; want 409", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(root, path)); err == nil {
		t.Error("a copy sent before the DELETE was put in place after it")
	}
	if resp, _ := do(t, http.MethodPut, url+path, strings.NewReader("fresh"), sent(t1.Add(time.Millisecond))); resp.StatusCode >= 300 {
		t.Errorf("PUT sent after the DELETE: %s; want it stored", resp.Status)
	}
	// A client that sends no time (the original's) is not refused.
	if resp, _ := do(t, http.MethodPut, url+path, strings.NewReader("legacy"), nil); resp.StatusCode >= 300 {
		t.Errorf("PUT without %s: %s; want it stored", core.SentHeader, resp.Status)
	}
}
