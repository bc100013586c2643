package tracker

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// metrics are the tracker's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec   // by command and result code
	latency  *prometheus.HistogramVec // by command
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mogilefs_tracker_requests_total",
			Help: "Tracker protocol requests, by command and result (ok or the ERR code).",
		}, []string{"command", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mogilefs_tracker_request_seconds",
			Help:    "Time to answer a tracker request, by command.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"command"}),
	}
}

// observe records one answered request.
func (m *metrics) observe(cmd, code string, d time.Duration) {
	m.requests.WithLabelValues(cmd, code).Inc()
	m.latency.WithLabelValues(cmd).Observe(d.Seconds())
}

// Registry returns a Prometheus registry with every series of this
// tracker: requests and latencies, job counters, queue depths, and the
// state and space of every device as this tracker sees them.
func (s *Server) Registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(s.metrics.requests, s.metrics.latency)
	counter := func(name, help string, f func() float64) {
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	counter("mogilefs_tracker_replicated_total", "Files brought to their class's copies.", func() float64 { return float64(s.stats.Replicated.Load()) })
	counter("mogilefs_tracker_replicate_failures_total", "Replication attempts that failed and were rescheduled.", func() float64 { return float64(s.stats.ReplicateFailures.Load()) })
	counter("mogilefs_tracker_replicated_bytes_total", "Bytes copied between storage nodes.", func() float64 { return float64(s.stats.ReplicatedBytes.Load()) })
	counter("mogilefs_tracker_deleted_total", "Deleted files whose bytes were removed.", func() float64 { return float64(s.stats.Deleted.Load()) })
	counter("mogilefs_tracker_delete_wait_seconds_total", "Time the deletion job waited for bursts of client requests to end (--delete_lag).", func() float64 {
		return time.Duration(s.stats.DeleteWaitNanos.Load()).Seconds()
	})
	counter("mogilefs_tracker_fsck_checked_total", "Files checked by fsck.", func() float64 { return float64(s.stats.FsckChecked.Load()) })
	counter("mogilefs_tracker_orphans_total", "Fid files on storage nodes that the orphan sweep found tied to their device by no database row (then removed as strays).", func() float64 { return float64(s.stats.Orphans.Load()) })
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mogilefs_tracker_connections", Help: "Open client connections."},
		func() float64 { return float64(s.stats.Conns.Load()) }))
	r.MustRegister(&stateCollector{s: s})
	return r
}

// stateCollector reads queue depths from the database and device state
// from the tracker's snapshot at scrape time.
type stateCollector struct{ s *Server }

var (
	queueDesc    = prometheus.NewDesc("mogilefs_queue_length", "Rows in a work queue (due now or later).", []string{"queue"}, nil)
	devFreeDesc  = prometheus.NewDesc("mogilefs_device_free_bytes", "Free space of a device, from its usage file.", []string{"devid", "host", "status"}, nil)
	devTotalDesc = prometheus.NewDesc("mogilefs_device_total_bytes", "Size of a device.", []string{"devid", "host", "status"}, nil)
	devUpDesc    = prometheus.NewDesc("mogilefs_device_writeable", "1 when the monitor observes the device writeable, 0.5 readable, 0 unreachable.", []string{"devid", "host", "status"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- devFreeDesc
	ch <- devTotalDesc
	ch <- devUpDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, q := range map[string]store.Queue{"replicate": store.ReplicateQueue, "delete": store.DeleteQueue, "fsck": store.FsckQueue, "rebalance": store.RebalanceQueue} {
		if n, err := c.s.store().QueueLength(ctx, q); err == nil {
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), name)
		}
	}
	sn := c.s.mon.snap()
	for _, id := range sn.sortedDeviceIDs() {
		d := sn.devices[id]
		labels := []string{strconv.Itoa(id), sn.hosts[d.HostID].Name, d.Status}
		if d.MBTotal >= 0 {
			ch <- prometheus.MustNewConstMetric(devTotalDesc, prometheus.GaugeValue, float64(d.MBTotal)*(1<<20), labels...)
		}
		if f := d.MBFree(); f >= 0 {
			ch <- prometheus.MustNewConstMetric(devFreeDesc, prometheus.GaugeValue, float64(f)*(1<<20), labels...)
		}
		if c.s.mon != nil {
			o, up := c.s.mon.observed(id, d.HostID)
			v := 0.0
			switch {
			case up && o.state == obsWriteable:
				v = 1
			case up && o.state == obsReadable:
				v = 0.5
			}
			ch <- prometheus.MustNewConstMetric(devUpDesc, prometheus.GaugeValue, v, labels...)
		}
	}
}
