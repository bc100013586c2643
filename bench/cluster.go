// Package bench measures the whole system against its physical limits:
// a real cluster of the built binaries on loopback, each figure next to
// a baseline measured in the same run (local disk, a bare sendfile HTTP
// server, a FUSE file system that does nothing), medians of several runs.
package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// cluster is a running set of daemons.
type cluster struct {
	bin, dir string
	tracker  string
	procs    []*exec.Cmd
	client   *client.Client
	nodes    []string // storage node HTTP addresses
}

func freePort(ip string) (int, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) start(name string, args ...string) error {
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_PPROF") != "" {
		// Profiling a run: each daemon serves /debug/pprof/ on a port of its own.
		port, err := freePort("127.0.0.1")
		if err != nil {
			return err
		}
		args = append(args, fmt.Sprintf("--metrics=127.0.0.1:%d", port))
		fmt.Fprintf(os.Stderr, "%s #%d: pprof at http://127.0.0.1:%d/debug/pprof/\n", name, len(c.procs)+1, port)
	}
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// startCluster runs a tracker on dsn (SQLite when "") and two storage
// nodes on 127.0.0.1 and 127.0.0.2, registers them and a domain "bench"
// with classes one (1 copy) and two (2 copies).
// extra is given to every daemon (e.g. --fsync=false).
func startCluster(bin, dir, dsn string, jobs bool, extra ...string) (*cluster, error) {
	c := &cluster{bin: bin, dir: dir}
	side, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		root := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		os.MkdirAll(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755)
		port, err := freePort(ip)
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("%s:%d", ip, port)
		c.nodes = append(c.nodes, addr)
		if err := c.start("mogstored", append([]string{"--skipconfig", "--docroot=" + root, "--httplisten=" + addr, fmt.Sprintf("--mgmtlisten=%s:%d", ip, side), "--log-level=warn"}, extra...)...); err != nil {
			return nil, err
		}
	}
	if dsn == "" {
		dsn = "DBI:SQLite:dbname=" + filepath.Join(dir, "mogilefs.db")
	}
	tport, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	c.tracker = fmt.Sprintf("127.0.0.1:%d", tport)
	if err := c.start("mogilefsd", append([]string{"--skipconfig", "--dsn=" + dsn, "--listen=" + c.tracker, "--mogstored_stream_port=" + strconv.Itoa(side),
		"--min_free_space=1", "--log-level=warn", "--job_master=" + strconv.FormatBool(jobs)}, extra...)...); err != nil {
		return nil, err
	}
	c.client, err = client.New([]string{c.tracker}, client.Options{MaxIdle: 64})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.client.Tracker.Do(ctx, "noop", nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("tracker did not start; see %s", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must := func(cmd string, a protocol.Args) error {
		_, err := c.client.Tracker.Do(ctx, cmd, a)
		if client.IsCode(err, "host_exists") || client.IsCode(err, "existing_devid") || client.IsCode(err, "domain_exists") || client.IsCode(err, "class_exists") {
			return nil
		}
		return err
	}
	for i, addr := range c.nodes {
		ip, port, _ := strings.Cut(addr, ":")
		name := fmt.Sprintf("node%d", i+1)
		if err := must("create_host", protocol.Args{"host": name, "ip": ip, "port": port, "status": "alive"}); err != nil {
			return nil, err
		}
		if err := must("create_device", protocol.Args{"hostname": name, "devid": strconv.Itoa(i + 1)}); err != nil {
			return nil, err
		}
	}
	for _, step := range []protocol.Args{{"domain": "bench"}} {
		if err := must("create_domain", step); err != nil {
			return nil, err
		}
	}
	for cls, n := range map[string]string{"one": "1", "two": "2"} {
		if err := must("create_class", protocol.Args{"domain": "bench", "class": cls, "mindevcount": n}); err != nil {
			return nil, err
		}
	}
	// Wait until both devices take files.
	for time.Now().Before(deadline.Add(20 * time.Second)) {
		r, err := c.client.Tracker.Do(ctx, "get_devices", nil)
		if err == nil {
			w := 0
			for _, d := range client.Records(r, "devices", "dev") {
				if d["observed_state"] == "writeable" {
					w++
				}
			}
			if w == 2 {
				return c, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("devices never became writeable; see %s", dir)
}

// stopTracker stops the tracker process (the last started mogilefsd).
func (c *cluster) stopProc(name string) {
	for _, p := range c.procs {
		if filepath.Base(p.Path) == name && p.ProcessState == nil {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
	}
}

func (c *cluster) stop() {
	if c.client != nil {
		c.client.Close()
	}
	for _, p := range c.procs {
		if p.ProcessState == nil {
			p.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
			}
		}
	}
}

// pid returns the process id of the last daemon started as name, 0 when
// there is none.
func (c *cluster) pid(name string) int {
	for i := len(c.procs) - 1; i >= 0; i-- {
		if p := c.procs[i]; filepath.Base(p.Path) == name && p.Process != nil {
			return p.Process.Pid
		}
	}
	return 0
}
