package tests

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
	"github.com/mogilefs-go/mogilefs-go/fusefs"
)

// chaosDuration is how long the chaos test injects faults:
// MOGILEFS_CHAOS_DURATION (a Go duration) or 75 s.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("MOGILEFS_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MOGILEFS_CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 75 * time.Second
}

// chaosSeed seeds the fault schedule: MOGILEFS_CHAOS_SEED, a number or
// "random" (to keep looking for new faults; the seed is logged so that a
// failing run can be repeated), or 1.
func chaosSeed(t *testing.T) uint64 {
	v := os.Getenv("MOGILEFS_CHAOS_SEED")
	if v == "" {
		return 1
	}
	if v == "random" {
		seed := uint64(time.Now().UnixNano())
		t.Logf("chaos seed %d", seed)
		return seed
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("MOGILEFS_CHAOS_SEED: %v", err)
	}
	return n
}

// keyModel is what a key may hold as far as its client knows: each
// possibility is a content, or absent (nil). An acknowledged operation
// leaves one possibility; a failed one may or may not have happened, so
// it adds one.
type keyModel struct {
	possible [][]byte
}

func (m *keyModel) definite() bool { return len(m.possible) == 1 }

func (m *keyModel) allows(b []byte, absent bool) bool {
	for _, p := range m.possible {
		if (p == nil) == absent && (absent || bytes.Equal(p, b)) {
			return true
		}
	}
	return false
}

func (m *keyModel) set(b []byte)   { m.possible = [][]byte{b} }
func (m *keyModel) maybe(b []byte) { m.possible = append(m.possible, b) }

// chaosStats are the figures the chaos test prints.
type chaosStats struct {
	ops, failedOps, reads, anomalies atomic.Int64
	mountOps, mountFailed            atomic.Int64 // of ops and failedOps, through the mount
	faults                           sync.Map     // kind -> *atomic.Int64
}

func (s *chaosStats) fault(kind string) {
	if os.Getenv("MOGILEFS_CHAOS_DEBUG") != "" {
		fmt.Printf("%s fault: %s\n", time.Now().Format("15:04:05.000"), kind)
	}
	v, _ := s.faults.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// chaosNode is a storage node as the checker sees it.
type chaosNode struct {
	Name, IP string
	Port     int
	DocRoot  string
	Devids   []int
}

// nsNode is a storage node process (the mogstored binary) on a host of
// the network-namespace lab: the fault driver stops it (SIGSTOP), kills
// it and cuts its host off the network.
type nsNode struct {
	lab  *netLab
	host string
	args []string
	cmd  *exec.Cmd
}

func (n *nsNode) start() { n.cmd = n.lab.start(n.host, "mogstored-"+n.host, n.args...) }

// startNSNodes starts storage node processes on hosts of the lab with
// one device each, from devid on, registered with the cluster's
// trackers, and returns them with their checker's view.
func startNSNodes(t *testing.T, c *clustertest.Cluster, lab *netLab, count, devid int, extra ...string) ([]*nsNode, []chaosNode) {
	t.Helper()
	bin := binaries(t)
	var procs []*nsNode
	var nodes []chaosNode
	for i := 0; i < count; i++ {
		host := fmt.Sprintf("ns%d", i+1)
		ip := lab.addHost(host, 31+i)
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, fmt.Sprintf("dev%d", devid+i)), 0o755)
		n := &nsNode{lab: lab, host: host, args: []string{bin + "/mogstored", "--skipconfig", "--docroot=" + root,
			"--httplisten=0.0.0.0:7500", fmt.Sprintf("--mgmtlisten=0.0.0.0:%d", c.SidePort()), "--log-level=warn",
			// The temporary files of uploads cut off by a SIGKILL are swept
			// within the checker's wait.
			"--body_timeout=8s", "--temp_max_age=10s", "--sweep_interval=2s"}}
		n.args = append(n.args, extra...)
		n.start()
		procs = append(procs, n)
		nodes = append(nodes, chaosNode{Name: host, IP: ip, Port: 7500, DocRoot: root, Devids: []int{devid + i}})
		c.Must("create_host", protocol.Args{"host": host, "ip": ip, "port": "7500", "status": "alive"})
		c.Must("create_device", protocol.Args{"hostname": host, "devid": strconv.Itoa(devid + i), "state": "alive"})
	}
	return procs, nodes
}

func isUnknownKey(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && (pe.Code == "unknown_key" || pe.Code == "key_exists")
}

// TestChaos: clients upload, overwrite, rename, delete and read through
// two trackers while a driver kills and restarts storage nodes, trackers
// and the MariaDB server, and stalls storage nodes; as root (unless
// MOGILEFS_CHAOS_NETNS=0), storage node processes on hosts of their own
// (network namespaces) are also stopped with SIGSTOP, killed and cut off
// the network. Afterwards, once the cluster is quiet, every
// key reads back as its client last knew it (or, after an operation that
// failed, as one of the outcomes it may have had), every file has its
// class's copies on distinct hosts, no deleted key is readable, no bytes
// or temporary files are left that nothing references, and every daemon
// answers. Any anomaly fails the test.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	m := startPrivateMariaDB(t)
	mogDSN := m.createDatabase()
	tune := func(cfg *tracker.Config) {
		cfg.TempfileMaxAge = 20 * time.Second // longer than a client waits for a stalled node
		cfg.QueueLease = 10 * time.Second
	}
	// MOGILEFS_CHAOS_FSYNC=0: the storage nodes in the relaxed mode
	// (--fsync=false). Its promise, a daemon's crash loses nothing, is
	// the one the checker holds every mode to (the driver kills
	// processes, never the machine).
	relaxed := os.Getenv("MOGILEFS_CHAOS_FSYNC") == "0"
	if relaxed {
		t.Log("storage nodes without fsync (MOGILEFS_CHAOS_FSYNC=0)")
	}
	c := clustertest.Start(t, clustertest.Options{DSN: mogDSN, Domain: "test", Hosts: 3, Tune: tune, NodesNoSync: relaxed})
	trackers := []*tracker.Server{c.Tracker, nil}
	addrs := []string{c.TrackerAddr, ""}
	trackers[1], addrs[1] = c.StartTracker(tune)
	cl, err := client.New(addrs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var nodes []chaosNode
	for _, n := range c.Nodes {
		nodes = append(nodes, chaosNode{Name: n.Name, IP: n.IP, Port: n.Port, DocRoot: n.DocRoot, Devids: n.Devids})
	}
	// Storage node processes on hosts of their own, to be stopped with
	// SIGSTOP, killed and cut off the network (root only).
	var lab *netLab
	var procs []*nsNode
	if os.Getenv("MOGILEFS_CHAOS_NETNS") == "0" {
		t.Log("no storage hosts in network namespaces (MOGILEFS_CHAOS_NETNS=0)")
	} else if l, why := tryNetLab(t); l == nil {
		t.Logf("no storage hosts in network namespaces: %s", why)
	} else {
		lab = l
		var more []chaosNode
		var extra []string
		if relaxed {
			extra = []string{"--fsync=false"}
		}
		procs, more = startNSNodes(t, c, lab, 2, len(nodes)+1, extra...)
		nodes = append(nodes, more...)
		c.WaitWritable(len(nodes))
	}

	var st chaosStats
	// Workers 0-3 use the client library; worker 4 works through a mount
	// (its writes acknowledged by close(), its reads through the kernel).
	const workers, keysPer = 5, 8
	const mountWorker = workers - 1
	models := make([][]keyModel, workers)
	for w := range models {
		models[w] = make([]keyModel, keysPer)
		for k := range models[w] {
			models[w][k].set(nil)
		}
	}
	keyName := func(w, k int) string { return fmt.Sprintf("chaos/%d/%d", w, k) }
	ctxOp := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 15*time.Second)
	}
	read := func(key string) (b []byte, absent bool, err error) {
		ctx, cancel := ctxOp()
		defer cancel()
		r, err := cl.Open(ctx, "test", key)
		if isUnknownKey(err) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		defer r.Close()
		b, err = io.ReadAll(r)
		return b, false, err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	_, fuseErr := exec.LookPath("fusermount3")
	switch {
	case os.Getenv("MOGILEFS_CHAOS_MOUNT") == "0":
		t.Log("no worker through a mount (MOGILEFS_CHAOS_MOUNT=0)")
	case fuseErr != nil || os.Getenv("SKIP_FUSE_TESTS") == "1":
		t.Log("no FUSE here: no worker through a mount")
	default:
		mnt, _ := mountTrackers(t, addrs, func(cfg *fusefs.Config) {
			cfg.StallTimeout = 5 * time.Second
			cfg.Logger = clustertest.TestLogger(t, slog.LevelWarn)
			if os.Getenv("MOGILEFS_CHAOS_DEBUG") != "" {
				cfg.Logger = clustertest.TestLogger(t, slog.LevelDebug)
			}
		})
		mdir := filepath.Join(mnt, "test", "chaos", strconv.Itoa(mountWorker))
		sh(t, fmt.Sprintf("mkdir -p %q", mdir))
		wg.Add(1)
		go func() {
			defer wg.Done()
			chaosMountWorker(t, stop, rand.New(rand.NewPCG(uint64(mountWorker), 7)), mdir, models[mountWorker], &st)
		}()
	}
	for w := 0; w < mountWorker; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := rng.IntN(keysPer)
				key, mk := keyName(w, k), &models[w][k]
				ctx, cancel := ctxOp()
				var err error
				switch op := rng.IntN(10); {
				case op < 5: // upload or overwrite
					data := make([]byte, 1000+rng.IntN(8000))
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					_, err = cl.Upload(ctx, "test", key, "two", bytes.NewReader(data), int64(len(data)), client.UploadOptions{})
					if err == nil {
						mk.set(data)
					} else {
						mk.maybe(data)
					}
				case op < 7: // delete
					err = cl.Tracker.Delete(ctx, "test", key)
					switch {
					case err == nil || (isUnknownKey(err) && mk.allows(nil, true)):
						err = nil
						mk.set(nil)
					default:
						mk.maybe(nil)
					}
				case op < 8: // rename onto a key known to be absent
					k2 := rng.IntN(keysPer)
					to, mt := keyName(w, k2), &models[w][k2]
					if k2 == k || !mk.definite() || mk.possible[0] == nil || !mt.definite() || mt.possible[0] != nil {
						break
					}
					err = cl.Tracker.Rename(ctx, "test", key, to)
					switch {
					case err == nil:
						mt.set(mk.possible[0])
						mk.set(nil)
					case isUnknownKey(err):
						// Refused: nothing changed.
						err = nil
					default:
						mt.maybe(mk.possible[0])
						mk.maybe(nil)
					}
				default: // read back
					st.reads.Add(1)
					b, absent, rerr := read(key)
					err = rerr
					if rerr == nil && !mk.allows(b, absent) {
						st.anomalies.Add(1)
						t.Errorf("read %s during the run: absent=%v, %d bytes, none of the %d possible outcomes", key, absent, len(b), len(mk.possible))
					}
				}
				cancel()
				st.ops.Add(1)
				if err != nil && os.Getenv("MOGILEFS_CHAOS_DEBUG") != "" {
					t.Logf("op on %s failed: %v", key, err)
				}
				if err != nil {
					st.failedOps.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// The fault driver.
	deadline := time.Now().Add(chaosDuration(t))
	rng := rand.New(rand.NewPCG(chaosSeed(t), 2))
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
		kinds := 5
		if len(procs) > 0 {
			kinds = 8
		}
		switch f := rng.IntN(kinds); f {
		case 5: // stop a storage node process (SIGSTOP), resume it
			n := procs[rng.IntN(len(procs))]
			n.cmd.Process.Signal(syscall.SIGSTOP)
			st.fault("storage process stopped (SIGSTOP)")
			time.Sleep(time.Duration(3000+rng.IntN(2000)) * time.Millisecond)
			n.cmd.Process.Signal(syscall.SIGCONT)
		case 6: // cut a storage host off the network, restore it
			n := procs[rng.IntN(len(procs))]
			lab.link(n.host, false)
			st.fault("storage host cut off")
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			lab.link(n.host, true)
		case 7: // kill a storage node process (SIGKILL), start it again
			n := procs[rng.IntN(len(procs))]
			n.cmd.Process.Kill()
			n.cmd.Wait()
			st.fault("storage process killed")
			time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
			n.start()
		case 4: // stall a storage node for longer than the tracker's timeouts
			n := c.Nodes[rng.IntN(len(c.Nodes))]
			n.Stall()
			st.fault("storage node stalled")
			time.Sleep(time.Duration(3000+rng.IntN(2000)) * time.Millisecond)
			n.Resume()
		case 0, 1: // kill a storage node, bring it back
			n := c.Nodes[rng.IntN(len(c.Nodes))]
			n.Stop()
			st.fault("storage node killed")
			time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
			c.Restart(n)
		case 2: // restart a tracker
			i := rng.IntN(2)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			trackers[i].Close(ctx)
			cancel()
			st.fault("tracker restarted")
			time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
			trackers[i], _ = c.StartTrackerAt(addrs[i], tune)
		case 3: // crash the database
			m.crash()
			st.fault("database crashed")
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			m.start()
		}
	}
	close(stop)
	wg.Wait()

	// Quiet: the queues drain, abandoned uploads are reaped.
	dbc, err := sql.Open("mysql", m.serverDSN()+"mogilefs")
	if err != nil {
		t.Fatal(err)
	}
	defer dbc.Close()
	count := func(q string) int {
		var n int
		if err := dbc.QueryRow(q).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	quiet := time.Now()
	queues := func() string {
		return fmt.Sprintf("file_to_replicate %d, file_to_delete2 %d, tempfile %d", count("SELECT COUNT(*) FROM file_to_replicate"),
			count("SELECT COUNT(*) FROM file_to_delete2"), count("SELECT COUNT(*) FROM tempfile"))
	}
	for q := queues(); q != "file_to_replicate 0, file_to_delete2 0, tempfile 0"; q = queues() {
		// Work that failed during the faults waits its retry delay (30 min
		// for a delete, as the original): the checker is about where the
		// retries end, so their time is brought forward.
		dbc.Exec("UPDATE file_to_delete2 SET nexttry = 0")
		dbc.Exec("UPDATE file_to_replicate SET nexttry = 0")
		if time.Since(quiet) > 120*time.Second {
			st.anomalies.Add(1)
			t.Fatalf("queues not drained 120 s after the faults ended: %s", q)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("quiet after %v", time.Since(quiet).Round(time.Millisecond))

	// Every key is as its client knows it, at its class's copies.
	live := map[string][]byte{}
	for w := range models {
		for k := range models[w] {
			key, mk := keyName(w, k), &models[w][k]
			var b []byte
			var absent bool
			err := retry(5, 500*time.Millisecond, func(context.Context) error {
				var err error
				b, absent, err = read(key)
				return err
			})
			switch {
			case err != nil:
				st.anomalies.Add(1)
				t.Errorf("%s unreadable after the quiet period: %v", key, err)
			case !mk.allows(b, absent):
				st.anomalies.Add(1)
				t.Errorf("%s after the run: absent=%v, %d bytes; none of its %d possible outcomes", key, absent, len(b), len(mk.possible))
			case !absent:
				live[key] = b
			}
		}
	}
	// At least the class's copies (2), on distinct hosts; devcount true.
	hostOf := map[int]string{}
	for _, n := range nodes {
		for _, d := range n.Devids {
			hostOf[d] = n.Name
		}
	}
	spread := func(k string) (string, bool) {
		fi, err := c.Client.Tracker.FileInfo(context.Background(), "test", k)
		hosts := map[string]bool{}
		for _, d := range fi.Devids {
			hosts[hostOf[d]] = true
		}
		desc := fmt.Sprintf("fid %d devcount %d devids %v (%v)", fi.FID, fi.DevCount, fi.Devids, err)
		return desc, err == nil && len(hosts) >= 2 && fi.DevCount == len(fi.Devids)
	}
	for k := range live {
		desc, ok := spread(k)
		for wait := time.Now(); !ok && time.Since(wait) < 30*time.Second; desc, ok = spread(k) {
			time.Sleep(200 * time.Millisecond)
		}
		if !ok {
			st.anomalies.Add(1)
			t.Errorf("%s: not at 2 copies on distinct hosts 30 s after the queues drained: %s", k, desc)
		}
	}

	// No bytes nor temporary files that nothing references. Copies that
	// a tracker may have written without recording them are looked at
	// again for a while (a write held up by a stalled node can land
	// late): the check is repeated until it holds or 40 s have passed.
	fidRE := regexp.MustCompile(`^0*([0-9]+)\.fid$`)
	var onDisk, referenced map[string]bool
	var temps, orphans []string
	scan := func() bool {
		onDisk, referenced, temps, orphans = map[string]bool{}, map[string]bool{}, nil, nil
		for _, n := range nodes {
			filepath.WalkDir(n.DocRoot, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return nil
				}
				rel, _ := filepath.Rel(n.DocRoot, p)
				dev := strings.TrimPrefix(strings.Split(rel, "/")[0], "dev")
				switch {
				case putTempRE.MatchString(e.Name()):
					temps = append(temps, p)
				case fidRE.MatchString(e.Name()) && !strings.HasPrefix(rel, "dev"+dev+"/test-write"):
					onDisk[fidRE.FindStringSubmatch(e.Name())[1]+"/"+dev] = true
				}
				return nil
			})
		}
		rows, err := dbc.Query("SELECT fid, devid FROM file_on")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var fid, devid int64
			rows.Scan(&fid, &devid)
			referenced[strconv.FormatInt(fid, 10)+"/"+strconv.FormatInt(devid, 10)] = true
		}
		rows.Close()
		for k := range onDisk {
			if !referenced[k] {
				orphans = append(orphans, k)
			}
		}
		return len(orphans) == 0 && len(temps) == 0
	}
	for wait := time.Now(); !scan() && time.Since(wait) < 40*time.Second; {
		time.Sleep(time.Second)
	}
	for _, p := range temps {
		st.anomalies.Add(1)
		t.Errorf("temporary file left: %s", p)
	}
	if len(orphans) > 0 {
		st.anomalies.Add(1)
		t.Errorf("%d stored copies that no file_on row references (orphaned bytes), fid/devid: %v", len(orphans), orphans)
		for _, o := range orphans {
			fid, _, _ := strings.Cut(o, "/")
			var devs sql.NullString
			dbc.QueryRow("SELECT GROUP_CONCAT(devid) FROM file_on WHERE fid=?", fid).Scan(&devs)
			var key sql.NullString
			dbc.QueryRow("SELECT dkey FROM file WHERE fid=?", fid).Scan(&key)
			fidN, _ := strconv.Atoi(fid)
			dev, _ := strconv.Atoi(strings.SplitN(o, "/", 2)[1])
			var mtime time.Time
			for _, n := range nodes {
				if st, err := os.Stat(filepath.Join(n.DocRoot, core.FIDPath(dev, int64(fidN)))); err == nil {
					mtime = st.ModTime()
				}
			}
			t.Logf("orphan %s: file row key %q, copies recorded on %q, written %s", o, key.String, devs.String, mtime.Format("15:04:05.000"))
		}
	}
	for k := range referenced {
		if !onDisk[k] {
			st.anomalies.Add(1)
			t.Errorf("file_on row %s has no bytes on disk", k)
		}
	}

	// Every daemon answers.
	for _, a := range addrs {
		if r, err := trackerLine(a, "noop"); err != nil || !strings.HasPrefix(r, "OK") {
			st.anomalies.Add(1)
			t.Errorf("tracker %s after the run: %q, %v", a, r, err)
		}
	}
	for _, n := range nodes {
		resp, err := http.Get(fmt.Sprintf("http://%s:%d/dev%d/usage", n.IP, n.Port, n.Devids[0]))
		if err != nil || resp.StatusCode != 200 {
			st.anomalies.Add(1)
			t.Errorf("storage node %s after the run: %v", n.Name, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}

	var faults []string
	st.faults.Range(func(k, v any) bool {
		faults = append(faults, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("chaos: %d operations (%d through the mount; %d failed while faults were injected, %d of them on the mount; %d reads), %d keys live at the end, faults: %s; anomalies: %d",
		st.ops.Load(), st.mountOps.Load(), st.failedOps.Load(), st.mountFailed.Load(), st.reads.Load(), len(live), strings.Join(faults, ", "), st.anomalies.Load())
	fmt.Printf("chaos figures: operations=%d mount_operations=%d failed=%d mount_failed=%d reads=%d faults=[%s] anomalies=%d\n",
		st.ops.Load(), st.mountOps.Load(), st.failedOps.Load(), st.mountFailed.Load(), st.reads.Load(), strings.Join(faults, ", "), st.anomalies.Load())
}

// chaosMountWorker writes, rewrites, removes and reads keys through the
// mount, in child processes, keeping the model: a write is acknowledged
// when the program's close() succeeded.
func chaosMountWorker(t *testing.T, stop chan struct{}, rng *rand.Rand, dir string, models []keyModel, st *chaosStats) {
	src := filepath.Join(t.TempDir(), "src")
	for {
		select {
		case <-stop:
			return
		default:
		}
		k := rng.IntN(len(models))
		path, mk := filepath.Join(dir, strconv.Itoa(k)), &models[k]
		var err error
		what := "read"
		switch op := rng.IntN(10); {
		case op < 5:
			what = "write"
			data := make([]byte, 1000+rng.IntN(8000))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			os.WriteFile(src, data, 0o644)
			if _, err = shErr(fmt.Sprintf("timeout 30 cat %q > %q", src, path)); err == nil {
				mk.set(data)
			} else {
				// The shell's redirection closes a copy of the descriptor
				// before cat writes: that close() saves the created or
				// truncated, empty file, as on a local disk, and a failed
				// write can leave it so.
				mk.maybe(data)
				mk.maybe([]byte{})
			}
		case op < 7:
			what = "rm"
			if _, err = shErr(fmt.Sprintf("timeout 30 rm -f %q", path)); err == nil {
				mk.set(nil)
			} else {
				mk.maybe(nil)
			}
		default:
			st.reads.Add(1)
			var out []byte
			out, err = exec.Command("timeout", "30", "cat", path).Output()
			absent := false
			if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "No such file") {
				absent, err = true, nil
			}
			if err == nil && !mk.allows(out, absent) {
				st.anomalies.Add(1)
				t.Errorf("read %s through the mount during the run: absent=%v, %d bytes, none of the %d possible outcomes", path, absent, len(out), len(mk.possible))
				// What the mount and the kernel say now, for the record.
				again, err := exec.Command("cat", path).Output()
				size, _ := exec.Command("stat", "-c", "%s", path).Output()
				t.Logf("%s: %s read again: %d bytes (%v); stat size %s", time.Now().Format("15:04:05.000"), path, len(again), err, strings.TrimSpace(string(size)))
			}
		}
		st.ops.Add(1)
		st.mountOps.Add(1)
		if os.Getenv("MOGILEFS_CHAOS_DEBUG") != "" {
			var sizes []int
			for _, p := range mk.possible {
				sizes = append(sizes, len(p))
			}
			fmt.Printf("%s mount %s of %s: err=%v; possible sizes now %v\n", time.Now().Format("15:04:05.000"), what, path, err, sizes)
		}
		if err != nil {
			t.Logf("%s mount %s of %s failed: %v", time.Now().Format("15:04:05.000"), what, path, err)
			st.failedOps.Add(1)
			st.mountFailed.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}
}
