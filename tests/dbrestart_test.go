package tests

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
)

// privateMariaDB runs a MariaDB server of the test's own (own data
// directory and port), so that it can be stopped and restarted without
// touching any other test.
type privateMariaDB struct {
	t       *testing.T
	dir     string
	bind    string // address it listens on
	port    int
	cmd     *exec.Cmd
	stopped chan struct{}
}

func startPrivateMariaDB(t *testing.T) *privateMariaDB {
	t.Helper()
	return startPrivateMariaDBOn(t, "127.0.0.1")
}

// startPrivateMariaDBOn is startPrivateMariaDB listening on bind.
func startPrivateMariaDBOn(t *testing.T, bind string) *privateMariaDB {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a private MariaDB as the mysql user")
	}
	for _, b := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s missing (make test installs mariadb-server)", b)
		}
	}
	dir, err := os.MkdirTemp("/var/tmp", "mogtest-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exec.Command("chown", "mysql:mysql", dir).Run()
	out, err := exec.Command("mariadb-install-db", "--user=mysql", "--datadir="+dir+"/data", "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := &privateMariaDB{t: t, dir: dir, bind: bind, port: port}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *privateMariaDB) start() {
	m.t.Helper()
	m.cmd = exec.Command("mariadbd", "--no-defaults", "--user=mysql", "--datadir="+m.dir+"/data",
		"--socket="+m.dir+"/sock", "--pid-file="+m.dir+"/pid", "--bind-address="+m.bind,
		fmt.Sprintf("--port=%d", m.port), "--skip-grant-tables", "--innodb-buffer-pool-size=64M", "--skip-log-bin")
	logf, _ := os.Create(filepath.Join(m.dir, "log"))
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.stopped = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.stopped) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		db, err := sql.Open("mysql", m.serverDSN())
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(m.dir, "log"))
	m.t.Fatalf("private MariaDB did not start:\n%s", b)
}

// crash kills the server without a clean shutdown.
func (m *privateMariaDB) crash() {
	m.cmd.Process.Kill()
	<-m.stopped
}

func (m *privateMariaDB) stop() {
	if m.cmd != nil && m.cmd.ProcessState == nil {
		m.cmd.Process.Kill()
		<-m.stopped
	}
}

// createDatabase makes the database mogilefs on the server and returns
// its DSN for the store.
func (m *privateMariaDB) createDatabase() string {
	m.t.Helper()
	db, err := sql.Open("mysql", m.serverDSN())
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE mogilefs"); err != nil {
		m.t.Fatal(err)
	}
	return "mysql:" + m.serverDSN() + "mogilefs"
}

func (m *privateMariaDB) serverDSN() string {
	return fmt.Sprintf("root@tcp(%s:%d)/", m.bind, m.port)
}

// TestMariaDBRestartUnderLoad crashes and restarts the database while
// clients keep uploading and reading: the tracker reconnects and carries
// on, and every upload that was acknowledged is intact at the end.
func TestMariaDBRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	m := startPrivateMariaDB(t)
	mogDSN := m.createDatabase()
	c := clustertest.Start(t, clustertest.Options{DSN: mogDSN, Domain: "test"})

	l := startLoad(t, c.Client, loadOptions{Workers: 4, Prefix: "load", Size: func(i int) int { return 2000 + i }})
	time.Sleep(1500 * time.Millisecond)
	before := l.uploaded.Load()
	m.crash()
	time.Sleep(2 * time.Second)
	m.start()
	waitFor(t, 60*time.Second, "uploads to succeed again after the restart", func() bool { return l.uploaded.Load() > before+20 })
	acked := l.Stop()
	t.Logf("%d uploads acknowledged, %d refused while the database was down", l.uploaded.Load(), l.failed.Load())
	if before == 0 {
		t.Fatal("no upload succeeded before the crash")
	}
	// Acknowledged uploads are all there, intact, and get replicated.
	verifyAll(t, c, "test", acked)
	waitFor(t, 60*time.Second, "every acknowledged file at 2 copies", func() bool { return copiesOK(t, c, "test", acked, 2, nil) })
}
