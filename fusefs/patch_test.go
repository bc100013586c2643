package fusefs

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"bazil.org/fuse"

	"github.com/mogilefs-go/mogilefs-go/fusefs/memcluster"
)

// openRW opens n for writing without O_TRUNC, as the kernel does for a
// program that patches a file in place (a database, dd conv=notrunc).
func openRW(t *testing.T, n *fileNode) *writeHandle {
	t.Helper()
	h, err := n.Open(context.Background(), &fuse.OpenRequest{Flags: fuse.OpenReadWrite}, &fuse.OpenResponse{})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*writeHandle)
}

// A big file changed in the middle is saved by patching it in place: the
// bytes written go to the node, the rest is copied there by the node; no
// byte of the file is read or uploaded by the mount.
func TestPatchBigFileInPlace(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.PatchMinSize = 1 << 20 })
	ctx := context.Background()
	orig := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	n := writeFile(t, f, "d", "big.db", orig)
	var putBytes, gets atomic.Int64
	c.OnPut(func(ctx context.Context, url string, n int64) error { putBytes.Store(n); return nil })
	c.On("get", func(context.Context, int, string, string) error { gets.Add(1); return nil })

	h := openRW(t, n)
	want := append([]byte(nil), orig...)
	for _, w := range []struct {
		off  int64
		data string
	}{{1000, "patched"}, {1003, "PATCH"}, {1 << 20, "middle"}, {int64(len(orig)), "appended at the end"}} {
		if err := h.write(ctx, []byte(w.data), w.off); err != nil {
			t.Fatal(err)
		}
		end := int(w.off) + len(w.data)
		if end > len(want) {
			want = append(want, make([]byte, end-len(want))...)
		}
		copy(want[w.off:], w.data)
	}
	if err := h.commit(ctx); err != nil {
		t.Fatal(err)
	}
	h.release()
	if got, _ := c.Get("d", "big.db"); !bytes.Equal(got.Data, want) {
		t.Fatalf("the patched file differs from what was written (%d bytes, want %d)", len(got.Data), len(want))
	}
	if f.Stats.Patched.Load() != 1 {
		t.Errorf("patched = %d; want 1", f.Stats.Patched.Load())
	}
	if putBytes.Load() != 0 || gets.Load() != 0 {
		t.Errorf("the mount uploaded %d bytes whole and read %d times; a patch sends only its ranges", putBytes.Load(), gets.Load())
	}
}

// Reading through the handle, truncating, or a cluster without edit_file
// all still give the file that was written: the patch becomes a whole
// copy (the committed version fetched, the ranges laid over it).
func TestPatchFallsBackToAWholeCopy(t *testing.T) {
	ctx := context.Background()
	orig := bytes.Repeat([]byte("x"), 3<<20)
	for _, tc := range []struct {
		name  string
		tune  func(*memcluster.Cluster)
		after func(t *testing.T, h *writeHandle) []byte // what the file must hold
	}{
		{"read while patching", nil, func(t *testing.T, h *writeHandle) []byte {
			p := make([]byte, 10)
			n, _, err := h.read(ctx, p, 95)
			if err != nil || string(p[:n]) != "xxxxxABCxx" {
				t.Fatalf("read through the patching handle = %q, %v", p[:n], err)
			}
			return nil
		}},
		{"truncate while patching", nil, func(t *testing.T, h *writeHandle) []byte {
			if err := h.truncate(ctx, 200); err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Repeat([]byte("x"), 100), "ABC"...)
			return append(want, bytes.Repeat([]byte("x"), 97)...)
		}},
		{"plain tracker", func(c *memcluster.Cluster) { c.Plain = true }, nil},
		{"edit fails", func(c *memcluster.Cluster) {
			c.On("put_range", func(context.Context, int, string, string) error { return errors.New("node died") })
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := memcluster.New("d")
			f := newTestFS(t, c, func(cfg *Config) { cfg.PatchMinSize = 1 << 20 })
			n := writeFile(t, f, "d", "f", orig)
			if tc.tune != nil {
				tc.tune(c)
			}
			h := openRW(t, n)
			if err := h.write(ctx, []byte("ABC"), 100); err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte(nil), orig[:100]...), "ABC"...), orig[103:]...)
			if tc.after != nil {
				if w := tc.after(t, h); w != nil {
					want = w
				}
			}
			if err := h.commit(ctx); err != nil {
				t.Fatal(err)
			}
			h.release()
			if got, _ := c.Get("d", "f"); !bytes.Equal(got.Data, want) {
				t.Fatalf("the file holds %d bytes that differ from the %d written", len(got.Data), len(want))
			}
		})
	}
}

// Rewriting the same pages of a patched file (a database does) holds
// their bytes once against the spool limit, not once per write.
func TestPatchRewritesCountOnce(t *testing.T) {
	c := memcluster.New("d")
	f := newTestFS(t, c, func(cfg *Config) { cfg.PatchMinSize = 1 << 20; cfg.SpoolLimit = 64 << 10 })
	ctx := context.Background()
	n := writeFile(t, f, "d", "db", bytes.Repeat([]byte("x"), 2<<20))
	h := openRW(t, n)
	defer h.release()
	page := bytes.Repeat([]byte("p"), 4096)
	for i := range 100 { // 400 KiB written into 8 KiB of the file
		if err := h.write(ctx, page, int64(i%2)*4096); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := h.commit(ctx); err != nil {
		t.Fatal(err)
	}
}
