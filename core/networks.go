package core

import (
	"fmt"
	"net"
	"strings"
)

// ParseNetworks parses a comma- or space-separated list of networks
// (10.0.0.0/8) or single addresses, as the access-control settings take.
func ParseNetworks(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !strings.Contains(f, "/") {
			ip := net.ParseIP(f)
			if ip == nil {
				return nil, fmt.Errorf("%q is neither a network nor an address", f)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			f = fmt.Sprintf("%s/%d", f, bits)
		}
		_, n, err := net.ParseCIDR(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network (want e.g. 10.0.0.0/8): %w", f, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// InNetworks reports whether ip is in one of nets.
func InNetworks(nets []*net.IPNet, ip net.IP) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
