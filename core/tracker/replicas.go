package tracker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// Read replicas, configured as the original does with server settings:
// slave_keys=k1,k2 and slave_<k>=<DSN>|<user>|<password>. get_paths and
// file_info read from a random healthy replica; a replica that fails is
// left alone for slave_dead_retry_timeout seconds (default 15) and the
// query goes to the master.

// replica is one read-only database.
type replica struct {
	key       string
	st        *store.Store
	deadUntil time.Time // guarded by replicas.mu
}

// replicas is the set of read replicas in use.
type replicas struct {
	mu      sync.Mutex // guards the fields below
	version string     // slave_version they were opened at
	list    []*replica
}

// refreshReplicas reopens the replicas when the slave_* settings changed.
func (s *Server) refreshReplicas(ctx context.Context, sn *snapshot) {
	version := sn.settings["slave_version"] + "/" + sn.settings["slave_keys"]
	s.replicas.mu.Lock()
	if version == s.replicas.version {
		s.replicas.mu.Unlock()
		return
	}
	old := s.replicas.list
	s.replicas.list, s.replicas.version = nil, version
	s.replicas.mu.Unlock()
	for _, r := range old {
		r.st.Close()
	}
	var list []*replica
	for _, k := range strings.Split(sn.settings["slave_keys"], ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		parts := strings.SplitN(sn.settings["slave_"+k], "|", 3)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := store.Open(octx, store.Config{DSN: parts[0], User: parts[1], Pass: parts[2], ReadOnly: true, Logger: s.log})
		cancel()
		if err != nil {
			s.log.Warn("tracker: read replica unusable; reads go to the master", "slave", k, "err", err)
			continue
		}
		list = append(list, &replica{key: k, st: st})
	}
	s.replicas.mu.Lock()
	s.replicas.list = list
	s.replicas.mu.Unlock()
	if len(list) > 0 {
		s.log.Info("tracker: reading from replicas", "count", len(list))
	}
}

// fileReader is what may be read from a replica.
type fileReader interface {
	FileAndDevids(ctx context.Context, dmid int, key string) (core.File, []int, error)
	FileAndMeta(ctx context.Context, dmid int, key string) (core.File, []int, map[string]string, error)
}

// readFrom runs a read-only query on a healthy replica, falling back to
// the master when there is none or the replica fails.
func (s *Server) readFrom(ctx context.Context, q func(fileReader) error) error {
	s.replicas.mu.Lock()
	var healthy []*replica
	now := time.Now()
	for _, r := range s.replicas.list {
		if now.After(r.deadUntil) {
			healthy = append(healthy, r)
		}
	}
	s.replicas.mu.Unlock()
	if len(healthy) > 0 {
		r := healthy[rand.IntN(len(healthy))]
		err := q(r.st)
		if err == nil || errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
			return err
		}
		retry := s.mon.snap().settingDefault("slave_dead_retry_timeout", 15)
		s.log.Warn("tracker: read replica failed; using the master", "slave", r.key, "retry_in_seconds", retry, "err", err)
		s.replicas.mu.Lock()
		r.deadUntil = time.Now().Add(time.Duration(retry) * time.Second)
		s.replicas.mu.Unlock()
	}
	return q(s.store())
}
