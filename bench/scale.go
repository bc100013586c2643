package bench

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// The scale group (--only=scale, with --scale-files=N) fills a fresh
// cluster's database (SQLite, 1,000,000 files by default; or, with
// --scale-store=mysql, a scratch database on MOGILEFS_TEST_MYSQL_DSN's
// server, 10,000,000 by default) with N files straight through SQL (rows
// as the tracker writes them, two copies each, keys under one prefix),
// and measures the tracker at 10,000 files and again at N: get_paths and
// file_info latency (p50, p99, one client), 4 KiB uploads per second (8
// clients), list_keys paging through the prefix, and the tracker's
// resident memory. The figures at N are also given as a ratio to those
// at 10 k: cost is flat when they stay near 1. At N it also lists a
// 100,000-entry directory through a mount, times fsck's metadata pass,
// and requeues a dead device.

// scaleFidBase keeps the filled fids apart from those the tracker hands
// out to uploads meanwhile.
const scaleFidBase = 1_000_000_000

// scaleFigures runs the scale group.
func scaleFigures(cfg Config, res Results, say func(string, ...any)) error {
	n := cfg.ScaleFiles
	const small = 10_000
	dir := filepath.Join(cfg.Dir, "scale")
	os.RemoveAll(dir)
	dsn := "DBI:SQLite:dbname=" + filepath.Join(dir, "mogilefs.db")
	switch cfg.ScaleStore {
	case "", "sqlite":
		if n <= 0 {
			n = 1_000_000
		}
	case "mysql":
		if cfg.MySQL == "" {
			return fmt.Errorf("--scale-store=mysql needs MOGILEFS_TEST_MYSQL_DSN (a server DSN, no database)")
		}
		if n <= 0 {
			n = 10_000_000
		}
		d, drop, err := mysqlDatabase(cfg.MySQL)
		if err != nil {
			return err
		}
		defer drop()
		dsn = d
	default:
		return fmt.Errorf("--scale-store=%q: want sqlite or mysql", cfg.ScaleStore)
	}
	c, err := startCluster(cfg.Bin, dir, dsn, true)
	if err != nil {
		return err
	}
	defer c.stop()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: dsn})
	if err != nil {
		return err
	}
	defer st.Close()
	db := st.DB()
	var dmid, classid int
	if err := db.QueryRow(`SELECT dmid FROM domain WHERE namespace = 'bench'`).Scan(&dmid); err != nil {
		return err
	}
	if err := db.QueryRow(`SELECT classid FROM class WHERE dmid = ? AND classname = 'two'`, dmid).Scan(&classid); err != nil {
		return err
	}
	filled := 0
	fill := func(to int) error {
		start, from := time.Now(), filled
		for filled < to {
			end := min(filled+20_000, to)
			if err := fillBatch(ctx, db, dmid, classid, filled, end, scaleFidBase, scaleKey); err != nil {
				return err
			}
			filled = end
		}
		say("scale: %d files in the database (%.0f files/s)", filled, float64(to-from)/time.Since(start).Seconds())
		return nil
	}
	t, err := client.NewTracker([]string{c.tracker}, client.Options{MaxIdle: 16})
	if err != nil {
		return err
	}
	defer t.Close()
	measure := func(at int, suffix string) error {
		time.Sleep(2 * time.Second) // the tracker's caches and the page cache settle
		for _, q := range []struct{ name, cmd string }{{"get_paths", "get_paths"}, {"file_info", "file_info"}} {
			p50, p99, err := latencies(2000, func() error {
				args := protocol.Args{"domain": "bench", "key": scaleKey(rand.IntN(at)), "noverify": "1"}
				_, err := t.Do(ctx, q.cmd, args)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			res["scale_"+q.name+"_p50_ms_"+suffix] = p50
			res["scale_"+q.name+"_p99_ms_"+suffix] = p99
		}
		data := make([]byte, 4096)
		crand.Read(data)
		var seq atomic.Int64
		v, err := opsPerSec(8, 3*time.Second, func() error {
			k := "scaleput/" + suffix + "/" + strconv.FormatInt(seq.Add(1), 10)
			_, err := c.client.Upload(ctx, "bench", k, "one", bytes.NewReader(data), int64(len(data)), client.UploadOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("uploads: %w", err)
		}
		res["scale_put_4k_files_per_s_"+suffix] = v
		start, keys, after := time.Now(), 0, ""
		for keys < min(at, 1_000_000) {
			page, next, err := t.ListKeys(ctx, "bench", "s/", after, 1000)
			if err != nil {
				return fmt.Errorf("list_keys: %w", err)
			}
			if len(page) == 0 {
				break
			}
			keys += len(page)
			after = next
		}
		res["scale_list_keys_per_s_"+suffix] = float64(keys) / time.Since(start).Seconds()
		if rss, err := rssMiB(c.pid("mogilefsd")); err == nil {
			res["scale_tracker_rss_mib_"+suffix] = rss
		}
		say("scale: measured at %d files", at)
		return nil
	}
	if err := fill(small); err != nil {
		return err
	}
	if err := measure(small, "10k"); err != nil {
		return err
	}
	if err := fill(n); err != nil {
		return err
	}
	if err := measure(n, "n"); err != nil {
		return err
	}
	if err := bigDirListing(ctx, cfg, c, db, dmid, classid, res, say); err != nil {
		return fmt.Errorf("100 k-entry directory: %w", err)
	}
	if err := fsckRate(ctx, c, t, res); err != nil {
		return fmt.Errorf("fsck: %w", err)
	}
	if err := deadDeviceRate(ctx, c, db, t, n+bigDir, res, say); err != nil {
		return fmt.Errorf("dead device: %w", err)
	}
	res["scale_files"] = float64(n)
	for _, f := range []string{"get_paths_p99_ms", "file_info_p99_ms", "put_4k_files_per_s", "list_keys_per_s", "tracker_rss_mib"} {
		if a, b := res["scale_"+f+"_10k"], res["scale_"+f+"_n"]; a > 0 {
			res["scale_"+f+"_ratio"] = b / a
		}
	}
	return nil
}

// scaleKey is the key of the i-th filled file.
func scaleKey(i int) string { return fmt.Sprintf("s/%09d", i) }

// fillBatch inserts files [from, to) (fid fidBase+i, key key(i)) with two
// copies each, on devices 1 and 2, in one transaction, a few hundred rows
// per statement (a round trip per row would take hours at 10 M files over
// MySQL's protocol).
func fillBatch(ctx context.Context, db *sql.DB, dmid, classid, from, to int, fidBase int64, key func(int) string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const rows = 500
	var file, on strings.Builder
	var fileArgs, onArgs []any
	for at := from; at < to; at += rows {
		file.Reset()
		on.Reset()
		fileArgs, onArgs = fileArgs[:0], onArgs[:0]
		file.WriteString(`INSERT INTO file (fid, dmid, dkey, length, classid, devcount) VALUES `)
		on.WriteString(`INSERT INTO file_on (fid, devid) VALUES `)
		for i := at; i < min(at+rows, to); i++ {
			if i > at {
				file.WriteString(", ")
				on.WriteString(", ")
			}
			fid := fidBase + int64(i)
			file.WriteString("(?, ?, ?, 4096, ?, 2)")
			fileArgs = append(fileArgs, fid, dmid, key(i), classid)
			on.WriteString("(?, 1), (?, 2)")
			onArgs = append(onArgs, fid, fid)
		}
		if _, err := tx.ExecContext(ctx, file.String(), fileArgs...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, on.String(), onArgs...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// bigDir is the size of the directory listed through the mount at N.
const bigDir = 100_000

// bigDirListing adds a directory of bigDir keys (fids past the filled
// ones) and times `ls -l` of it through a fresh mount (cold) and again
// (warm).
func bigDirListing(ctx context.Context, cfg Config, c *cluster, db *sql.DB, dmid, classid int, res Results, say func(string, ...any)) error {
	key := func(i int) string { return fmt.Sprintf("dir100k/k%06d", i) }
	for from := 0; from < bigDir; from += 20_000 {
		if err := fillBatch(ctx, db, dmid, classid, from, from+20_000, 2*scaleFidBase, key); err != nil {
			return err
		}
	}
	mnt := filepath.Join(cfg.Dir, "scalemnt")
	m, err := startMogmount(c, mnt, "one")
	if err != nil {
		return err
	}
	defer stopMogmount(m)
	for _, name := range []string{"cold", "warm"} {
		start := time.Now()
		out, err := exec.CommandContext(ctx, "bash", "-c", "ls -l "+filepath.Join(mnt, "bench", "dir100k")+" | wc -l").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(bigDir+1) {
			return fmt.Errorf("ls -l (%s): %v %q", name, err, out)
		}
		res["scale_ls_100k_"+name+"_ms_n"] = float64(time.Since(start).Milliseconds())
	}
	say("scale: a %d-entry directory listed through the mount", bigDir)
	return nil
}

// latencies runs op n times in a row and returns its p50 and p99 in ms.
func latencies(n int, op func() error) (p50, p99 float64, err error) {
	ds := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := op(); err != nil {
			return 0, 0, err
		}
		ds = append(ds, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(ds)
	return ds[n/2], ds[n*99/100], nil
}

// rssMiB reads a process's resident memory.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// fsckRate runs a policy-only fsck (metadata only: each file's copies
// against its class) for 10 s and returns the fids checked per second.
func fsckRate(ctx context.Context, c *cluster, t *client.Tracker, res Results) error {
	if _, err := t.Do(ctx, "fsck_reset", protocol.Args{"policy_only": "1"}); err != nil {
		return err
	}
	if _, err := t.Do(ctx, "fsck_start", nil); err != nil {
		return err
	}
	// The uploads' fids come first; the filled ones, dense from
	// scaleFidBase, are what is timed.
	var st0 client.FsckStatus
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if st0, err = t.FsckStatus(ctx); err != nil {
			return err
		}
		if st0.MaxChecked >= scaleFidBase {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fsck did not reach the filled fids in a minute (at %d)", st0.MaxChecked)
		}
	}
	start := time.Now()
	time.Sleep(10 * time.Second)
	st1, err := t.FsckStatus(ctx)
	if err != nil {
		return err
	}
	t.Do(ctx, "fsck_stop", nil)
	res["scale_fsck_policy_fids_per_s_n"] = float64(st1.MaxChecked-st0.MaxChecked) / time.Since(start).Seconds()
	return nil
}

// deadDeviceRate marks device 2 dead and times how fast its n copies
// are queued for re-replication (the metadata side: the copies are
// forgotten and the files queued).
func deadDeviceRate(ctx context.Context, c *cluster, db *sql.DB, t *client.Tracker, n int, res Results, say func(string, ...any)) error {
	// The simulated files have no bytes: replication would fail on each
	// and compete for the database. Only the requeue is timed.
	if err := bang(c.tracker, "!want 0 replicate"); err != nil {
		return err
	}
	if _, err := t.Do(ctx, "set_state", protocol.Args{"host": "node2", "device": "2", "state": "dead"}); err != nil {
		return err
	}
	start := time.Now()
	for {
		var one int
		err := db.QueryRowContext(ctx, `SELECT 1 FROM file_on WHERE devid = 2 LIMIT 1`).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return err
		}
		if time.Since(start) > 5*time.Minute {
			var left int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM file_on WHERE devid = 2`).Scan(&left); err != nil {
				return err
			}
			res["scale_dead_device_queued_per_s_n"] = float64(n-left) / time.Since(start).Seconds()
			say("scale: %d copies on the dead device still not queued after 5 minutes", left)
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	res["scale_dead_device_queued_per_s_n"] = float64(n) / time.Since(start).Seconds()
	return nil
}

// bang sends one ! command on a connection of its own and reads its
// answer.
func bang(addr, cmd string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(readUntilDot{conn}, 1<<16))
	if err != nil {
		return err
	}
	if strings.Contains(string(b), "ERROR") {
		return fmt.Errorf("%s: %s", cmd, b)
	}
	return nil
}
