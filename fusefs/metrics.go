package fusefs

import (
	"fmt"
	"net/http"
)

// MetricsHandler serves the mount's counters in the Prometheus text format.
func MetricsHandler(f *FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &f.Stats
		ah, am, dh, dm := f.CacheStats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, m := range []struct {
			name string
			v    int64
		}{
			{"mogmount_lookups_total", s.Lookups.Load()},
			{"mogmount_reads_total", s.Reads.Load()},
			{"mogmount_writes_total", s.Writes.Load()},
			{"mogmount_commits_total", s.Commits.Load()},
			{"mogmount_commit_errors_total", s.CommitErrors.Load()},
			{"mogmount_read_bytes_total", s.BytesRead.Load()},
			{"mogmount_written_bytes_total", s.BytesWritten.Load()},
			{"mogmount_spooled_files_total", s.Spooled.Load()},
			{"mogmount_spool_bytes", f.spoolUsed.Load()},
			{"mogmount_attr_cache_hits_total", ah},
			{"mogmount_attr_cache_misses_total", am},
			{"mogmount_dir_cache_hits_total", dh},
			{"mogmount_dir_cache_misses_total", dm},
		} {
			fmt.Fprintf(w, "%s %d\n", m.name, m.v)
		}
	})
}
