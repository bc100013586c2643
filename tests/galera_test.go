package tests

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// galeraNode is one MariaDB Galera node in its own network namespace.
type galeraNode struct {
	lab     *netLab
	host    string // the lab's host name
	ip      string
	dir     string
	peers   string // gcomm:// address of the cluster
	cmd     *exec.Cmd
	stopped chan struct{}
}

func (g *galeraNode) args() []string {
	return []string{"mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + g.dir + "/data",
		"--socket=" + g.dir + "/sock", "--pid-file=" + g.dir + "/pid", "--bind-address=" + g.ip, "--port=3306",
		"--innodb-buffer-pool-size=64M", "--skip-log-bin", "--log-error=" + g.dir + "/node.err",
		"--wsrep-on=ON", "--wsrep-provider=" + galeraProvider, "--wsrep-cluster-name=mogtest",
		"--wsrep-cluster-address=" + g.peers, "--wsrep-node-address=" + g.ip,
		"--wsrep-provider-options=evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT4S",
		"--wsrep-sst-method=rsync", "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2"}
}

// start runs the node; bootstrap starts a new cluster with it. After a
// crash it starts from the position it recovers, so that it rejoins by
// incremental transfer.
func (g *galeraNode) start(t *testing.T, bootstrap bool) {
	t.Helper()
	args := g.args()
	if bootstrap {
		args = append(args, "--wsrep-new-cluster")
	} else if pos := g.recoverPosition(t); pos != "" {
		args = append(args, "--wsrep-start-position="+pos)
	}
	g.cmd = exec.Command("ip", append([]string{"netns", "exec", g.lab.prefix + g.host}, args...)...)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.stopped = make(chan struct{})
	cmd := g.cmd
	go func() { cmd.Wait(); close(g.stopped) }()
}

var recoveredRE = regexp.MustCompile(`Recovered position: ([0-9a-f-]+:-?[0-9]+)`)

// recoverPosition asks the node's data directory for its last committed
// position (what galera_recovery does before systemd starts a node).
func (g *galeraNode) recoverPosition(t *testing.T) string {
	if _, err := os.Stat(g.dir + "/data/grastate.dat"); err != nil {
		return ""
	}
	logf := g.dir + "/recover.err"
	args := append(g.args(), "--wsrep-recover", "--log-error="+logf)
	exec.Command(args[0], args[1:]...).Run()
	b, _ := os.ReadFile(logf)
	if m := recoveredRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func (g *galeraNode) kill() {
	if g.cmd != nil && g.cmd.ProcessState == nil {
		g.cmd.Process.Kill()
		<-g.stopped
		// ip netns exec has exec'd mariadbd: the kill reached it.
	}
}

// synced reports whether the node is a synced member of the primary
// component of size members.
func (g *galeraNode) synced(members int) bool {
	db, err := sql.Open("mysql", "root@unix("+g.dir+"/sock)/")
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	rows, err := db.QueryContext(ctx, "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_cluster_size', 'wsrep_ready')")
	if err != nil {
		return false
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		rows.Scan(&k, &v)
		status[k] = v
	}
	return status["wsrep_local_state_comment"] == "Synced" && status["wsrep_ready"] == "ON" && status["wsrep_cluster_size"] == fmt.Sprint(members)
}

// startGalera makes a three-node Galera cluster in the lab and returns
// its nodes; the database mogilefs and a user mog (no password, from
// anywhere) exist on it.
func startGalera(t *testing.T, lab *netLab) []*galeraNode {
	t.Helper()
	var nodes []*galeraNode
	var ips []string
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("db%d", i)
		ip := lab.addHost(host, 30+i)
		dir, err := os.MkdirTemp("/var/tmp", "mogtest-galera-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := os.ReadFile(dir + "/node.err")
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s's log ends:\n%s", host, b)
			}
			os.RemoveAll(dir)
		})
		os.MkdirAll(dir+"/data", 0o755)
		exec.Command("chown", "-R", "mysql:mysql", dir).Run()
		nodes = append(nodes, &galeraNode{lab: lab, host: host, ip: ip, dir: dir})
		ips = append(ips, ip)
	}
	for _, g := range nodes {
		g.peers = "gcomm://" + strings.Join(ips, ",")
		t.Cleanup(g.kill)
	}
	out, err := exec.Command("mariadb-install-db", "--user=mysql", "--datadir="+nodes[0].dir+"/data", "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	nodes[0].start(t, true)
	waitFor(t, 60*time.Second, "the first Galera node", func() bool { return nodes[0].synced(1) })
	db, err := sql.Open("mysql", "root@unix("+nodes[0].dir+"/sock)/")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE USER 'mog'@'%'", "GRANT ALL ON *.* TO 'mog'@'%'", "CREATE DATABASE mogilefs"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	for i, g := range nodes[1:] {
		g.start(t, false)
		waitFor(t, 90*time.Second, g.host+" to join", func() bool { return g.synced(i + 2) })
	}
	return nodes
}

// galeraDSN lists the nodes for a tracker, first first.
func galeraDSN(nodes []*galeraNode, first int) string {
	var addrs []string
	for i := range nodes {
		addrs = append(addrs, nodes[(first+i)%len(nodes)].ip+":3306")
	}
	return "mysql:mog@tcp(" + strings.Join(addrs, ",") + ")/mogilefs?timeout=2s&readTimeout=5s&writeTimeout=5s"
}

// TestGaleraNodeLoss runs two trackers on a three-node MariaDB Galera
// cluster, each connected to a different node first, under steady
// uploads, reads and deletes through both; one node at a time is killed
// and restarted, then cut off the network and restored. No acknowledged
// upload is lost, no acknowledged delete comes back, the cluster serves
// again within seconds of each fault, and afterwards every file has its
// copies and the queues are empty.
func TestGaleraNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if os.Getenv("MOGILEFS_TEST_GALERA") == "0" {
		t.Skip("MOGILEFS_TEST_GALERA=0: the Galera fault test is left out")
	}
	if _, err := os.Stat(galeraProvider); err != nil {
		t.Skip("galera-4 is not installed (make test installs it)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd missing (make test installs mariadb-server)")
	}
	lab := newNetLab(t)
	nodes := startGalera(t, lab)

	c := clustertest.Start(t, clustertest.Options{DSN: galeraDSN(nodes, 0), Domain: "test"})
	st2, err := store.Open(context.Background(), store.Config{DSN: galeraDSN(nodes, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	_, addr2 := c.StartTracker(func(cfg *tracker.Config) { cfg.Store = st2 })
	cl, err := client.New([]string{c.TrackerAddr, addr2}, client.Options{DeadRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.WaitWritable(2)

	l := startLoad(t, cl, loadOptions{Workers: 3, Prefix: "g", Size: func(i int) int { return 1000 + i }, UploadTries: 3, ReadBack: true, ReadTries: 10})
	dels := startDeletes(t, cl)
	progress := func(what string) {
		t.Helper()
		before := l.uploaded.Load()
		start := time.Now()
		waitFor(t, 60*time.Second, what, func() bool { return l.uploaded.Load() > before+10 })
		t.Logf("%s: uploads going again after %v", what, time.Since(start).Round(100*time.Millisecond))
	}
	progress("uploads before any fault")
	for i, g := range nodes[:2] {
		g.kill()
		progress(fmt.Sprintf("uploads with %s killed", g.host))
		g.start(t, false)
		waitFor(t, 90*time.Second, g.host+" to rejoin", func() bool { return g.synced(3) })
		progress(fmt.Sprintf("uploads after %s rejoined", g.host))
		other := nodes[(i+1)%3]
		lab.link(other.host, false)
		progress(fmt.Sprintf("uploads with %s cut off", other.host))
		lab.link(other.host, true)
		waitFor(t, 90*time.Second, other.host+" back in the cluster", func() bool { return other.synced(3) })
	}
	acked := l.Stop()
	deleted := dels.stop()
	t.Logf("%d uploads acknowledged (%d operations failed during faults), %d deletes acknowledged", len(acked), l.failed.Load(), len(deleted))
	verifyAll(t, c, "test", acked)
	for _, k := range deleted {
		if _, err := c.Client.Tracker.FileInfo(context.Background(), "test", k); !core.Is(core.NotFound, err) {
			t.Errorf("deleted key %s: file_info = %v; want not found", k, err)
		}
	}
	if !waitUntil(120*time.Second, func() bool { return copiesOK(t, c, "test", acked, 2, nil) }) {
		short := 0
		for k := range acked {
			fi, err := c.Client.Tracker.FileInfo(context.Background(), "test", k)
			if err == nil && len(fi.Devids) != 2 {
				if short++; short <= 5 {
					t.Logf("%s: fid %d on %v", k, fi.FID, fi.Devids)
				}
			}
		}
		logQueues(t, c.Store)
		t.Fatalf("%d acknowledged files not at 2 copies after 120 s", short)
	}
	if !waitUntil(120*time.Second, func() bool {
		for _, q := range []store.Queue{store.ReplicateQueue, store.DeleteQueue} {
			if n, err := c.Store.QueueLength(context.Background(), q); err != nil || n != 0 {
				return false
			}
		}
		return true
	}) {
		logQueues(t, c.Store)
		t.Fatal("the replicate and delete queues did not drain in 120 s")
	}
}

// logQueues logs the rows left in the replicate and delete queues.
func logQueues(t *testing.T, st *store.Store) {
	for _, table := range []string{"file_to_replicate", "file_to_delete2"} {
		rows, err := st.DB().Query("SELECT fid, nexttry - UNIX_TIMESTAMP(), failcount FROM " + table + " LIMIT 10")
		if err != nil {
			t.Logf("%s: %v", table, err)
			continue
		}
		for rows.Next() {
			var fid, next, fails int64
			rows.Scan(&fid, &next, &fails)
			t.Logf("%s: fid %d due in %d s, %d failures", table, fid, next, fails)
		}
		rows.Close()
	}
}

// deletes uploads keys and deletes them, remembering the deletes that
// were acknowledged.
type deletes struct {
	mu   sync.Mutex
	keys []string
	halt atomic.Bool
	done chan struct{}
}

func startDeletes(t *testing.T, cl *client.Client) *deletes {
	d := &deletes{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for i := 0; !d.halt.Load(); i++ {
			k := fmt.Sprintf("del/%d", i)
			body := []byte(k)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := cl.Upload(ctx, "test", k, "two", bytes.NewReader(body), int64(len(body)), client.UploadOptions{})
			if err == nil {
				err = cl.Tracker.Delete(ctx, "test", k)
				if err == nil {
					d.mu.Lock()
					d.keys = append(d.keys, k)
					d.mu.Unlock()
				}
			}
			cancel()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return d
}

func (d *deletes) stop() []string {
	d.halt.Store(true)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys
}
