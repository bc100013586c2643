package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/conffile"
	"github.com/mogilefs-go/mogilefs-go/core/logging"
	"github.com/mogilefs-go/mogilefs-go/core/opsserver"
	"github.com/mogilefs-go/mogilefs-go/fusefs"
)

func main() {
	rep := reporter() // set in the background copy started for mount(8)
	if err := run(rep); err != nil {
		if rep != nil {
			fmt.Fprintln(rep, err)
		}
		fmt.Fprintln(os.Stderr, "mogmount:", err)
		os.Exit(1)
	}
}

func run(rep io.WriteCloser) error {
	ensurePath()
	fs := pflag.NewFlagSet("mogmount", pflag.ContinueOnError)
	trackers := fs.String("trackers", "", "tracker addresses, comma-separated (default: trackers= from /etc/mogilefs/mogilefs.conf, else 127.0.0.1:7001)")
	config := fs.String("config", "/etc/mogilefs/mogilefs.conf", "client config file (trackers = ...)")
	class := fs.String("class", "", "class of new files (default: the domain's default class)")
	ro := fs.Bool("read-only", false, "mount read-only")
	allowOther := fs.Bool("allow-other", false, "let other users use the mount")
	uid := fs.Uint32("uid", uint32(os.Getuid()), "owner of every file")
	gid := fs.Uint32("gid", uint32(os.Getgid()), "group of every file")
	fileMode := fs.String("file-mode", "0644", "default file permissions (octal)")
	dirMode := fs.String("dir-mode", "0755", "directory permissions (octal)")
	kernelTTL := fs.Duration("kernel-ttl", fusefs.DefaultKernelTTL, "how long the kernel caches entries and attributes")
	cacheTTL := fs.Duration("cache-ttl", fusefs.DefaultCacheTTL, "how long tracker answers are cached")
	cacheSize := fs.Int("cache-size", fusefs.DefaultCacheSize, "entries per cache")
	spoolDir := fs.String("spool-dir", "", "directory for spool files (default $TMPDIR/mogmount-spool)")
	spoolLimit := fs.Int64("spool-limit", fusefs.DefaultSpoolLimit, "bytes of spool files at most")
	patchMin := fs.Int64("patch-min-size", fusefs.DefaultPatchMinSize, "a file at least this big that is changed in place is saved by sending only the changed ranges, where the tracker and its storage nodes can (edit_file); -1: always upload whole files")
	stallTimeout := fs.Duration("stall-timeout", fusefs.DefaultStallTimeout, "an upload fails (or moves to another node, from the spool) when a storage node takes no bytes for this long")
	renameLimit := fs.Int("rename-dir-limit", fusefs.DefaultRenameDirLimit, "most keys a directory rename moves (more: EXDEV, mv copies)")
	readahead := fs.Uint32("max-readahead", 1<<20, "kernel read-ahead in bytes")
	metrics := fs.String("metrics", "", "serve counters at this address (e.g. 127.0.0.1:7600): /metrics, and profiles at /debug/pprof/")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	gcPercent := fs.Int("gc-percent", fusefs.DefaultGCPercent, "garbage collector target (as GOGC; the GOGC environment variable wins)")
	opts := fs.StringArrayP("options", "o", nil, "fstab-style options: ro, allow_other, uid=, gid=, class=, trackers=, spool_dir=, foreground, log_file=, ...")
	foreground := fs.BoolP("foreground", "f", false, "stay in the foreground when started as mount(8) starts it (TRACKERS MOUNTPOINT)")
	logFile := fs.String("log-file", "", "where a mogmount that went to the background logs (default /var/log/mogmount.log, else $TMPDIR/mogmount.log)")
	// mount(8) passes these to its helpers; they change nothing here.
	for _, f := range []struct{ long, short string }{{"no-mtab", "n"}, {"sloppy", "s"}, {"verbose", "v"}} {
		fs.BoolP(f.long, f.short, false, "from mount(8): ignored")
		fs.MarkHidden(f.long)
	}
	fs.StringP("type", "t", "", "from mount(8): ignored")
	fs.MarkHidden("type")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mogmount [--trackers=HOST:7001,...] [options] MOUNTPOINT\n"+
			"       mogmount TRACKERS MOUNTPOINT -o OPTIONS   (as mount(8) runs it from /etc/fstab)\n\n"+
			"Mounts a MogileFS cluster at MOUNTPOINT: domains are directories, keys are files.\n"+
			"With one argument it runs in the foreground; as mount(8) runs it, it goes to the\n"+
			"background once mounted (--foreground to stay). SIGINT, SIGTERM or umount unmounts.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	args := fs.Args()
	switch len(args) {
	case 1:
	case 2: // fstab: source (the trackers) and mount point
		if !fs.Changed("trackers") {
			*trackers = args[0]
		}
		args = args[1:]
	default:
		return fmt.Errorf("usage: mogmount [--trackers=h:7001,...] [options] MOUNTPOINT")
	}
	for _, o := range *opts {
		for _, kv := range strings.Split(o, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k = strings.ReplaceAll(k, "_", "-"); k {
			case "ro":
				*ro = true
			case "rw", "defaults", "-netdev", "nofail", "auto", "noauto", "user", "users", "nodev", "nosuid", "exec", "noexec", "dev", "suid":
			case "allow-other":
				*allowOther = true
			case "foreground":
				*foreground = true
			default:
				if err := fs.Set(k, v); err != nil {
					return fmt.Errorf("-o %s: %w", kv, err)
				}
			}
		}
	}
	if len(fs.Args()) == 2 && !*foreground && rep == nil {
		// Started as mount(8) starts it: mount in the background and
		// return once the mount is up.
		if *logFile == "" {
			*logFile = defaultLogPath()
		}
		return background(*logFile)
	}
	if *trackers == "" {
		cf := pflag.NewFlagSet("conf", pflag.ContinueOnError)
		t := cf.String("trackers", "", "")
		conffile.Load(cf, *config, false, nil)
		*trackers = *t
	}
	if *trackers == "" {
		*trackers = "127.0.0.1:7001"
	}
	log := logging.New(os.Stderr, *logLevel)
	fm, err := strconv.ParseUint(*fileMode, 8, 32)
	if err != nil {
		return fmt.Errorf("--file-mode: %w", err)
	}
	dm, err := strconv.ParseUint(*dirMode, 8, 32)
	if err != nil {
		return fmt.Errorf("--dir-mode: %w", err)
	}
	cl, err := client.New(strings.Split(*trackers, ","), fusefs.ClientOptions())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = cl.Tracker.Do(ctx, "noop", nil)
	cancel()
	if err != nil {
		return fmt.Errorf("no tracker answers at %s: %w", *trackers, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	lacking, err := fusefs.CheckClass(ctx, cl.Tracker, *class)
	cancel()
	if err != nil {
		return fmt.Errorf("--class: %w", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	keyLimit, err := cl.Tracker.KeyLimit(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("ask the tracker its key limit: %w", err)
	}
	if len(lacking) > 0 {
		log.Warn("mogmount: the class does not exist in some domains; writes there fail with EINVAL", "class", *class, "domains", strings.Join(lacking, ","))
	}
	f, err := fusefs.New(fusefs.Config{
		Client: cl, Class: *class, ReadOnly: *ro, UID: *uid, GID: *gid,
		FileMode: os.FileMode(fm), DirMode: os.FileMode(dm),
		KernelTTL: *kernelTTL, CacheTTL: *cacheTTL, CacheSize: *cacheSize,
		SpoolDir: *spoolDir, SpoolLimit: *spoolLimit, PatchMinSize: *patchMin, RenameDirLimit: *renameLimit,
		StallTimeout: *stallTimeout, MaxKeyBytes: keyLimit, Logger: log,
	})
	if err != nil {
		return err
	}
	if *metrics != "" {
		ops, err := opsserver.Start(*metrics, f.Registry())
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		defer ops.Close()
	}
	m, err := fusefs.Mount(args[0], f, fusefs.MountOptions{AllowOther: *allowOther, ReadOnly: *ro, MaxReadahead: *readahead})
	if err != nil {
		return err
	}
	log.Info("mogmount: mounted", "dir", args[0], "trackers", *trackers)
	if rep != nil {
		fmt.Fprintln(rep, "ok")
		rep.Close()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("mogmount: unmounting", "signal", s.String())
		if err := m.Unmount(30 * time.Second); err != nil {
			return fmt.Errorf("unmount %s: %w", args[0], err)
		}
	case err := <-m.Done():
		if err != nil {
			return err
		}
		log.Info("mogmount: unmounted", "dir", args[0])
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		log.Warn("mogmount: directory times not saved", "err", err)
	}
	return nil
}
