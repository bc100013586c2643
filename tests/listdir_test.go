package tests

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// TestListDirBothWays lists a tree through the listing extension and
// through a plain (2.73-compatible) tracker, and gets the same entries.
func TestListDirBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Domain: "test", Tune: func(cfg *tracker.Config) { cfg.Plain = plain }})
			ctx := context.Background()
			var want []string
			for i := 0; i < 30; i++ {
				k := fmt.Sprintf("d/f%02d", i)
				want = append(want, k)
				c.Client.Upload(ctx, "test", k, "", bytes.NewReader([]byte("x")), 1, client.UploadOptions{Meta: map[string]string{"mtime": "123"}})
			}
			for i := 0; i < 50; i++ { // a deep subtree that must be skipped
				c.Client.Upload(ctx, "test", fmt.Sprintf("d/sub/deep/%03d", i), "", bytes.NewReader(nil), 0, client.UploadOptions{})
			}
			c.Client.Upload(ctx, "test", "d/zz", "", bytes.NewReader(nil), 0, client.UploadOptions{})
			want = append(want, "d/sub/", "d/zz")
			var got []string
			after := ""
			calls := 0
			for {
				page, err := c.Client.Tracker.ListDir(ctx, "test", "d/", after, 7)
				calls++
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Entries {
					got = append(got, e.Name)
					if page.Detailed && !e.IsDir && e.Name != "d/zz" && (e.Meta["mtime"] != "123" || e.Size != 1 || e.FID == 0) {
						t.Errorf("entry %+v lacks details", e)
					}
				}
				if page.Detailed == plain {
					t.Errorf("Detailed = %v with plain=%v", page.Detailed, plain)
				}
				if !page.More {
					break
				}
				after = page.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("listing:\n got %v\nwant %v", got, want)
			}
			if calls > 8 {
				t.Errorf("%d list calls for 32 entries: the subtree was not skipped", calls)
			}
			fi, _ := c.Client.Tracker.FileInfo(ctx, "test", "d/f00")
			if !plain && fi.Meta["mtime"] != "123" {
				t.Errorf("file_info meta = %v", fi.Meta)
			}
			err := c.Client.Tracker.SetMeta(ctx, "test", "d/f00", map[string]string{"mtime": "456"})
			if plain != client.IsCode(err, "unknown_command") {
				t.Errorf("SetMeta on plain=%v: %v", plain, err)
			}
		})
	}
}
