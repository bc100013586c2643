package fusefs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Registry returns a Prometheus registry with the mount's counters and
// cache hit rates.
func (f *FS) Registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	s := &f.Stats
	for _, c := range []struct {
		name, help string
		v          func() int64
	}{
		{"mogmount_lookups_total", "Name lookups.", s.Lookups.Load},
		{"mogmount_reads_total", "Read requests.", s.Reads.Load},
		{"mogmount_writes_total", "Write requests.", s.Writes.Load},
		{"mogmount_commits_total", "Files saved to the cluster.", s.Commits.Load},
		{"mogmount_commit_errors_total", "Saves that failed (the writer's close() got the error).", s.CommitErrors.Load},
		{"mogmount_read_bytes_total", "Bytes read.", s.BytesRead.Load},
		{"mogmount_written_bytes_total", "Bytes written.", s.BytesWritten.Load},
		{"mogmount_spooled_files_total", "Writes that went through a spool file.", s.Spooled.Load},
		{"mogmount_patched_files_total", "Files saved by patching them in place (edit_file).", s.Patched.Load},
	} {
		v := c.v
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(v()) }))
	}
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mogmount_spool_bytes", Help: "Bytes reserved by spool files."},
		func() float64 { return float64(f.spoolUsed.Load()) }))
	cache := func(name string, hm func() (int64, int64)) {
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mogmount_" + name + "_cache_hits_total", Help: "Hits of the " + name + " cache."},
			func() float64 { h, _ := hm(); return float64(h) }))
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mogmount_" + name + "_cache_misses_total", Help: "Misses of the " + name + " cache."},
			func() float64 { _, m := hm(); return float64(m) }))
	}
	cache("attr", f.attrs.Stats)
	cache("dir", f.dirs.Stats)
	cache("paths", f.paths.Stats)
	return r
}
