package tracker

import (
	"net"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// adminCommands change the cluster's configuration or control its jobs;
// with Config.AdminNetworks set, only clients in those networks may send
// them (and any "!" command).
var adminCommands = map[string]bool{
	"create_domain": true, "delete_domain": true, "create_class": true, "update_class": true, "delete_class": true,
	"create_host": true, "update_host": true, "delete_host": true, "create_device": true,
	"set_state": true, "set_weight": true, "set_server_setting": true,
	"fsck_start": true, "fsck_stop": true, "fsck_reset": true, "fsck_clearlog": true,
	"rebalance_set_policy": true, "rebalance_start": true, "rebalance_stop": true, "rebalance_reset": true,
	"replicate_now": true, "clear_cache": true, "do_monitor_round": true, "sleep": true, "test": true,
}

// adminAllowed reports whether a client may send admin commands on a
// connection (adminConn: it came in on an admin listener).
func (s *Server) adminAllowed(ip net.IP, adminConn bool) bool {
	if s.hasAdminListener.Load() && !adminConn {
		return false
	}
	return len(s.cfg.AdminNetworks) == 0 || core.InNetworks(s.cfg.AdminNetworks, ip)
}
