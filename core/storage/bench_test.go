package storage

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// BenchmarkPutSmallFile measures the node's own cost of storing one
// 4 KiB file in a new fid's place (the cp of small files case): the
// handler alone, without a client or a socket. Its figure is per PUT and
// includes the two fsyncs that make the file durable.
func BenchmarkPutSmallFile(b *testing.B) {
	s, _, _ := newTestNode(b)
	body := bytes.Repeat([]byte("x"), 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := core.FIDPath(1, int64(i+1))
		req := httptest.NewRequest(http.MethodPut, p, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("PUT %s = %d %s", p, w.Code, w.Body)
		}
	}
}

// BenchmarkGetSmallFile measures serving one stored 4 KiB file whole,
// over a loopback connection (the handler sends with sendfile, which
// needs a real connection), client included.
func BenchmarkGetSmallFile(b *testing.B) {
	s, url, _ := newTestNode(b)
	body := bytes.Repeat([]byte("x"), 4096)
	const files = 1000
	path := func(fid int) string { return core.FIDPath(1, int64(fid)) }
	for fid := 1; fid <= files; fid++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPut, path(fid), bytes.NewReader(body)))
		if w.Code != http.StatusOK {
			b.Fatalf("PUT = %d", w.Code)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		resp, got := do(b, http.MethodGet, url+path(i%files+1), nil, nil)
		if resp.StatusCode != http.StatusOK || len(got) != len(body) {
			b.Fatalf("GET = %d, %d bytes", resp.StatusCode, len(got))
		}
	}
}
