package tests

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// A big file changed in the middle through the mount (dd conv=notrunc, as
// a database or a disk image is written) is patched in place: the
// storage nodes receive the written bytes, not the whole file again, and
// a fresh mount reads the file byte for byte as a local copy patched the
// same way.
func TestMountPatchesBigFileInPlace(t *testing.T) {
	condSkipFUSE(t)
	// No replication: its copy of the new version would count as bytes
	// sent to the nodes.
	c := clustertest.Start(t, clustertest.Options{Domain: "test", Tune: func(cfg *tracker.Config) { cfg.NoJobs = true }})
	mnt, f := mountClusterFS(t, c, nil)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.img")
	patch := filepath.Join(dir, "patch")
	big := make([]byte, 16<<20)
	rand.Read(big)
	os.WriteFile(local, big, 0o644)
	p := make([]byte, 64<<10)
	rand.Read(p)
	os.WriteFile(patch, p, 0o644)
	dst := filepath.Join(mnt, "test", "disk.img")
	sh(t, fmt.Sprintf("cp %q %q", local, dst))
	received := func() int64 {
		var n int64
		for _, node := range c.Nodes {
			n += node.Server.Stats().BytesIn.Load()
		}
		return n
	}
	before := received()
	for _, target := range []string{local, dst} {
		sh(t, fmt.Sprintf("dd if=%q of=%q bs=4096 seek=1000 conv=notrunc status=none", patch, target))
	}
	if got := received() - before; got > 1<<20 {
		t.Errorf("patching 64 KiB of a 16 MiB file sent %d bytes to the storage nodes", got)
	}
	if f.Stats.Patched.Load() != 1 {
		t.Errorf("files patched in place = %d; want 1", f.Stats.Patched.Load())
	}
	other := mountCluster(t, c, nil)
	// Read by a program (cmp), not by this process: a test reading its
	// own FUSE mount can deadlock in the Go runtime's poller.
	if out, err := shErr(fmt.Sprintf("cmp %q %q", local, filepath.Join(other, "test", "disk.img"))); err != nil {
		t.Fatalf("the patched file read through another mount differs from the local copy: %v\n%s", err, out)
	}
}
