package tracker

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/node"
	"github.com/mogilefs-go/mogilefs-go/core/storage"
)

// Observed device states, as get_devices reports them.
const (
	obsWriteable   = "writeable"
	obsReadable    = "readable"
	obsUnreachable = "unreachable"
)

// observed is what the monitor last saw of one device, as it publishes
// it (see devicesView).
type observed struct {
	state        string // obsWriteable, obsReadable, obsUnreachable or ""
	utilization  string
	rejectBadMD5 bool
	noMkcol      bool // the node refuses MKCOL; don't send it

	// The device's space as its last usage report gave it (haveUsage).
	haveUsage       bool
	totalMB, usedMB int64
	filesystem      string // the node's name for the disk the device is on; "" unknown
}

// observation is the monitor's own record of one device: what it
// publishes, when it last probed, and what this tracker has placed on
// the device since its last usage report was measured (reports are up to
// a usage interval old, and a device about to fill must stop getting
// files before its report says so).
type observation struct {
	observed
	lastProbe   time.Time // last write probe
	placed      []placement
	placedBytes int64 // the sum of placed, kept so that readers need not add
}

// devicesView is the monitor's published view of the devices: each
// one's observation and whether its host answered in the last round.
// It is replaced as a whole after every change and never modified, so
// handlers and jobs read it without the monitor's lock.
type devicesView struct {
	obs      map[int]observed
	hostDown map[int]bool
}

// placement is bytes this tracker put on a device at a time.
type placement struct {
	at    time.Time
	bytes int64
}

// maxPlacements bounds a device's placement list; older ones are merged.
const maxPlacements = 4096

// monitorStore is what the monitor needs from the database: the
// configuration tables, and a place to record device usage.
type monitorStore interface {
	configReader
	UpdateDeviceUsage(ctx context.Context, devid int, totalMB, usedMB int64) error
}

// monitor watches every device of the cluster and publishes what it
// knows: the configuration tables as an immutable snapshot, re-read each
// round and on demand, and each device's observed state. Handlers and
// jobs read both through its methods; nothing outside takes its lock.
type monitor struct {
	cfg    *Config
	log    *slog.Logger
	db     monitorStore
	nodes  *node.Client
	tables atomic.Pointer[snapshot] // the configuration tables
	missMu sync.Mutex               // one re-read at a time for snapFor
	wg     *sync.WaitGroup          // the tracker's background goroutines

	// onSnapshot is called with the snapshot each round reads (the read
	// replicas follow the settings); onWriteable when a device becomes
	// writeable again after the first round. Either may be nil.
	onSnapshot  func(context.Context, *snapshot)
	onWriteable func(context.Context, core.Device)

	view atomic.Pointer[devicesView] // published from obs and hostDown

	mu          sync.Mutex           // guards the fields below
	obs         map[int]*observation // devid -> observation
	hostDown    map[int]bool         // hostid -> observed unreachable
	round       int64                // completed rounds
	roundDone   chan struct{}        // closed and replaced after each round
	kick        chan struct{}        // asks for a round now
	lastPublish time.Time            // of the view

	dirs madeDirs // fid directories known to exist on the nodes
}

func newMonitor(cfg *Config, log *slog.Logger, db monitorStore, nodes *node.Client, wg *sync.WaitGroup) *monitor {
	m := &monitor{
		cfg:       cfg,
		log:       log,
		db:        db,
		nodes:     nodes,
		wg:        wg,
		obs:       map[int]*observation{},
		hostDown:  map[int]bool{},
		roundDone: make(chan struct{}),
		kick:      make(chan struct{}, 1),
		dirs:      madeDirs{seen: map[string]struct{}{}},
	}
	m.view.Store(&devicesView{obs: map[int]observed{}, hostDown: map[int]bool{}})
	return m
}

func (m *monitor) roundNo() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.round
}

// run does monitor rounds until ctx ends.
func (m *monitor) run(ctx context.Context) {
	io := &iostat{m: m, conns: map[string]context.CancelFunc{}}
	for {
		m.doRound(ctx)
		io.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.MonitorInterval):
		case <-m.kick:
		}
	}
}

// waitRound asks for a fresh round and waits until one has completed
// after the call; with fresh=false it only waits for the first round.
func (m *monitor) waitRound(ctx context.Context, fresh bool) error {
	m.mu.Lock()
	if !fresh && m.round > 0 {
		m.mu.Unlock()
		return nil
	}
	// A round already in progress may have read state from before the
	// call, so wait for the one after it.
	target := m.round + 1
	if fresh {
		target = m.round + 2
	}
	m.mu.Unlock()
	for {
		select {
		case m.kick <- struct{}{}:
		default:
		}
		m.mu.Lock()
		done, round := m.roundDone, m.round
		m.mu.Unlock()
		if round >= target {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// doRound re-reads the configuration and probes every device that may
// be read from.
func (m *monitor) doRound(ctx context.Context) {
	if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("tracker: monitor cannot read the database", "err", err)
	}
	sn := m.snap()
	if m.onSnapshot != nil {
		m.onSnapshot(ctx, sn)
	}
	byHost := map[int][]core.Device{}
	for _, d := range sn.devices {
		h, ok := sn.hosts[d.HostID]
		if !ok || (h.Status != core.HostAlive && h.Status != core.HostReadonly) {
			continue
		}
		switch d.Status {
		case core.DevAlive, core.DevReadonly, core.DevDrain:
			byHost[d.HostID] = append(byHost[d.HostID], d)
		}
	}
	var wg sync.WaitGroup
	for hostid, devs := range byHost {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.probeHost(ctx, sn.hosts[hostid], devs)
		}()
	}
	wg.Wait()
	m.mu.Lock()
	m.publishLocked()
	m.round++
	close(m.roundDone)
	m.roundDone = make(chan struct{})
	m.mu.Unlock()
}

// probeHost probes the devices of one host in turn.
func (m *monitor) probeHost(ctx context.Context, h core.Host, devs []core.Device) {
	hostUnreachable := false
	for _, d := range devs {
		if hostUnreachable {
			m.setState(d.ID, obsUnreachable)
			continue
		}
		start := time.Now()
		u, err := m.readUsage(ctx, h, d.ID)
		if ctx.Err() != nil {
			return // shutting down: the devices did nothing wrong
		}
		if err != nil {
			if time.Since(start) > 500*time.Millisecond {
				hostUnreachable = true
			}
			if m.state(d.ID) != obsUnreachable {
				m.log.Warn("tracker: device unreachable", "devid", d.ID, "host", h.Name, "err", err)
			}
			m.setState(d.ID, obsUnreachable)
			continue
		}
		m.noteUsage(d.ID, u)
		if err := m.db.UpdateDeviceUsage(ctx, d.ID, u.total/1024, u.used/1024); err != nil && ctx.Err() == nil {
			m.log.Warn("tracker: cannot record device usage", "devid", d.ID, "err", err)
		}
		m.writeProbe(ctx, h, d)
	}
	m.mu.Lock()
	m.hostDown[h.ID] = hostUnreachable
	m.publishLocked()
	m.mu.Unlock()
}

// usage is a device's usage report: space in KiB, when the node measured
// it (its `time:` line) and the node's clock when it answered.
type usage struct {
	total, used int64
	filesystem  string    // from the node's X-Mogstored-Filesystem header
	measured    time.Time // zero when the report has no time
	nodeNow     time.Time // the response's Date; zero when absent
	received    time.Time // this tracker's clock on receipt
}

// noteUsage records a device's new usage report and forgets the
// placements it already counts.
func (m *monitor) noteUsage(devid int, u usage) {
	// When the node measured, on this tracker's clock: its report time
	// shifted by the clocks' difference; without a time, assume a usage
	// interval ago.
	cutoff := u.received.Add(-10 * time.Second)
	if !u.measured.IsZero() && !u.nodeNow.IsZero() {
		cutoff = u.measured.Add(u.received.Sub(u.nodeNow)).Add(-time.Second) // Date has 1 s resolution
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.obsLocked(devid)
	o.haveUsage, o.totalMB, o.usedMB, o.filesystem = true, u.total/1024, u.used/1024, u.filesystem
	m.publishLocked()
	keep := o.placed[:0]
	for _, p := range o.placed {
		if p.at.After(cutoff) {
			keep = append(keep, p)
		} else {
			o.placedBytes -= p.bytes
		}
	}
	o.placed = keep
}

// notePlaced records that bytes were just written to a device by this
// tracker's doing (a committed upload, a replicated copy).
func (m *monitor) notePlaced(devid int, bytes int64) {
	if bytes <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.obsLocked(devid)
	if len(o.placed) >= maxPlacements {
		o.placed[1].bytes += o.placed[0].bytes
		o.placed = append(o.placed[:0], o.placed[1:]...)
	}
	o.placed = append(o.placed, placement{at: time.Now(), bytes: bytes})
	o.placedBytes += bytes
}

// withPlacements returns d with its space as the monitor knows it now:
// its last usage report plus what was placed on it since.
func (m *monitor) withPlacements(d core.Device) core.Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.obs[d.ID]
	if !ok || !o.haveUsage {
		return d
	}
	d.MBTotal, d.MBUsed = o.totalMB, o.usedMB+(o.placedBytes+(1<<20)-1)>>20
	return d
}

// readUsage GETs and parses /devN/usage.
func (m *monitor) readUsage(ctx context.Context, h core.Host, devid int) (usage, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ConnTimeout)
	defer cancel()
	url := hostBase(h, nil, false, true) + "/dev" + strconv.Itoa(devid) + "/usage"
	body, hdr, err := m.nodes.Fetch(ctx, url, 64<<10)
	if err != nil {
		return usage{}, err
	}
	u, err := parseUsage(body)
	u.received = time.Now()
	u.filesystem = hdr.Get(storage.FilesystemHeader)
	if t, err := http.ParseTime(hdr.Get("Date")); err == nil {
		u.nodeNow = t
	}
	return u, err
}

// parseUsage reads the `key: value` usage format; used and total must
// be present and non-zero.
func parseUsage(body []byte) (usage, error) {
	var u usage
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "time":
			u.measured = time.Unix(n, 0)
		case "total":
			u.total = n
		case "used":
			u.used = n
		}
	}
	if u.total == 0 || u.used == 0 {
		return u, fmt.Errorf("usage file lacks used/total")
	}
	return u, nil
}

// writeProbe decides whether a reachable device is writeable: at most
// every WriteProbeInterval it writes a small file and reads it back.
func (m *monitor) writeProbe(ctx context.Context, h core.Host, d core.Device) {
	m.mu.Lock()
	o := m.obsLocked(d.ID)
	due := time.Since(o.lastProbe) >= m.cfg.WriteProbeInterval || o.state == obsUnreachable || o.state == ""
	noMkcol := o.noMkcol
	m.mu.Unlock()
	if h.Status != core.HostAlive || d.Status == core.DevReadonly {
		m.setState(d.ID, obsReadable)
		return
	}
	if !due {
		return
	}
	base := hostBase(h, nil, false, false) + "/dev" + strconv.Itoa(d.ID) + "/test-write/"
	if !noMkcol && !m.snap().settingBool("skip_mkcol") {
		if code := m.mkcol(ctx, base); code == http.StatusBadRequest || code == http.StatusNotImplemented {
			m.noteRefusesMkcol(d.ID)
		}
	}
	n := rand.IntN(100)
	body := fmt.Sprintf("time=%d rand=%d", time.Now().Unix(), n)
	url := base + "test-write-" + strconv.Itoa(n)
	state := obsReadable
	if err := m.putAndReadBack(ctx, h, d.ID, url, body); err != nil {
		m.log.Warn("tracker: write probe failed; device is read-only until it passes", "devid", d.ID, "host", h.Name, "err", err)
	} else {
		state = obsWriteable
	}
	reject := false
	if state == obsWriteable {
		reject = m.md5Probe(ctx, base+"test-md5")
	}
	m.mu.Lock()
	o = m.obsLocked(d.ID)
	recovered := state == obsWriteable && o.state != obsWriteable && m.round > 0
	o.state, o.lastProbe, o.rejectBadMD5 = state, time.Now(), reject
	m.publishLocked()
	m.mu.Unlock()
	if recovered {
		m.deviceRecovered(ctx, d)
	}
}

// deviceRecovered reports a device that became writeable again.
func (m *monitor) deviceRecovered(ctx context.Context, d core.Device) {
	m.log.Info("tracker: device is writeable again", "devid", d.ID)
	if m.onWriteable != nil {
		m.onWriteable(ctx, d)
	}
}

func (m *monitor) putAndReadBack(ctx context.Context, h core.Host, devid int, url, body string) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.NodeTimeout)
	defer cancel()
	err := m.nodes.Put(ctx, url, strings.NewReader(body), int64(len(body)), http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		return err
	}
	getURL := hostBase(h, nil, false, true) + strings.TrimPrefix(url, hostBase(h, nil, false, false))
	got, _, err := m.nodes.Fetch(ctx, getURL, 4096)
	if err != nil {
		return err
	}
	if string(got) != body {
		return fmt.Errorf("GET %s: read back %q", getURL, got)
	}
	return nil
}

// md5Probe PUTs "." with the MD5 of "!" and reports whether the node
// refused it, i.e. whether it checks Content-MD5.
func (m *monitor) md5Probe(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.NodeTimeout)
	defer cancel()
	sum := md5.Sum([]byte("!"))
	err := m.nodes.Put(ctx, url, strings.NewReader("."), 1, http.Header{"Content-MD5": {base64.StdEncoding.EncodeToString(sum[:])}})
	var se *node.StatusError
	return errors.As(err, &se)
}

// mkcol sends MKCOL for url and returns the status code (0 on error).
func (m *monitor) mkcol(ctx context.Context, url string) int {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.NodeTimeout)
	defer cancel()
	code, _ := m.nodes.Probe(ctx, "MKCOL", url)
	return code
}

func (m *monitor) obsLocked(devid int) *observation {
	o, ok := m.obs[devid]
	if !ok {
		o = &observation{}
		m.obs[devid] = o
	}
	return o
}

func (m *monitor) setState(devid int, st string) {
	m.mu.Lock()
	if o := m.obsLocked(devid); o.state != st {
		o.state = st
		m.publishLocked()
	}
	m.mu.Unlock()
}

// publishLocked replaces the published view with one made from the
// observations now. The caller holds m.mu.
func (m *monitor) publishLocked() {
	v := &devicesView{obs: make(map[int]observed, len(m.obs)), hostDown: make(map[int]bool, len(m.hostDown))}
	for id, o := range m.obs {
		v.obs[id] = o.observed
	}
	for id, down := range m.hostDown {
		v.hostDown[id] = down
	}
	m.view.Store(v)
	m.lastPublish = time.Now()
}

// devices returns the published view of the devices.
func (m *monitor) devices() *devicesView { return m.view.Load() }

func (m *monitor) state(devid int) string { return m.devices().obs[devid].state }

// observed returns a device's published observation and whether its host
// was reachable in the last round.
func (m *monitor) observed(devid, hostid int) (observed, bool) {
	v := m.devices()
	return v.obs[devid], !v.hostDown[hostid]
}

// noteUtilization records a device's I/O utilization from its node's
// report. Reports come every second for every device: the view is
// published with them at most every 500 ms (and after every round).
func (m *monitor) noteUtilization(devid int, util string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.obsLocked(devid).utilization = util
	if time.Since(m.lastPublish) >= 500*time.Millisecond {
		m.publishLocked()
	}
}

// canRead reports should_read_from for a device.
func (m *monitor) canRead(sn *snapshot, d core.Device) bool {
	h, ok := sn.hosts[d.HostID]
	if !ok || (h.Status != core.HostAlive && h.Status != core.HostReadonly) {
		return false
	}
	switch d.Status {
	case core.DevAlive, core.DevReadonly, core.DevDrain:
	default:
		return false
	}
	o, hostUp := m.observed(d.ID, d.HostID)
	return hostUp && (o.state == obsReadable || o.state == obsWriteable)
}

// canWrite reports should_get_new_files for a device.
func (m *monitor) canWrite(sn *snapshot, d core.Device) bool {
	h, ok := sn.hosts[d.HostID]
	if !ok || h.Status != core.HostAlive || d.Status != core.DevAlive {
		return false
	}
	o, hostUp := m.observed(d.ID, d.HostID)
	if !hostUp || o.state != obsWriteable {
		return false
	}
	if free := m.withPlacements(d).MBFree(); free >= 0 && free < m.cfg.MinFreeSpaceMB {
		return false
	}
	return true
}

// The device state the handlers read, from the published view, and note.

// refusesMkcol reports whether devid's node refused MKCOL.
func (m *monitor) refusesMkcol(devid int) bool { return m.devices().obs[devid].noMkcol }

// noteRefusesMkcol records that devid's node refuses MKCOL.
func (m *monitor) noteRefusesMkcol(devid int) {
	m.mu.Lock()
	if o := m.obsLocked(devid); !o.noMkcol {
		o.noMkcol = true
		m.publishLocked()
	}
	m.mu.Unlock()
}

// madeDirs are the fid directory URLs a MKCOL succeeded for, so that
// uploads do not ask again; past 100,000 URLs it starts again.
type madeDirs struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// mkcolDone reports whether a MKCOL of url succeeded already.
func (m *monitor) mkcolDone(url string) bool {
	m.dirs.mu.Lock()
	defer m.dirs.mu.Unlock()
	_, ok := m.dirs.seen[url]
	return ok
}

// noteMkcolDone records a MKCOL of url that succeeded.
func (m *monitor) noteMkcolDone(url string) {
	m.dirs.mu.Lock()
	defer m.dirs.mu.Unlock()
	if len(m.dirs.seen) > 100000 {
		m.dirs.seen = map[string]struct{}{}
	}
	m.dirs.seen[url] = struct{}{}
}

// utilization returns devid's I/O utilization in percent, when its node
// reports one.
func (m *monitor) utilization(devid int) (float64, bool) {
	v, err := strconv.ParseFloat(m.devices().obs[devid].utilization, 64)
	return v, err == nil
}

// space returns devid's space in MB and the name of its file system as
// its last usage report gave them; ok is false before the first.
func (m *monitor) space(devid int) (totalMB, usedMB int64, filesystem string, ok bool) {
	o := m.devices().obs[devid]
	return o.totalMB, o.usedMB, o.filesystem, o.haveUsage
}
