package storage

import (
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry returns a Prometheus registry with the node's counters and
// each device's space.
func (s *Server) Registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	for _, c := range []struct {
		name, help string
		v          func() int64
	}{
		{"mogstored_gets_total", "GET requests.", s.stats.Gets.Load},
		{"mogstored_heads_total", "HEAD requests.", s.stats.Heads.Load},
		{"mogstored_puts_total", "PUT requests.", s.stats.Puts.Load},
		{"mogstored_fsyncs_total", "fsyncs of files and directories written (none with --fsync=false).", s.stats.Syncs.Load},
		{"mogstored_deletes_total", "Files deleted (a DELETE each, or in batches).", s.stats.Deletes.Load},
		{"mogstored_delete_batches_total", "Requests deleting many deleted fids' files at once.", s.stats.DeleteBatches.Load},
		{"mogstored_bytes_in_total", "Bytes received in PUT bodies.", s.stats.BytesIn.Load},
		{"mogstored_bytes_out_total", "Bytes sent in GET bodies.", s.stats.BytesOut.Load},
		{"mogstored_errors_total", "Requests that failed on the node's side.", s.stats.Errors.Load},
	} {
		v := c.v
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(v()) }))
	}
	r.MustRegister(&usageCollector{s})
	return r
}

type usageCollector struct{ s *Server }

var (
	freeDesc  = prometheus.NewDesc("mogstored_device_free_bytes", "Free space on a device.", []string{"device"}, nil)
	totalDesc = prometheus.NewDesc("mogstored_device_total_bytes", "Size of a device.", []string{"device"}, nil)
)

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- freeDesc; ch <- totalDesc }

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	devs, _ := c.s.Devices()
	for _, d := range devs {
		u, err := measure(filepath.Join(c.s.cfg.DocRoot, d))
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(d, "dev")
		ch <- prometheus.MustNewConstMetric(freeDesc, prometheus.GaugeValue, float64(u.Available)*1024, name)
		ch <- prometheus.MustNewConstMetric(totalDesc, prometheus.GaugeValue, float64(u.Total)*1024, name)
	}
}
