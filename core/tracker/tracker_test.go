package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

func TestParseUsage(t *testing.T) {
	u, err := parseUsage([]byte("available: 82412428\ndevice: /dev/vda        \ndisk: /var/mogdata/dev1\ntime: 1795769613\ntotal: 95501264\nuse: 14%\nused: 13088836\n"))
	if err != nil || u.total != 95501264 || u.used != 13088836 {
		t.Fatalf("parseUsage = %+v, %v", u, err)
	}
	if _, err := parseUsage([]byte("total: 0\nused: 0\n")); err == nil {
		t.Error("zero usage accepted")
	}
}

func TestWeightedOrder(t *testing.T) {
	items := []int{1, 2, 3, 0}
	first := map[int]int{}
	for i := 0; i < 20000; i++ {
		o := weightedOrder(items, func(x int) float64 { return float64(x) })
		if len(o) != 3 {
			t.Fatalf("weight-0 item kept: %v", o)
		}
		first[o[0]]++
	}
	// Expected shares 1/6, 2/6, 3/6.
	for x, want := range map[int]float64{1: 1.0 / 6, 2: 2.0 / 6, 3: 3.0 / 6} {
		if got := float64(first[x]) / 20000; math.Abs(got-want) > 0.03 {
			t.Errorf("item %d first %.3f of the time; want %.3f", x, got, want)
		}
	}
}

func TestPickSpread(t *testing.T) {
	devs := []core.Device{{ID: 1, HostID: 1}, {ID: 2, HostID: 1}, {ID: 3, HostID: 2}, {ID: 4, HostID: 3}}
	got := pickSpread(devs, 3)
	if fmt.Sprint(ids(got)) != "[1 3 4]" {
		t.Errorf("pickSpread = %v; want distinct hosts first", ids(got))
	}
	if got := pickSpread(devs[:2], 2); fmt.Sprint(ids(got)) != "[1 2]" {
		t.Errorf("pickSpread on one host = %v", ids(got))
	}
}

func ids(d []core.Device) []int {
	var out []int
	for _, x := range d {
		out = append(out, x.ID)
	}
	return out
}

func TestValidPolicy(t *testing.T) {
	for _, p := range []string{"MultipleHosts()", "MultipleHosts(3)", "MultipleDevices()", "MogileFS::ReplicationPolicy::MultipleHosts()"} {
		if err := validPolicy(p); err != nil {
			t.Errorf("validPolicy(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"Bogus()", "MultipleHosts", "MultipleHosts(x)", ""} {
		if err := validPolicy(p); err == nil {
			t.Errorf("validPolicy(%q) accepted", p)
		}
	}
	if n, c := parsePolicy("MultipleDevices(4)"); n != "MultipleDevices" || c != 4 {
		t.Errorf("parsePolicy = %q %d", n, c)
	}
}

func TestRebalancePolicy(t *testing.T) {
	p, err := parseRebalancePolicy("from_devices=1,2 to_hosts=3 limit_by=size limit=10g")
	if err != nil || p["from_devices"] != "1,2" || p["use_dest_devs"] != "all" {
		t.Fatalf("parse = %v, %v", p, err)
	}
	for _, bad := range []string{"nope=1", "limit_by=percent limit=5", "limit_by=count", "fid_age=middle", "from_devices=a"} {
		if _, err := parseRebalancePolicy(bad); err == nil {
			t.Errorf("policy %q accepted", bad)
		}
	}
}

func TestSettingValue(t *testing.T) {
	tests := []struct {
		key, value string
		want       string
		del, bad   bool
	}{
		{"skip_mkcol", "yes", "1", false, false},
		{"skip_mkcol", "off", "0", false, false},
		{"skip_mkcol", "maybe", "", false, true},
		{"memcache_ttl", "", "0", false, false},
		{"memcache_ttl", "1x", "", false, true},
		{"slave_keys", "", "", true, false},
		{"fsck_checksum", "class", "", true, false},
		{"fsck_checksum", "MD5", "MD5", false, false},
		{"zone_a", "10.0.0.0/8, 192.168.0.0/16", "10.0.0.0/8, 192.168.0.0/16", false, false},
		{"zone_a", "nonsense", "", false, true},
		{"schema_version", "18", "", false, true},
	}
	for _, tt := range tests {
		v, del, err := settingValue(tt.key, tt.value, true)
		if (err != nil) != tt.bad || v != tt.want || del != tt.del {
			t.Errorf("settingValue(%q, %q) = %q, %v, %v", tt.key, tt.value, v, del, err)
		}
	}
}

// Reads go first to the least busy disk: nodes report utilization with
// decimals ("12.50"), which used to be ignored (parsed as an integer), so
// every read ordering fell back to the weights.
func TestReadWeightUsesUtilization(t *testing.T) {
	s := newStarted(t, nil)
	defer s.Close(context.Background())
	sn := &snapshot{devices: map[int]core.Device{1: {ID: 1, Weight: 100}, 2: {ID: 2, Weight: 100}}}
	s.mon.mu.Lock()
	s.mon.obsLocked(1).utilization = "12.50"
	s.mon.obsLocked(2).utilization = "95.00"
	s.mon.publishLocked()
	s.mon.mu.Unlock()
	if w1, w2 := s.readWeight(sn, 1), s.readWeight(sn, 2); w1 != 89.5 || w2 != 7 {
		t.Errorf("read weights = %v, %v; want 89.5 (12.5%% busy) and 7 (95%% busy)", w1, w2)
	}
	sn.devices[3] = core.Device{ID: 3, Weight: 40}
	if w := s.readWeight(sn, 3); w != 40 {
		t.Errorf("a device without a report weighs %v; want its weight 40", w)
	}
}

// A round cut short by shutdown marks no device unreachable and logs no
// warning: the devices did nothing wrong (this used to fill the logs of
// every tracker stopped with "device unreachable ... context canceled").
func TestShutdownRoundMarksNothing(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	s := newStarted(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	defer s.Close(context.Background())
	s.mon.setState(1, obsWriteable)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.mon.probeHost(ctx, core.Host{ID: 1, Name: "h", IP: "127.0.0.1", HTTPPort: 1, Status: core.HostAlive}, []core.Device{{ID: 1, HostID: 1, Status: core.DevAlive}})
	if st := s.mon.state(1); st != obsWriteable {
		t.Errorf("device state after a cancelled probe = %q; want it unchanged", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() > 0 {
		t.Errorf("a cancelled probe logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// nosync=1 defers a change's durability, but not on a tracker playing the
// original, which has no sync to make it durable with.
func TestDurabilityOfNosync(t *testing.T) {
	ours, plain := &Server{}, &Server{cfg: Config{Plain: true}}
	for _, tc := range []struct {
		s    *Server
		args protocol.Args
		want store.Durability
	}{
		{ours, protocol.Args{"nosync": "1"}, store.Deferred},
		{ours, protocol.Args{}, store.Durable},
		{ours, protocol.Args{"nosync": "0"}, store.Durable},
		{plain, protocol.Args{"nosync": "1"}, store.Durable},
	} {
		if got := tc.s.durability(&call{args: tc.args}); got != tc.want {
			t.Errorf("plain=%v %v: %v, want %v", tc.s.cfg.Plain, tc.args, got, tc.want)
		}
	}
}
