package storage

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
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
		fid := i + 1
		p := fmt.Sprintf("/dev1/%d/%03d/%03d/%010d.fid", fid/1e9, fid/1e6%1000, fid/1e3%1000, fid)
		req := httptest.NewRequest(http.MethodPut, p, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("PUT %s = %d %s", p, w.Code, w.Body)
		}
	}
}

// BenchmarkGetSmallFile measures the node's cost of serving one stored
// 4 KiB file whole.
func BenchmarkGetSmallFile(b *testing.B) {
	s, _, _ := newTestNode(b)
	body := bytes.Repeat([]byte("x"), 4096)
	const files = 1000
	path := func(fid int) string {
		return fmt.Sprintf("/dev1/%d/%03d/%03d/%010d.fid", fid/1e9, fid/1e6%1000, fid/1e3%1000, fid)
	}
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
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path(i%files+1), nil))
		if w.Code != http.StatusOK || w.Body.Len() != len(body) {
			b.Fatalf("GET = %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
