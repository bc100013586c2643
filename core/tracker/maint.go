package tracker

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

func (s *Server) cmdSleep(ctx context.Context, c *call) (protocol.Args, error) {
	d, ok := intArg(c.args, "duration", 10)
	if !ok || d < 0 {
		return nil, protocol.Errf("bad_params", "duration must be a number of seconds")
	}
	d = min(d, 25) // stay under the query timeout
	select {
	case <-time.After(time.Duration(d) * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, nil
}

func (s *Server) cmdClearCache(ctx context.Context, c *call) (protocol.Args, error) {
	if err := s.changed(ctx); err != nil {
		return nil, err
	}
	out := protocol.Args{}
	for k, v := range c.args {
		if k != "callid" {
			out[k] = v
		}
	}
	return out, nil
}

func (s *Server) cmdMonitorRound(ctx context.Context, c *call) (protocol.Args, error) {
	return nil, s.changed(ctx)
}

func (s *Server) cmdReplicateNow(ctx context.Context, c *call) (protocol.Args, error) {
	n, err := s.store().ReplicateNow(ctx)
	if err != nil {
		return nil, err
	}
	kick(s.jobs.replKick)
	return protocol.Args{"count": i64toa(n)}, nil
}

// settingValue canonicalises a server setting, per the original's rules;
// del is true when the setting is to be removed.
func settingValue(key, value string, present bool) (v string, del bool, err error) {
	if !present {
		return "", true, nil
	}
	switch {
	case strings.HasPrefix(key, "slave_"):
		return value, value == "", nil
	case key == "skip_devcount" || key == "skip_mkcol" || key == "case_sensitive_list_keys":
		l := strings.ToLower(value)
		switch {
		case l == "" || l == "0" || strings.HasPrefix(l, "f") || l == "off" || strings.HasPrefix(l, "n"):
			return "0", false, nil
		case l == "1" || strings.HasPrefix(l, "t") || l == "on" || strings.HasPrefix(l, "y"):
			return "1", false, nil
		}
		return "", false, protocol.Errf("invalid_format", "%s must be a boolean (1/0, on/off, yes/no)", key)
	case key == "memcache_servers" || key == "network_zones" || strings.HasPrefix(key, "queue_"):
		return value, false, nil
	case key == "memcache_ttl" || key == "internal_queue_limit":
		if value == "" {
			return "0", false, nil
		}
		if _, err := strconv.ParseUint(value, 10, 64); err != nil {
			return "", false, protocol.Errf("invalid_format", "%s must be a whole number", key)
		}
		return value, false, nil
	case strings.HasPrefix(key, "zone_"):
		for _, m := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' }) {
			if _, _, err := net.ParseCIDR(m); err != nil {
				return "", false, protocol.Errf("invalid_format", "%q is not a netmask (want e.g. 10.0.0.0/8)", m)
			}
		}
		return value, false, nil
	case strings.HasPrefix(key, orphanSweepPrefix):
		// When the device was last swept (Unix seconds): 0 has it swept
		// at the next look.
		if _, err := strconv.Atoi(strings.TrimPrefix(key, orphanSweepPrefix)); err != nil {
			return "", false, errf("not_writable")
		}
		if _, err := strconv.ParseUint(value, 10, 64); err != nil {
			return "", false, protocol.Errf("invalid_format", "%s must be a Unix time (0: sweep the device at the next look)", key)
		}
		return value, false, nil
	case key == "fsck_checksum":
		switch value {
		case "off", "MD5", "SHA-1":
			return value, false, nil
		case "class":
			return "", true, nil
		}
		return "", false, protocol.Errf("invalid_format", "fsck_checksum must be off, class, MD5 or SHA-1")
	}
	return "", false, errf("not_writable")
}

func (s *Server) cmdSetServerSetting(ctx context.Context, c *call) (protocol.Args, error) {
	key := c.args.Get("key")
	if key == "" {
		return nil, errf("no_key")
	}
	v, del, err := settingValue(key, c.args.Get("value"), c.args.Has("value"))
	if err != nil {
		return nil, err
	}
	if del {
		err = s.store().DeleteSetting(ctx, key)
	} else {
		err = s.store().SetSetting(ctx, key, v)
	}
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(key, orphanSweepPrefix) {
		kick(s.jobs.orphanKick)
	}
	if strings.HasPrefix(key, "slave_") {
		cur, _, _ := s.store().Setting(ctx, "slave_version")
		n, _ := strconv.Atoi(cur)
		if err := s.store().SetSetting(ctx, "slave_version", itoa(n+1)); err != nil {
			return nil, err
		}
	}
	return nil, s.mon.refresh(ctx)
}

func (s *Server) cmdServerSetting(ctx context.Context, c *call) (protocol.Args, error) {
	key := c.args.Get("key")
	if key == "" {
		return nil, errf("no_key")
	}
	v, _, err := s.store().Setting(ctx, key)
	if err != nil {
		return nil, err
	}
	return protocol.Args{"key": key, "value": v}, nil
}

func (s *Server) cmdServerSettings(ctx context.Context, c *call) (protocol.Args, error) {
	all, err := s.store().Settings(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range all {
		if strings.HasPrefix(k, "fsck_") && k != "fsck_checksum" {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	out := protocol.Args{"key_count": itoa(len(keys))}
	for i, k := range keys {
		out["key_"+itoa(i+1)] = k
		out["value_"+itoa(i+1)] = all[k]
	}
	return out, nil
}
