package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/conffile"
	"github.com/mogilefs-go/mogilefs-go/core/logging"
	"github.com/mogilefs-go/mogilefs-go/core/opsserver"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/tracker"
)

// DefaultDSN is the embedded database used when none is configured.
const DefaultDSN = "DBI:SQLite:dbname=/var/lib/mogilefs/mogilefs.db"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mogilefsd:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := pflag.NewFlagSet("mogilefsd", pflag.ContinueOnError)
	config := fs.StringP("config", "c", "/etc/mogilefs/mogilefsd.conf", "config file (key = value lines)")
	skip := fs.BoolP("skipconfig", "s", false, "do not read the config file")
	dsn := fs.String("dsn", DefaultDSN, "database: DBI:SQLite:dbname=PATH or DBI:mysql:DB:host=H;port=P")
	dbuser := fs.String("dbuser", "mogile", "database user (MySQL)")
	dbpass := fs.String("dbpass", "", "database password (MySQL)")
	listen := fs.StringSliceP("listen", "l", nil, "address to listen on, ip[:port] (repeatable; default 0.0.0.0)")
	confport := fs.IntP("confport", "p", 7001, "port for listen addresses given without one")
	fs.IntP("workers", "w", 20, "accepted for compatibility (queries run concurrently without a fixed pool)")
	mindev := fs.Int("default_mindevcount", tracker.DefaultMinDevCount, "mindevcount of implicit default classes")
	minfree := fs.Int64("min_free_space", tracker.DefaultMinFreeSpaceMB, "MB a device must keep free to get new files")
	nodeTimeout := fs.Float64("node_timeout", tracker.DefaultNodeTimeout.Seconds(), "seconds to wait for a storage node's answer")
	connTimeout := fs.Float64("conn_timeout", tracker.DefaultConnTimeout.Seconds(), "seconds to wait for a storage node connection")
	sidePort := fs.Int("mogstored_stream_port", tracker.DefaultSideChannelPort, "storage nodes' side-channel port")
	noSchema := fs.Bool("no_schema_check", false, "start even if the schema version is not 17")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	adminListen := fs.StringSlice("admin_listen", nil, "address(es) for administration, ip[:port]; when set, admin and ! commands are accepted only there")
	adminNets := fs.String("admin_networks", "", "only clients in these networks (comma-separated, e.g. 10.0.0.0/8,127.0.0.1) may send admin and ! commands; empty: everyone")
	fsync := fs.Bool("fsync", true, "SQLite: fsync each commit before answering; --fsync=false commits without (synchronous=NORMAL): a tracker crash loses nothing, a machine crash can lose the last seconds' changes. Refused with MySQL (set innodb_flush_log_at_trx_commit=2 on the server)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics at this address (e.g. 127.0.0.1:7003): /metrics, /debug/pprof/")
	maxConns := fs.Int("max_conns", 0, "most client connections held at once on each listener (0: what the file descriptor limit allows)")
	idleTimeout := fs.Duration("idle_timeout", tracker.DefaultIdleTimeout, "close a client connection that sends no request for this long")
	orphanEvery := fs.Duration("orphan_sweep_interval", 24*time.Hour, "list each device's files this often and remove those no database row refers to (0: never)")
	orphanAge := fs.Duration("orphan_min_age", 24*time.Hour, "the orphan sweep leaves files younger than this")
	delLag := fs.Duration("delete_lag", 3*time.Second, "removing deleted files' copies from the nodes waits up to this long for a burst of client requests to end, then catches up (0: never waits)")
	jobMaster := fs.Bool("job_master", true, "run the background jobs (replication, deletion, fsck, rebalance) on this tracker; --job_master=false leaves them to others")
	fs.Bool("daemonize", false, "accepted for compatibility; run under systemd instead")
	fs.String("pidfile", "", "write the process id to this file")
	fs.String("user", "", "accepted for compatibility")
	fs.Int("query_jobs", 20, "accepted for compatibility")
	replJobs := fs.Int("replicate_jobs", 0, "copies in flight at once (0: 8); changeable at run time with !want N replicate")
	delJobs := fs.Int("delete_jobs", 0, "deletions in flight at once (0: 4); !want N delete")
	fsckJobs := fs.Int("fsck_jobs", 0, "fsck checks in flight at once (0: 4); !want N fsck")
	reaperJobs := fs.Int("reaper_jobs", 1, "accepted for compatibility: must be 1 (the reaper is one task)")
	monitorJobs := fs.Int("monitor_jobs", 1, "accepted for compatibility: must be 1 (the monitor is one task)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	log := logging.New(os.Stderr, *logLevel)
	if !*skip {
		unknown, err := conffile.Load(fs, *config, fs.Changed("config"), map[string]string{
			"db_dsn": "dsn", "db_user": "dbuser", "db_pass": "dbpass", "conf_port": "confport",
			"listener_jobs": "query_jobs",
		})
		if err != nil {
			return err
		}
		for _, e := range unknown {
			log.Warn("mogilefsd: unknown config key ignored", "file", *config, "line", e.Line, "key", e.Key)
		}
		log = logging.New(os.Stderr, *logLevel)
	}
	if pf, _ := fs.GetString("pidfile"); pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
	}
	if *orphanEvery < 0 || *orphanAge <= 0 {
		return fmt.Errorf("--orphan_sweep_interval must be 0 (never) or more, --orphan_min_age more than 0")
	}
	if *orphanEvery == 0 {
		*orphanEvery = -1 // never
	}
	if *delLag < 0 {
		return fmt.Errorf("--delete_lag must be 0 (never wait) or more")
	}
	if *delLag == 0 {
		*delLag = -1 // never
	}
	if *reaperJobs != 1 || *monitorJobs != 1 {
		return fmt.Errorf("reaper_jobs and monitor_jobs must be 1: the reaper and the monitor are one task each in this tracker")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: *dsn, User: *dbuser, Pass: *dbpass, NoSchemaCheck: *noSchema, NoSync: !*fsync, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	switch args := fs.Args(); {
	case len(args) == 1 && args[0] == "widen-keys":
		// An explicit step: widen file.dkey and tempfile.dkey to take keys
		// of store.WideKeyBytes. Idempotent; the original tracker keeps
		// working on the widened tables. Running trackers pick the new
		// limit up when restarted.
		before, after, err := st.WidenKeys(ctx)
		if err != nil {
			return fmt.Errorf("widen-keys: %w", err)
		}
		if before == after {
			fmt.Printf("keys of up to %d bytes already; nothing to do\n", after)
		} else {
			fmt.Printf("keys of up to %d bytes now (were %d); restart the trackers to use them\n", after, before)
		}
		return nil
	case len(args) == 1 && args[0] == "setup-db":
		// An explicit, idempotent step: make a fresh schema-17 database, or
		// add the extension tables to an existing one, with a user that
		// may create tables. The trackers may then run with one that may
		// only SELECT, INSERT, UPDATE and DELETE.
		if err := st.Setup(ctx); err != nil {
			return fmt.Errorf("setup-db: %w", err)
		}
		fmt.Println("the database is set up (schema 17 and the extension tables)")
		return nil
	case len(args) > 0:
		return fmt.Errorf("unknown command %q (commands: setup-db, widen-keys)", strings.Join(args, " "))
	}

	admin, err := core.ParseNetworks(*adminNets)
	if err != nil {
		return fmt.Errorf("admin_networks: %w", err)
	}
	stop := make(chan struct{}, 1)
	srv, err := tracker.New(tracker.Config{
		Store:               st,
		DefaultMinDevCount:  *mindev,
		MinFreeSpaceMB:      *minfree,
		NodeTimeout:         time.Duration(*nodeTimeout * float64(time.Second)),
		ConnTimeout:         time.Duration(*connTimeout * float64(time.Second)),
		SideChannelPort:     *sidePort,
		NoJobs:              !*jobMaster,
		AdminNetworks:       admin,
		MaxConns:            *maxConns,
		ReplicateJobs:       *replJobs,
		DeleteJobs:          *delJobs,
		FsckJobs:            *fsckJobs,
		IdleTimeout:         *idleTimeout,
		OrphanSweepInterval: *orphanEvery,
		OrphanMinAge:        *orphanAge,
		DeleteLag:           *delLag,
		OnShutdown:          func() { stop <- struct{}{} },
		Logger:              log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	if *metrics != "" {
		ops, err := opsserver.Start(*metrics, srv.Registry())
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		defer ops.Close()
	}
	addrs := *listen
	if len(addrs) == 0 {
		addrs = []string{"0.0.0.0"}
	}
	errc := make(chan error, len(addrs)+len(*adminListen))
	for _, a := range *adminListen {
		for _, one := range strings.Split(a, ",") {
			one = strings.TrimSpace(one)
			if _, _, err := net.SplitHostPort(one); err != nil {
				one = net.JoinHostPort(one, strconv.Itoa(*confport))
			}
			ln, err := net.Listen("tcp", one)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", one, err)
			}
			log.Info("mogilefsd: listening for administration", "addr", ln.Addr().String())
			go func() { errc <- srv.ServeAdmin(ln) }()
		}
	}
	for _, a := range addrs {
		for _, one := range strings.Split(a, ",") {
			one = strings.TrimSpace(one)
			if _, _, err := net.SplitHostPort(one); err != nil {
				one = net.JoinHostPort(one, strconv.Itoa(*confport))
			}
			ln, err := net.Listen("tcp", one)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", one, err)
			}
			log.Info("mogilefsd: listening", "addr", ln.Addr().String(), "db", st.Kind())
			go func() { errc <- srv.Serve(ln) }()
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("mogilefsd: shutting down", "signal", s.String())
	case <-stop:
		log.Info("mogilefsd: shutting down on !shutdown")
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Close(sctx)
}
