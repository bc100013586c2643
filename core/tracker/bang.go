package tracker

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// jobNames are the original's worker types, for !jobs and !want.
var jobNames = []string{"delete", "fsck", "job_master", "monitor", "queryworker", "reaper", "replicate"}

// admin answers a `!` line with zero or more lines and a "." terminator.
// watch toggles the connection's `!watch` subscription and reports
// whether it is subscribed now.
func (s *Server) admin(line string, ip net.IP, adminConn bool, watch func() bool) string {
	fields := strings.Fields(line[1:])
	word := ""
	if len(fields) > 0 {
		word = strings.ToLower(fields[0])
	}
	var out []string
	switch {
	case !s.adminAllowed(ip, adminConn):
		s.log.Warn("tracker: refused a ! command from a client outside the admin networks", "client", ip.String(), "command", word)
		out = []string{"ERROR: admin commands are not allowed from " + ip.String() + " on this address (see admin_networks and admin_listen)"}
	case word == "version":
		out = []string{Version}
	case word == "stats":
		out = s.statsLines()
	case word == "jobs":
		for _, j := range jobNames {
			n := s.jobCount(j)
			out = append(out, fmt.Sprintf("%s count %d", j, n), fmt.Sprintf("%s desired %d", j, n), fmt.Sprintf("%s pids %d", j, os.Getpid()))
		}
	case word == "want":
		out = []string{s.bangWant(fields[1:])}
	case word == "watch":
		if watch() {
			out = []string{"Added you to watcher list."}
		} else {
			out = []string{"Removed you from watcher list."}
		}
	case word == "to":
		// The original relays the message to its worker processes; this
		// tracker has none (its jobs are goroutines): refused, not faked.
		out = []string{"ERROR: this tracker has no worker processes to send messages to; change worker counts with !want"}
	case word == "queue" || strings.HasPrefix(word, "pend"):
		out = nil
	case word == "recent":
		s.mu.Lock()
		for _, q := range s.recent {
			out = append(out, q.String())
		}
		s.mu.Unlock()
	case word == "shutdown":
		s.log.Warn("tracker: !shutdown received", "client", ip.String())
		if s.cfg.OnShutdown != nil {
			go s.cfg.OnShutdown()
		}
		out = []string{"Shutting down."}
	default:
		out = strings.Split(helpText, "\n")
	}
	var b strings.Builder
	for _, l := range out {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.String()
}

const helpText = `Admin commands:
  !version              server version
  !stats                counters
  !jobs                 job types and their counts
  !want <count> <job>   set the number of workers of a job type
  !to <job> <message>   (refused: no worker processes here)
  !queue                pending queries
  !recent               the last 50 queries and their times
  !watch                follow this tracker's log on this connection (again: stop)
  !shutdown             stop this tracker`

// jobCount is how many workers of a type this tracker runs.
func (s *Server) jobCount(job string) int {
	if n, ok := s.jobs.workers[job]; ok {
		return int(n.Load())
	}
	switch job {
	case "queryworker":
		return 0 // no fixed pool: each connection is served as it comes
	case "job_master":
		if s.cfg.NoJobs {
			return 0
		}
	}
	return 1
}

func (s *Server) bangWant(args []string) string {
	if len(args) != 2 {
		return "ERROR: usage: !want <count> <jobtype>"
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return "ERROR: count must be a number"
	}
	job := args[1]
	ok := false
	for _, j := range jobNames {
		ok = ok || j == job
	}
	if !ok {
		return "ERROR: Invalid class '" + job + "'"
	}
	if n > 500 {
		n = 500
	}
	w, ok := s.jobs.workers[job]
	if !ok {
		// These are not pools of workers here: queries are served as
		// they come, and the monitor, reaper and job master are one
		// goroutine each (job_master: --job_master at start).
		return "ERROR: the number of " + job + " workers is fixed in this tracker; only replicate, delete and fsck can be changed"
	}
	w.Store(int32(n))
	for _, k := range []chan struct{}{s.jobs.replKick, s.jobs.delKick, s.jobs.fsckKick, s.jobs.rebalKick} {
		kick(k)
	}
	s.log.Info("tracker: worker count changed", "job", job, "workers", n)
	return fmt.Sprintf("Now desiring %d children doing '%s'.", n, job)
}

// statsLines renders !stats: the original's fixed lines, then counters.
func (s *Server) statsLines() []string {
	// The original's first lines. Queries are not queued for a pool of
	// workers here but served as they arrive: none pending, no worker idle.
	out := []string{
		fmt.Sprintf("uptime %d", int(time.Since(s.started).Seconds())),
		"pending_queries 0",
		fmt.Sprintf("processing_queries %d", s.stats.Processing.Load()),
		"bored_queryworkers 0",
	}
	counters := map[string]int64{
		"queries":            s.stats.Queries.Load(),
		"query_errors":       s.stats.Errors.Load(),
		"client_connections": s.stats.Conns.Load(),
		"replicated":         s.stats.Replicated.Load(),
		"replicate_failures": s.stats.ReplicateFailures.Load(),
		"replicated_bytes":   s.stats.ReplicatedBytes.Load(),
		"deleted":            s.stats.Deleted.Load(),
		"fsck_checked":       s.stats.FsckChecked.Load(),
	}
	if s.mon != nil {
		counters["monitor_rounds"] = s.mon.roundNo()
	}
	names := make([]string, 0, len(counters))
	for k := range counters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, fmt.Sprintf("%s %d", k, counters[k]))
	}
	return out
}
