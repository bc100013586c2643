// Package admin implements mogadm, the MogileFS administration tool, with
// the original's command syntax (so that operators' scripts keep working),
// and the file tools of MogileFS-Utils (mogupload, mogfetch, mogdelete,
// mogfileinfo, moglistkeys, moglistfids, mogrename, mogfiledebug).
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/conffile"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// Interactive enables progress bars on Stderr.
	Interactive bool
	// Home is the user's home directory, for ~/.mogilefs.conf.
	Home string
}

// usageError is a command-line mistake: print it and the usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// cmd is one parsed invocation.
type cmd struct {
	env     Env
	fs      *pflag.FlagSet
	args    []string // positional arguments after the command words
	c       *client.Client
	verbose bool
	domain  string
	ctx     context.Context
}

// fileTools maps the MogileFS-Utils program names to mogadm commands.
var fileTools = map[string]string{
	"mogupload": "upload", "mogfetch": "fetch", "mogdelete": "delete", "mogfileinfo": "fileinfo",
	"moglistkeys": "listkeys", "moglistfids": "listfids", "mogrename": "rename", "mogfiledebug": "filedebug",
}

// Run runs mogadm (or, when prog is a MogileFS-Utils name such as
// mogupload, that tool) with args and returns the exit status.
func Run(ctx context.Context, prog string, args []string, env Env) int {
	if t, ok := fileTools[filepath.Base(prog)]; ok {
		args = append([]string{t}, args...)
	}
	err := run(ctx, args, env)
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(env.Stderr, "mogadm: %s\n\n%s", ue.msg, usageText)
		return 1
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		fmt.Fprintf(env.Stderr, "Error: %s: %s\n", pe.Code, pe.Text)
		return 1
	}
	fmt.Fprintf(env.Stderr, "Error: %v\n", err)
	return 1
}

const usageText = `Usage: mogadm [--trackers=host:port,...] [--verbose] <command> ...

Cluster:
  check                                   hosts, devices, space and health
  host list | add <host> [--ip= --port= --getport= --altip= --altmask= --status=]
       | modify <host> [same] | mark <host> <status> | delete <host>
  device list [--all] [--hostname=] | summary [--status=] [--hostname=]
         | add <host> <devid> [--status=] | mark <host> <devid> <status>
         | modify <host> <devid> [--status= --weight=] | next
  domain list | add <domain> | delete <domain>
  class list | add <domain> <class> [--mindevcount=2 --replpolicy= --hashtype=]
        | modify <domain> <class> [same] | delete <domain> <class>
  settings list | set <key> <value>
  slave list | add <key> --dsn= --username= --password= | modify <key> [same] | delete <key>
  fsck start | stop | status | reset [--policy-only --startpos=N] | clearlog | printlog | taillog
  rebalance start | stop | status | test | reset | settings | policy --options="k=v ..."

Files (also as mogupload, mogfetch, ... when called by those names):
  upload --domain= --key= --file=<path|-> [--class=]
  fetch --domain= --key= --file=<path|->
  delete --domain= --key=
  rename --domain= --old_key= --new_key=
  fileinfo --domain= --key=
  filedebug --domain= --key= | --fid=
  listkeys --domain= [--key_prefix=]
  listfids [--fromfid=0] [--count=100]
`

// allFlags declares every option any command takes; each command reads
// the ones it needs.
func allFlags(fs *pflag.FlagSet) {
	for _, n := range []string{"trackers", "config", "conf", "lib", "domain", "key", "file", "class", "old_key", "new_key",
		"key_prefix", "ip", "port", "getport", "altip", "altmask", "status", "hostname", "weight", "mindevcount",
		"replpolicy", "hashtype", "options", "dsn", "username", "password", "fid", "fromfid", "count", "startpos", "paths"} {
		fs.String(n, "", "")
	}
	for _, n := range []string{"verbose", "all", "policy-only", "help", "checksum", "largefile", "noverify"} {
		fs.Bool(n, false, "")
	}
	fs.String("timeout", "", "")
}

func run(ctx context.Context, argv []string, env Env) error {
	fs := pflag.NewFlagSet("mogadm", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	allFlags(fs)
	if err := fs.Parse(argv); err != nil {
		return usagef("%v", err)
	}
	if h, _ := fs.GetBool("help"); h || fs.NArg() == 0 {
		fmt.Fprint(env.Stdout, usageText)
		if h {
			return nil
		}
		return usagef("no command given")
	}
	if err := loadConfig(fs, env); err != nil {
		return err
	}
	trackers, _ := fs.GetString("trackers")
	if trackers == "" {
		trackers = "127.0.0.1:7001"
	}
	timeout := 15 * time.Second
	if t, _ := fs.GetString("timeout"); t != "" {
		if d, err := time.ParseDuration(t + "s"); err == nil {
			timeout = d
		}
	}
	cl, err := client.New(strings.Split(trackers, ","), client.Options{RequestTimeout: timeout})
	if err != nil {
		return err
	}
	defer cl.Close()
	c := &cmd{env: env, fs: fs, c: cl, ctx: ctx}
	c.verbose, _ = fs.GetBool("verbose")
	c.domain, _ = fs.GetString("domain")
	words := fs.Args()
	c.args = words[1:]
	switch words[0] {
	case "check":
		return c.check()
	case "host":
		return c.host()
	case "device":
		return c.device()
	case "domain":
		return c.domainCmd()
	case "class":
		return c.class()
	case "settings":
		return c.settings()
	case "slave":
		return c.slave()
	case "fsck":
		return c.fsck()
	case "rebalance":
		return c.rebalance()
	case "stats":
		fmt.Fprintln(env.Stdout, "mogadm stats is deprecated upstream; use the tracker's !stats or /metrics.")
		return nil
	case "upload":
		return c.upload()
	case "fetch":
		return c.fetch()
	case "delete":
		return c.deleteFile()
	case "rename":
		return c.rename()
	case "fileinfo":
		return c.fileinfo()
	case "filedebug":
		return c.filedebug()
	case "listkeys":
		return c.listkeys()
	case "listfids":
		return c.listfids()
	}
	return usagef("unknown command %q", words[0])
}

// loadConfig reads --config/--conf, $MOGUTILSCONF, ~/.mogilefs.conf and
// /etc/mogilefs/mogilefs.conf (first found) for trackers, domain, timeout.
func loadConfig(fs *pflag.FlagSet, env Env) error {
	var candidates []string
	explicit := false
	for _, n := range []string{"config", "conf"} {
		if v, _ := fs.GetString(n); v != "" {
			candidates, explicit = []string{v}, true
		}
	}
	if !explicit {
		if v := os.Getenv("MOGUTILSCONF"); v != "" {
			candidates = append(candidates, v)
		}
		if env.Home != "" {
			candidates = append(candidates, filepath.Join(env.Home, ".mogilefs.conf"))
		}
		candidates = append(candidates, "/etc/mogilefs/mogilefs.conf")
	}
	for _, p := range candidates {
		_, err := conffile.Load(fs, p, explicit, nil)
		if err == nil {
			if _, statErr := os.Stat(p); statErr == nil {
				return nil
			}
			continue
		}
		return err
	}
	return nil
}

func (c *cmd) str(name string) string { v, _ := c.fs.GetString(name); return v }
func (c *cmd) flag(name string) bool  { v, _ := c.fs.GetBool(name); return v }

// do sends one tracker command.
func (c *cmd) do(name string, args protocol.Args) (protocol.Args, error) {
	return c.c.Tracker.Do(c.ctx, name, args)
}

// ok prints a success message in verbose mode.
func (c *cmd) ok(format string, a ...any) error {
	if c.verbose {
		fmt.Fprintf(c.env.Stdout, format+"\n", a...)
	}
	return nil
}

// need checks the number of positional arguments.
func (c *cmd) need(n int, usage string) error {
	if len(c.args) < n {
		return usagef("usage: mogadm %s", usage)
	}
	return nil
}

// setIf copies a flag's value into args when it was given.
func (c *cmd) setIf(args protocol.Args, flag, key string) {
	if c.fs.Changed(flag) {
		args[key] = c.str(flag)
	}
}
