package tracker

import (
	"context"
	"strconv"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// queryStore is what the query handlers need from the database, by verb
// family. The monitor and the jobs declare their own.
type queryStore interface {
	configReader
	settingReader

	// Files: uploads, lookups, renames, deletes, metadata, listings.
	RegisterTempfile(ctx context.Context, t store.Tempfile, minFID int64) (int64, error)
	TempfileByFID(ctx context.Context, fid int64) (store.Tempfile, error)
	AbandonUpload(ctx context.Context, fid int64, devids []int, claim bool) error
	CommitFile(ctx context.Context, c store.Commit) (replaced int64, err error)
	FileAndDevids(ctx context.Context, dmid int, key string) (core.File, []int, error)
	FileAndMeta(ctx context.Context, dmid int, key string) (core.File, []int, map[string]string, error)
	FileByFID(ctx context.Context, fid int64) (core.File, error)
	FileByKey(ctx context.Context, dmid int, key string) (core.File, error)
	FileDevids(ctx context.Context, fid int64) ([]int, error)
	DeleteKey(ctx context.Context, dmid int, key string, d store.Durability) (int64, error)
	RenameKey(ctx context.Context, dmid int, from, to string, d store.Durability) error
	SetFileClass(ctx context.Context, fid int64, classid int) error
	HasMeta() bool
	FileMeta(ctx context.Context, fid int64) (map[string]string, error)
	SetFileMeta(ctx context.Context, fid int64, meta map[string]string, d store.Durability) error
	Sync(ctx context.Context) error
	Checksum(ctx context.Context, fid int64) (hashType int, sum []byte, err error)
	DebugRows(ctx context.Context, fid int64) (map[string]map[string]string, error)
	ListKeys(ctx context.Context, dmid int, prefix, after string, limit int) ([]string, error)
	ListDir(ctx context.Context, dmid int, prefix, delim, after string, limit int) (out []store.DirEntry, more bool, err error)
	ListFids(ctx context.Context, from int64, count int) ([]core.File, error)
	MaxFID(ctx context.Context) (int64, error)
	KeyLimit(ctx context.Context) (int, error)

	// Administration: domains, classes, hosts, devices, settings.
	CreateDomain(ctx context.Context, name string) (int, error)
	DeleteDomain(ctx context.Context, dmid int) error
	DomainHasFiles(ctx context.Context, dmid int) (bool, error)
	CreateClass(ctx context.Context, c core.Class) (int, error)
	UpdateClass(ctx context.Context, c core.Class) error
	DeleteClass(ctx context.Context, dmid, classid int) error
	ClassHasFiles(ctx context.Context, dmid, classid int) (bool, error)
	CreateHost(ctx context.Context, h core.Host) (int, error)
	UpdateHost(ctx context.Context, h core.Host) error
	DeleteHost(ctx context.Context, hostid int) error
	CreateDevice(ctx context.Context, d core.Device) error
	SetDeviceState(ctx context.Context, devid int, state string) error
	SetDeviceWeight(ctx context.Context, devid, weight int) error
	SetSetting(ctx context.Context, key, value string) error
	DeleteSetting(ctx context.Context, key string) error
	DeleteSettingsPrefix(ctx context.Context, prefix string) error

	// Jobs' controls: fsck, rebalance, replicate_now.
	ReplicateNow(ctx context.Context) (int64, error)
	EnqueueChecks(ctx context.Context, q store.Queue, fids []int64, devid int, arg string) error
	QueueLength(ctx context.Context, q store.Queue) (int64, error)
	FIDsAfter(ctx context.Context, after, upTo int64, limit int) ([]int64, error)
	FsckLog(ctx context.Context, after int64, limit int) ([]store.FsckLogRow, error)
	MaxFsckLogID(ctx context.Context) (int64, error)
	ClearFsckLog(ctx context.Context) error
	Now(ctx context.Context) (int64, error)
}

// commandTable maps each query command to its handler.
func (s *Server) commandTable() map[string]handler {
	t := map[string]handler{
		"noop":                 s.cmdNoop,
		"test":                 s.cmdTest,
		"sleep":                s.cmdSleep,
		"clear_cache":          s.cmdClearCache,
		"do_monitor_round":     s.cmdMonitorRound,
		"replicate_now":        s.cmdReplicateNow,
		"create_open":          s.cmdCreateOpen,
		"create_close":         s.cmdCreateClose,
		"get_paths":            s.cmdGetPaths,
		"edit_file":            s.cmdEditFile,
		"delete":               s.cmdDelete,
		"rename":               s.cmdRename,
		"updateclass":          s.cmdUpdateFileClass,
		"file_info":            s.cmdFileInfo,
		"file_debug":           s.cmdFileDebug,
		"list_keys":            s.cmdListKeys,
		"list_fids":            s.cmdListFids,
		"create_domain":        s.cmdCreateDomain,
		"delete_domain":        s.cmdDeleteDomain,
		"get_domains":          s.cmdGetDomains,
		"create_class":         s.cmdCreateClass,
		"update_class":         s.cmdUpdateClass,
		"delete_class":         s.cmdDeleteClass,
		"create_host":          s.cmdCreateHost,
		"update_host":          s.cmdUpdateHost,
		"delete_host":          s.cmdDeleteHost,
		"get_hosts":            s.cmdGetHosts,
		"create_device":        s.cmdCreateDevice,
		"get_devices":          s.cmdGetDevices,
		"set_state":            s.cmdSetState,
		"set_weight":           s.cmdSetWeight,
		"set_server_setting":   s.cmdSetServerSetting,
		"server_setting":       s.cmdServerSetting,
		"server_settings":      s.cmdServerSettings,
		"fsck_start":           s.cmdFsckStart,
		"fsck_stop":            s.cmdFsckStop,
		"fsck_reset":           s.cmdFsckReset,
		"fsck_clearlog":        s.cmdFsckClearLog,
		"fsck_getlog":          s.cmdFsckGetLog,
		"fsck_status":          s.cmdFsckStatus,
		"rebalance_set_policy": s.cmdRebalanceSetPolicy,
		"rebalance_test":       s.cmdRebalanceTest,
		"rebalance_start":      s.cmdRebalanceStart,
		"rebalance_stop":       s.cmdRebalanceStop,
		"rebalance_reset":      s.cmdRebalanceReset,
		"rebalance_status":     s.cmdRebalanceStatus,
		"plugin_meta_set":      s.cmdSetMeta,
		"get_limits":           s.cmdGetLimits,
		"get_space":            s.cmdGetSpace,
		"sync":                 s.cmdSync,
	}
	if s.cfg.Plain || !s.db.HasMeta() {
		delete(t, "plugin_meta_set") // no metadata kept: as the original without its plugin
	}
	if s.cfg.Plain {
		delete(t, "get_limits")
		delete(t, "get_space")
		delete(t, "sync")
	}
	return t
}

// errf is shorthand for a protocol error with the default text.
func errf(code string) error { return protocol.Err(code) }

// domainArg resolves the `domain` argument (and checks that its `class`
// argument, when given, names a class) against the configuration,
// re-read when it lacks them.
func (s *Server) domainArg(ctx context.Context, c *call) (core.Domain, *snapshot, error) {
	name := c.args.Get("domain")
	if name == "" {
		return core.Domain{}, s.mon.snap(), errf("no_domain")
	}
	sn := s.mon.snapFor(ctx, func(sn *snapshot) bool {
		d, ok := sn.domains[name]
		if ok && c.args.Has("class") {
			_, ok = sn.class(d.ID, c.args.Get("class"))
		}
		return !ok
	})
	d, ok := sn.domains[name]
	if !ok {
		return core.Domain{}, sn, errf("unreg_domain")
	}
	return d, sn, nil
}

// intArg parses an optional integer argument; def when absent or empty.
func intArg(a protocol.Args, name string, def int64) (int64, bool) {
	v := a.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

func itoa(n int) string     { return strconv.Itoa(n) }
func i64toa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Server) cmdNoop(ctx context.Context, c *call) (protocol.Args, error) { return nil, nil }

// durability is how soon a metadata change (delete, rename,
// plugin_meta_set) must be durable: when the command is answered, or, with
// nosync=1 (ours: mogmount's unlink, rename and metadata, as a local file
// system's), once a later durable commit or sync made it so. A tracker
// playing the original has no sync, and ignores nosync as the original
// does.
func (s *Server) durability(c *call) store.Durability {
	if c.args.Get("nosync") == "1" && !s.cfg.Plain {
		return store.Deferred
	}
	return store.Durable
}

// cmdSync (ours) answers once every change committed before it is
// durable: a client's fsync after changes sent with nosync=1.
func (s *Server) cmdSync(ctx context.Context, c *call) (protocol.Args, error) {
	return nil, s.store().Sync(ctx)
}

func (s *Server) cmdTest(ctx context.Context, c *call) (protocol.Args, error) {
	if c.args.Bool("crash") {
		return nil, errf("failure")
	}
	return nil, nil
}
