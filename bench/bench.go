package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Config says where the binaries are and what to measure.
type Config struct {
	Bin     string // directory with mogilefsd, mogstored, mogmount
	Dir     string // scratch directory (large files go here)
	MySQL   string // optional MySQL server DSN (go-sql-driver form, no database) for the MySQL figures
	Runs    int    // runs per figure (median); default 3
	BigSize int64  // size of the large-file figures; default 1 GiB
	// Only, when not empty, names the Groups to measure; the rest are
	// skipped.
	Only []string
	// ScaleFiles is how many files the scale group fills the database
	// with (default 1,000,000 on SQLite, 10,000,000 on MySQL).
	ScaleFiles int
	// ScaleStore is the database the scale group fills: "sqlite" (the
	// default) or "mysql" (a scratch database on the server of MySQL).
	ScaleStore string
	// PeersDisk is where the peers group keeps every side's data: "dir"
	// (the default), the scratch directory's file system; "image", a
	// fresh ext4 of its own (with a journal) on a loop device.
	PeersDisk string
	Log       io.Writer
}

// Groups are the groups of figures, in the order they are measured.
var Groups = []string{"tracker", "put", "replication", "http", "fuse", "mysql", "peers", "scale"}

// optIn are the groups measured only when named: peers installs MooseFS
// and needs root; scale fills a database with a million files.
var optIn = []string{"peers", "scale"}

// wants reports whether the group of figures is to be measured.
func (cfg Config) wants(group string) bool {
	if len(cfg.Only) == 0 {
		return !slices.Contains(optIn, group)
	}
	return slices.Contains(cfg.Only, group)
}

// Results maps figure names to values.
type Results map[string]float64

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// repeat runs f cfg.Runs times and returns the median.
func (cfg Config) repeat(f func() (float64, error)) (float64, error) {
	var xs []float64
	for i := 0; i < cfg.Runs; i++ {
		x, err := f()
		if err != nil {
			return 0, err
		}
		xs = append(xs, x)
	}
	return median(xs), nil
}

// opsPerSec runs op from conc goroutines for d and returns ops/s.
func opsPerSec(conc int, d time.Duration, op func() error) (float64, error) {
	rate, _, err := opsStats(conc, d, op)
	return rate, err
}

// opsStats runs op from conc goroutines for d and returns ops/s and the
// p99 of one op's time under that load, in ms.
func opsStats(conc int, d time.Duration, op func() error) (rate, p99 float64, err error) {
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	times := make([][]float64, conc) // ms, each goroutine's own
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t0 := time.Now(); t0.Before(stop); t0 = time.Now() {
				if err := op(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				times[i] = append(times[i], float64(time.Since(t0).Microseconds())/1000)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, 0, e.(error)
	}
	var all []float64
	for _, ts := range times {
		all = append(all, ts...)
	}
	if len(all) == 0 {
		return 0, 0, nil
	}
	sort.Float64s(all)
	return float64(len(all)) / time.Since(start).Seconds(), all[len(all)*99/100], nil
}

// Run measures every figure.
func Run(cfg Config) (Results, error) {
	if cfg.Runs <= 0 {
		cfg.Runs = 3
	}
	if cfg.BigSize <= 0 {
		cfg.BigSize = 1 << 30
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	for _, g := range cfg.Only {
		if !slices.Contains(Groups, g) {
			return nil, fmt.Errorf("unknown group of figures %q (known: %s)", g, strings.Join(Groups, ", "))
		}
	}
	res := Results{}
	say := func(f string, a ...any) { fmt.Fprintf(cfg.Log, f+"\n", a...) }
	c, err := startCluster(cfg.Bin, filepath.Join(cfg.Dir, "sqlite"), "", true)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	say("cluster up: tracker %s, nodes %v", c.tracker, c.nodes)
	groups := []struct {
		name string
		run  func() error
	}{
		{"tracker", func() error { return trackerFigures(cfg, c, res, "") }},
		{"put", func() error { return putFigures(cfg, c, res, "") }},
		{"replication", func() error { return replicationFigure(cfg, res) }},
		{"http", func() error { return bulkFigures(cfg, c, res) }},
		{"fuse", func() error { return fuseFigures(cfg, c, res, say) }},
		{"peers", func() error { return peersFigures(cfg, res, say) }},
		{"scale", func() error { return scaleFigures(cfg, res, say) }},
	}
	for _, g := range groups {
		if !cfg.wants(g.name) {
			continue
		}
		if err := g.run(); err != nil {
			return res, fmt.Errorf("%s figures: %w", g.name, err)
		}
		say("%s figures done", g.name)
	}
	if cfg.MySQL != "" && cfg.wants("mysql") {
		dsn, drop, err := mysqlDatabase(cfg.MySQL)
		if err != nil {
			return res, err
		}
		defer drop()
		m, err := startCluster(cfg.Bin, filepath.Join(cfg.Dir, "mysql"), dsn, true)
		if err != nil {
			return res, err
		}
		defer m.stop()
		if err := trackerFigures(cfg, m, res, "_mysql"); err != nil {
			return res, err
		}
		if err := putFigures(cfg, m, res, "_mysql"); err != nil {
			return res, err
		}
	}
	return res, nil
}

// trackerFigures measures query rates.
func trackerFigures(cfg Config, c *cluster, res Results, suffix string) error {
	ctx := context.Background()
	if _, err := c.client.Upload(ctx, "bench", "probe", "one", bytes.NewReader([]byte("x")), 1, client.UploadOptions{}); err != nil {
		return err
	}
	t, err := client.NewTracker([]string{c.tracker}, client.Options{MaxIdle: 64})
	if err != nil {
		return err
	}
	defer t.Close()
	figs := []struct {
		name string
		conc int
		cmd  string
		args protocol.Args
	}{
		{"tracker_noop_ops_c16", 16, "noop", nil},
		{"tracker_get_paths_ops_c1", 1, "get_paths", protocol.Args{"domain": "bench", "key": "probe", "noverify": "1"}},
		{"tracker_get_paths_ops_c16", 16, "get_paths", protocol.Args{"domain": "bench", "key": "probe", "noverify": "1"}},
		{"tracker_file_info_ops_c16", 16, "file_info", protocol.Args{"domain": "bench", "key": "probe"}},
	}
	// A second of unmeasured load first: the cluster has just started
	// (and the machine has just built it).
	if _, err := opsPerSec(16, time.Second, func() error { _, err := t.Do(ctx, "get_paths", figs[1].args); return err }); err != nil {
		return err
	}
	for _, f := range figs {
		var p99s []float64
		v, err := cfg.repeat(func() (float64, error) {
			rate, p99, err := opsStats(f.conc, 2*time.Second, func() error { _, err := t.Do(ctx, f.cmd, f.args); return err })
			p99s = append(p99s, p99)
			return rate, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		res[f.name+suffix] = v
		if f.cmd == "file_info" {
			res["tracker_file_info_p99_ms_c16"+suffix] = median(p99s)
		}
	}
	return nil
}

// putFigures measures 4 KiB uploads through the client library, and the
// p99 of one upload's time.
func putFigures(cfg Config, c *cluster, res Results, suffix string) error {
	ctx := context.Background()
	data := make([]byte, 4096)
	rand.Read(data)
	var seq atomic.Int64
	for _, conc := range []int{1, 8} {
		var p99s []float64
		v, err := cfg.repeat(func() (float64, error) {
			rate, p99, err := opsStats(conc, 2*time.Second, func() error {
				k := "put/" + strconv.FormatInt(seq.Add(1), 10)
				_, err := c.client.Upload(ctx, "bench", k, "one", bytes.NewReader(data), int64(len(data)), client.UploadOptions{})
				return err
			})
			p99s = append(p99s, p99)
			return rate, err
		})
		if err != nil {
			return err
		}
		res[fmt.Sprintf("put_4k_files_per_s_c%d%s", conc, suffix)] = v
		res[fmt.Sprintf("put_4k_p99_ms_c%d%s", conc, suffix)] = median(p99s)
	}
	return nil
}

// replicationFigure builds a backlog of small files with a tracker whose
// jobs are off, then times a tracker with jobs bringing them to 2 copies.
func replicationFigure(cfg Config, res Results) error {
	const n = 2000
	dir := filepath.Join(cfg.Dir, "repl")
	c, err := startCluster(cfg.Bin, dir, "", false)
	if err != nil {
		return err
	}
	defer c.stop()
	ctx := context.Background()
	data := make([]byte, 4096)
	var wg sync.WaitGroup
	var upErr atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := c.client.Upload(ctx, "bench", "r/"+strconv.Itoa(i), "two", bytes.NewReader(data), 4096, client.UploadOptions{}); err != nil {
					upErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := upErr.Load(); e != nil {
		return e.(error)
	}
	c.stopProc("mogilefsd")
	c.client.Close()
	// The same database, now with jobs.
	port, _ := freePort("127.0.0.1")
	c.tracker = fmt.Sprintf("127.0.0.1:%d", port)
	side := ""
	for _, p := range c.procs {
		for _, a := range p.Args {
			if strings.HasPrefix(a, "--mogstored_stream_port=") {
				side = a
			}
		}
	}
	start := time.Now()
	if err := c.start("mogilefsd", "--skipconfig", "--dsn=DBI:SQLite:dbname="+filepath.Join(dir, "mogilefs.db"), "--listen="+c.tracker, side, "--min_free_space=1", "--log-level=warn"); err != nil {
		return err
	}
	for {
		time.Sleep(50 * time.Millisecond)
		// !stats is a bang command: read "replicated" through a raw conn.
		done, err := replicatedCount(c.tracker)
		if err == nil && done >= n {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("replication backlog not done after 5 minutes (%d of %d)", done, n)
		}
	}
	res["replicate_4k_files_per_s"] = n / time.Since(start).Seconds()
	return nil
}

// replicatedCount reads the "replicated" counter from !stats.
func replicatedCount(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "!stats\r\n")
	b, err := io.ReadAll(io.LimitReader(readUntilDot{conn}, 1<<16))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\r\n") {
		if v, ok := strings.CutPrefix(l, "replicated "); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no replicated counter")
}

type readUntilDot struct{ c net.Conn }

func (r readUntilDot) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	if bytes.Contains(p[:n], []byte("\r\n.\r\n")) {
		return n, io.EOF
	}
	return n, err
}

// writeFileSync writes size random-ish bytes to path with fsync and
// returns MiB/s.
func writeFileSync(path string, size int64) (float64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	start := time.Now()
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(size) / (1 << 20) / time.Since(start).Seconds(), nil
}

func readFile(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	n, err := io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
	if err != nil {
		return 0, err
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}

// bulkFigures: local disk, mogstored PUT/GET, and a bare sendfile server.
func bulkFigures(cfg Config, c *cluster, res Results) error {
	local := filepath.Join(cfg.Dir, "local.bin")
	defer os.Remove(local)
	var err error
	if res["disk_write_mib_s"], err = cfg.repeat(func() (float64, error) { return writeFileSync(local, cfg.BigSize) }); err != nil {
		return err
	}
	if res["disk_read_mib_s"], err = cfg.repeat(func() (float64, error) { return readFile(local) }); err != nil {
		return err
	}
	nodes := client.NewNodeClient()
	url := "http://" + c.nodes[0] + "/dev1/0/000/999/0000999999.fid"
	put := func() (float64, error) {
		f, err := os.Open(local)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		start := time.Now()
		if err := nodes.Put(context.Background(), url, f, cfg.BigSize, nil); err != nil {
			return 0, err
		}
		return float64(cfg.BigSize) / (1 << 20) / time.Since(start).Seconds(), nil
	}
	get := func(u string) (float64, error) {
		start := time.Now()
		body, err := nodes.Get(context.Background(), u, 0, -1)
		if err != nil {
			return 0, err
		}
		defer body.Close()
		// A plain loop with a large buffer: io.Copy to io.Discard would
		// read 8 KiB at a time and measure the client, not the server.
		buf := make([]byte, 1<<20)
		var n int64
		for {
			k, err := body.Read(buf)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("GET %s: %w", u, err)
			}
		}
		if n != cfg.BigSize {
			return 0, fmt.Errorf("GET %s: %d bytes, want %d", u, n, cfg.BigSize)
		}
		return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
	}
	if res["http_put_mib_s"], err = cfg.repeat(put); err != nil {
		return err
	}
	// The baseline: net/http's FileServer over the same file, in a process
	// of its own as mogstored is. The two GETs take turns, so that both
	// see the same machine.
	bareAddr, stopBare, err := startFileServer(filepath.Join(cfg.Dir, "sqlite", "node1"))
	if err != nil {
		return err
	}
	defer stopBare()
	bare := "http://" + bareAddr + "/dev1/0/000/999/0000999999.fid"
	var ours, theirs []float64
	for i := 0; i < max(cfg.Runs, 7); i++ {
		a, err := get(url)
		if err != nil {
			return err
		}
		b, err := get(bare)
		if err != nil {
			return err
		}
		ours, theirs = append(ours, a), append(theirs, b)
	}
	res["http_get_mib_s"], res["sendfile_get_mib_s"] = median(ours), median(theirs)
	res["mogstored_get_ratio"] = res["http_get_mib_s"] / res["sendfile_get_mib_s"]
	return nil
}

// fileServerEnv, set to a directory, makes ServeFilesIfAsked serve it.
const fileServerEnv = "MOGBENCH_FILE_SERVER_DIR"

// ServeFilesIfAsked serves the directory named by MOGBENCH_FILE_SERVER_DIR
// with net/http's FileServer on a loopback port, prints the address and
// never returns; without the variable it returns at once. mogbench calls
// it first: the bench runs its sendfile baseline as a child process.
func ServeFilesIfAsked() {
	dir := os.Getenv(fileServerEnv)
	if dir == "" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mogbench file server:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	http.Serve(ln, http.FileServer(http.Dir(dir)))
	os.Exit(1)
}

// startFileServer runs this program as a bare file server over dir.
func startFileServer(dir string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fileServerEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("bare file server did not start (run it from mogbench): %w", err)
	}
	return strings.TrimSpace(addr), stop, nil
}

// dd runs dd and returns MiB/s from the bytes and wall time.
func dd(args ...string) (float64, error) {
	start := time.Now()
	out, err := exec.Command("dd", append(args, "bs=1M", "status=none")...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dd %v: %v: %s", args, err, out)
	}
	return time.Since(start).Seconds(), nil
}

// mysqlDatabase creates a scratch database on the server of dsn and
// returns a store DSN for it and a function that drops it.
func mysqlDatabase(dsn string) (string, func(), error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("mogbench_%d", os.Getpid())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		return "", nil, err
	}
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN(), func() { db.Exec("DROP DATABASE " + name); db.Close() }, nil
}
