package tracker

import (
	"log/slog"
	"net"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/listener"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// Defaults for Config fields left zero.
const (
	DefaultMinDevCount        = 2
	DefaultMinFreeSpaceMB     = 100
	DefaultNodeTimeout        = 2 * time.Second
	DefaultConnTimeout        = 2 * time.Second
	DefaultMonitorInterval    = 2500 * time.Millisecond
	DefaultWriteProbeInterval = 15 * time.Second
	DefaultSideChannelPort    = 7501
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultRequestReadTimeout = 30 * time.Second
	DefaultLongLineBudget     = 64 << 20
	// Version is what `!version` answers: the protocol level we speak.
	Version = "2.73"
)

// Config configures a tracker. Zero values mean the documented defaults.
type Config struct {
	// Store is the metadata database. Required.
	Store *store.Store
	// DefaultMinDevCount is the mindevcount of implicit default classes
	// (default 2).
	DefaultMinDevCount int
	// MinFreeSpaceMB is the free space a device must keep to get new files
	// (default 100).
	MinFreeSpaceMB int64
	// NodeTimeout bounds each storage-node HTTP request (default 2 s).
	NodeTimeout time.Duration
	// ConnTimeout bounds connecting to a storage node (default 2 s).
	ConnTimeout time.Duration
	// MonitorInterval is the time between monitor rounds (default 2.5 s).
	MonitorInterval time.Duration
	// WriteProbeInterval is the time between write probes of one device
	// (default 15 s).
	WriteProbeInterval time.Duration
	// SideChannelPort is the storage nodes' side-channel port (default 7501).
	SideChannelPort int
	// Hostname names this tracker in fsck and rebalance state (default:
	// the machine's host name).
	Hostname string
	// NoJobs turns off the background jobs (replication, deletion,
	// reapers) on this tracker; another tracker on the same database must
	// run them.
	NoJobs bool
	// ReplicateJobs and DeleteJobs bound the copies and deletions in
	// flight at once (default 8 and 4).
	ReplicateJobs, DeleteJobs int
	// FsckJobs bounds the fsck checks in flight at once (default 4).
	FsckJobs int
	// QueueLease is how long a claimed work item stays with this tracker
	// before another tracker may take it over (default 1000 s, as the
	// original; a tracker that dies leaves its items for that long).
	QueueLease time.Duration
	// QueuePoll is how often an idle job looks for work (default 1 s).
	QueuePoll time.Duration
	// QueueGather is how long a job lets work gather before claiming it,
	// once woken or after a batch smaller than it could take (default
	// 50 ms): files that trickle in are claimed, and their results
	// committed, many in one transaction rather than one each.
	QueueGather time.Duration
	// DeleteLag is how long the removal of deleted files' copies from the
	// nodes may wait for a burst of client requests to end (default 3 s;
	// negative: it never waits). While the tracker serves clients (a
	// request in the last quarter second), the deletion job waits, up to
	// DeleteLag, then removes all that is due before it waits again: an
	// rm -r is not slowed by the deletions it causes, and under steady
	// load deletions lag by DeleteLag at most, at full speed.
	DeleteLag time.Duration
	// TempfileMaxAge is when an upload never closed is reaped (default 1 h).
	TempfileMaxAge time.Duration
	// ReaperInterval is how often dead devices are looked for (default 5 s).
	ReaperInterval time.Duration
	// OrphanSweepInterval is how often each device's fid files are
	// listed for those no database row refers to, which are removed
	// (default 24 h; negative: never).
	OrphanSweepInterval time.Duration
	// OrphanMinAge is the age below which the sweep leaves a file
	// unreferenced, as its row may be on its way (default 24 h).
	OrphanMinAge time.Duration
	// AdminNetworks, when set, are the only client networks allowed to send
	// admin commands (create/update/delete of domains, classes, hosts and
	// devices, states, weights, settings, fsck and rebalance control) and
	// "!" commands. Empty: everyone (the original's behaviour).
	AdminNetworks []*net.IPNet
	// Plain makes the tracker behave exactly like the original 2.73: no
	// protocol extensions (directory listings, per-file metadata). For
	// testing clients against plain trackers.
	Plain bool
	// MaxConns caps the client connections held at once on each listener;
	// the next waits in the kernel's accept queue (default: what the file
	// descriptor limit allows, see listener.DefaultMaxConns).
	MaxConns int
	// IdleTimeout closes a connection that sends no request for this long
	// (default 10 min).
	IdleTimeout time.Duration
	// RequestReadTimeout is how long a request line may take to arrive
	// once its first byte has (default 30 s).
	RequestReadTimeout time.Duration
	// LongLineBudget bounds the bytes all connections together may hold
	// of request lines longer than a connection's 16 KiB buffer; a long
	// line beyond it is refused as request_too_long (default 64 MiB).
	LongLineBudget int64
	// OnShutdown is called when a client sends `!shutdown`; nil ignores it.
	OnShutdown func()
	// Logger receives the tracker's logs; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DefaultMinDevCount <= 0 {
		c.DefaultMinDevCount = DefaultMinDevCount
	}
	if c.MinFreeSpaceMB == 0 {
		c.MinFreeSpaceMB = DefaultMinFreeSpaceMB
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = DefaultNodeTimeout
	}
	if c.ConnTimeout <= 0 {
		c.ConnTimeout = DefaultConnTimeout
	}
	if c.MonitorInterval <= 0 {
		c.MonitorInterval = DefaultMonitorInterval
	}
	if c.WriteProbeInterval <= 0 {
		c.WriteProbeInterval = DefaultWriteProbeInterval
	}
	if c.SideChannelPort <= 0 {
		c.SideChannelPort = DefaultSideChannelPort
	}
	if c.ReplicateJobs <= 0 {
		c.ReplicateJobs = 8
	}
	if c.DeleteJobs <= 0 {
		c.DeleteJobs = 4
	}
	if c.FsckJobs <= 0 {
		c.FsckJobs = 4
	}
	if c.QueueLease <= 0 {
		c.QueueLease = leaseSeconds * time.Second
	}
	if c.QueuePoll <= 0 {
		c.QueuePoll = time.Second
	}
	if c.QueueGather <= 0 {
		c.QueueGather = 50 * time.Millisecond
	}
	if c.DeleteLag == 0 {
		c.DeleteLag = 3 * time.Second
	}
	if c.TempfileMaxAge <= 0 {
		c.TempfileMaxAge = time.Hour
	}
	if c.OrphanSweepInterval == 0 {
		c.OrphanSweepInterval = 24 * time.Hour
	}
	if c.OrphanMinAge <= 0 {
		c.OrphanMinAge = 24 * time.Hour
	}
	if c.ReaperInterval <= 0 {
		c.ReaperInterval = 5 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = listener.DefaultMaxConns(1)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.RequestReadTimeout <= 0 {
		c.RequestReadTimeout = DefaultRequestReadTimeout
	}
	if c.LongLineBudget <= 0 {
		c.LongLineBudget = DefaultLongLineBudget
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
