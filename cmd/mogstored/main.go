package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/conffile"
	"github.com/mogilefs-go/mogilefs-go/core/listener"
	"github.com/mogilefs-go/mogilefs-go/core/logging"
	"github.com/mogilefs-go/mogilefs-go/core/opsserver"
	"github.com/mogilefs-go/mogilefs-go/core/storage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mogstored:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := pflag.NewFlagSet("mogstored", pflag.ContinueOnError)
	config := fs.String("config", "/etc/mogilefs/mogstored.conf", "config file (key = value lines)")
	skip := fs.BoolP("skipconfig", "s", false, "do not read the config file")
	httpListen := fs.String("httplisten", "0.0.0.0:7500", "HTTP listen address")
	mgmtListen := fs.String("mgmtlisten", "0.0.0.0:7501", "side-channel listen address")
	docroot := fs.String("docroot", "/var/mogdata", "directory holding the devN directories")
	maxconns := fs.Int("maxconns", 0, "most simultaneous HTTP clients (0: what the file descriptor limit allows)")
	server := fs.String("server", "perlbal", "HTTP server: perlbal (built in) or none (side channel and usage only)")
	fs.String("serverbin", "", "accepted for compatibility")
	pidfile := fs.String("pidfile", "", "write the process id to this file")
	fs.BoolP("daemonize", "d", false, "accepted for compatibility; run under systemd instead")
	fs.Bool("iostat", true, "accepted for compatibility (utilisation comes from /proc/diskstats)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	writeNets := fs.String("write_networks", "", "only clients in these networks (the trackers and uploaders) may PUT and DELETE; GET stays open; empty: everyone")
	bodyTimeout := fs.Duration("body_timeout", 5*time.Minute, "fail an upload whose client sends nothing for this long")
	tempMaxAge := fs.Duration("temp_max_age", time.Hour, "remove the temporary file of an interrupted upload once it has not been written for this long (must exceed body_timeout)")
	sweepInterval := fs.Duration("sweep_interval", time.Hour, "look for such temporary files this often, and at start")
	fsync := fs.Bool("fsync", true, "fsync every written file and its directory before acknowledging it; --fsync=false acknowledges once the bytes are in place but not on disk (MooseFS's default): a machine crash can lose the last seconds' files")
	metrics := fs.String("metrics", "", "serve Prometheus metrics at this address (e.g. 127.0.0.1:7502): /metrics, /debug/pprof/")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if !*skip {
		unknown, err := conffile.Load(fs, *config, fs.Changed("config"), nil)
		if err != nil {
			return err
		}
		if len(unknown) > 0 {
			return fmt.Errorf("%s:%d: unknown key %q", *config, unknown[0].Line, unknown[0].Key)
		}
	}
	log := logging.New(os.Stderr, *logLevel)
	if *sweepInterval <= 0 || *tempMaxAge <= 0 {
		return fmt.Errorf("sweep_interval and temp_max_age must be positive")
	}
	if *server != "perlbal" && *server != "none" {
		return fmt.Errorf("--server=%s is not supported: the built-in server is used (perlbal), or none", *server)
	}
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
	}
	writers, err := core.ParseNetworks(*writeNets)
	if err != nil {
		return fmt.Errorf("write_networks: %w", err)
	}
	if *maxconns <= 0 {
		*maxconns = listener.DefaultMaxConns(2)
	}
	srv, err := storage.New(storage.Config{DocRoot: *docroot, WriteNetworks: writers, Logger: log,
		MaxWriters: max(1, *maxconns*3/4), BodyTimeout: *bodyTimeout,
		TempMaxAge: *tempMaxAge, SweepInterval: *sweepInterval, NoSync: !*fsync})
	if err != nil {
		return err
	}
	devs, _ := srv.Devices()
	if len(devs) == 0 {
		log.Warn("mogstored: no devN directories in the docroot yet", "docroot", *docroot)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.RunUsage(ctx)
	if *metrics != "" {
		ops, err := opsserver.Start(*metrics, srv.Registry())
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		defer ops.Close()
	}

	errc := make(chan error, 2)
	side, err := net.Listen("tcp", *mgmtListen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *mgmtListen, err)
	}
	go func() { errc <- srv.ServeSide(ctx, side) }()
	var hs *http.Server
	if *server == "perlbal" {
		ln, err := net.Listen("tcp", *httpListen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *httpListen, err)
		}
		ln = listener.Limit(ln, *maxconns, log)
		hs = srv.NewHTTPServer()
		log.Info("mogstored: serving", "http", ln.Addr().String(), "side", side.Addr().String(), "docroot", *docroot, "devices", len(devs))
		go func() {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("mogstored: shutting down", "signal", s.String())
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	cancel()
	if hs != nil {
		sctx, c2 := context.WithTimeout(context.Background(), 30*time.Second)
		defer c2()
		return hs.Shutdown(sctx)
	}
	return nil
}
