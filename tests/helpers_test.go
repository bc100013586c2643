package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// uploadMany stores n random files of size bytes and returns their contents.
func uploadMany(t testing.TB, c *clustertest.Cluster, domain, class, prefix string, n, size int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i := 0; i < n; i++ {
		k := prefix + string(rune('a'+i%26)) + "/" + strings.Repeat("x", i%3) + itoa(i)
		b := randomBytes(t, size+i)
		if _, err := c.Client.Upload(context.Background(), domain, k, class, bytes.NewReader(b), int64(len(b)), client.UploadOptions{}); err != nil {
			t.Fatalf("upload %s: %v", k, err)
		}
		out[k] = b
	}
	return out
}

func itoa(i int) string { return fmt.Sprintf("%04d", i) }

// verifyAll reads every file back through the client and compares bytes.
func verifyAll(t testing.TB, c *clustertest.Cluster, domain string, files map[string][]byte) {
	t.Helper()
	for k, want := range files {
		r, err := c.Client.Open(context.Background(), domain, k)
		if err != nil {
			t.Fatalf("open %s: %v", k, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("%s: read %d bytes (err %v), want %d bytes with the same checksum", k, len(got), err, len(want))
		}
	}
}

// fidFiles lists the .fid files under every node's docroot.
func fidFiles(c *clustertest.Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		filepath.WalkDir(n.DocRoot, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".fid") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

func readAllT(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// waitUntil polls cond until it holds or timeout passes, and says which.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
