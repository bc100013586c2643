package tracker

import (
	"context"
	"errors"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// changed re-reads the configuration after an admin change and waits for
// a monitor round, so that the change is in effect when the reply leaves.
func (s *Server) changed(ctx context.Context) error {
	if err := s.mon.refresh(ctx); err != nil {
		return err
	}
	return s.mon.waitRound(ctx, true)
}

func (s *Server) cmdCreateDomain(ctx context.Context, c *call) (protocol.Args, error) {
	name := c.args.Get("domain")
	if name == "" {
		return nil, errf("no_domain")
	}
	if len(name) > 255 {
		return nil, protocol.Errf("bad_params", "domain name longer than 255 bytes")
	}
	if _, err := s.store().CreateDomain(ctx, name); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errf("domain_exists")
		}
		return nil, err
	}
	return protocol.Args{"domain": name}, s.changed(ctx)
}

func (s *Server) cmdDeleteDomain(ctx context.Context, c *call) (protocol.Args, error) {
	name := c.args.Get("domain")
	if name == "" {
		return nil, errf("no_domain")
	}
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	sn := s.mon.snap()
	dom, ok := sn.domains[name]
	if !ok {
		return nil, errf("domain_not_found")
	}
	has, err := s.store().DomainHasFiles(ctx, dom.ID)
	if err != nil {
		return nil, err
	}
	if has {
		return nil, errf("domain_has_files")
	}
	if len(sn.classes[dom.ID]) > 1 {
		return nil, errf("domain_has_classes")
	}
	if err := s.store().DeleteDomain(ctx, dom.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf("domain_not_found")
		}
		return nil, err
	}
	return protocol.Args{"domain": name}, s.changed(ctx)
}

func (s *Server) cmdGetDomains(ctx context.Context, c *call) (protocol.Args, error) {
	sn := s.mon.snap()
	doms := make([]core.Domain, 0, len(sn.domains))
	for _, d := range sn.domainsByID {
		doms = append(doms, d)
	}
	sort.Slice(doms, func(i, j int) bool { return doms[i].ID < doms[j].ID })
	out := protocol.Args{"domains": itoa(len(doms))}
	for i, d := range doms {
		p := "domain" + itoa(i+1)
		out[p] = d.Name
		cls := sn.classes[d.ID]
		out[p+"classes"] = itoa(len(cls))
		for j, c := range cls {
			q := p + "class" + itoa(j+1)
			out[q+"name"] = c.Name
			out[q+"mindevcount"] = itoa(c.MinDevCount)
			out[q+"replpolicy"] = c.Policy()
			out[q+"hashtype"] = core.HashName(c.HashType)
		}
	}
	return out, nil
}

var policyRE = regexp.MustCompile(`^\s*([\w:]+)\s*\(\s*(\d*)\s*\)\s*$`)

// validPolicy checks a replication policy string.
func validPolicy(p string) error {
	m := policyRE.FindStringSubmatch(p)
	if m == nil {
		return protocol.Errf("invalid_replpolicy", "Failed to parse replication policy %q: want Name() or Name(N)", p)
	}
	switch strings.TrimPrefix(m[1], "MogileFS::ReplicationPolicy::") {
	case "MultipleHosts", "MultipleDevices":
		return nil
	}
	return protocol.Errf("invalid_replpolicy", "Unknown replication policy %q (known: MultipleHosts, MultipleDevices)", m[1])
}

// classArgs validates create_class/update_class arguments.
func (s *Server) classArgs(c *call, update bool) (core.Domain, core.Class, bool, error) {
	var cls core.Class
	dname := c.args.Get("domain")
	if dname == "" {
		return core.Domain{}, cls, false, errf("no_domain")
	}
	cls.Name = c.args.Get("class")
	if cls.Name == "" {
		return core.Domain{}, cls, false, errf("no_class")
	}
	if len(cls.Name) > 50 {
		return core.Domain{}, cls, false, protocol.Errf("bad_params", "class name longer than 50 bytes")
	}
	mdcSet := c.args.Get("mindevcount") != ""
	if mdcSet || !update {
		n, err := strconv.Atoi(c.args.Get("mindevcount"))
		if err != nil || n < 1 || n > 255 {
			return core.Domain{}, cls, false, errf("invalid_mindevcount")
		}
		cls.MinDevCount = n
	}
	if p := c.args.Get("replpolicy"); p != "" {
		if err := validPolicy(p); err != nil {
			return core.Domain{}, cls, false, err
		}
		cls.ReplPolicy = p
	}
	cls.HashType = -1
	if c.args.Has("hashtype") {
		ht, ok := core.HashType(c.args.Get("hashtype"))
		if !ok {
			return core.Domain{}, cls, false, errf("invalid_hashtype")
		}
		cls.HashType = ht
	}
	dom, ok := s.mon.snap().domains[dname]
	if !ok {
		return core.Domain{}, cls, false, errf("domain_not_found")
	}
	cls.DomainID = dom.ID
	return dom, cls, mdcSet, nil
}

func (s *Server) cmdCreateClass(ctx context.Context, c *call) (protocol.Args, error) {
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	dom, cls, _, err := s.classArgs(c, false)
	if err != nil {
		return nil, err
	}
	if cls.HashType < 0 {
		cls.HashType = core.HashNone
	}
	if _, ok := s.mon.snap().class(dom.ID, cls.Name); ok && cls.Name != "default" {
		return nil, errf("class_exists")
	}
	if cls.Name == "default" {
		// The implicit default class exists already; creating it stores it.
		if err := s.upsertDefault(ctx, cls); err != nil {
			return nil, err
		}
	} else if _, err := s.store().CreateClass(ctx, cls); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errf("class_exists")
		}
		return nil, err
	}
	return protocol.Args{"domain": dom.Name, "class": cls.Name, "mindevcount": itoa(cls.MinDevCount)}, s.changed(ctx)
}

// upsertDefault stores the default class row of a domain.
func (s *Server) upsertDefault(ctx context.Context, cls core.Class) error {
	cls.ID = 0
	err := s.store().UpdateClass(ctx, cls)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.store().CreateClass(ctx, cls)
	}
	return err
}

func (s *Server) cmdUpdateClass(ctx context.Context, c *call) (protocol.Args, error) {
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	dom, cls, mdcSet, err := s.classArgs(c, true)
	if err != nil {
		return nil, err
	}
	old, ok := s.mon.snap().class(dom.ID, cls.Name)
	if !ok {
		return nil, errf("class_not_found")
	}
	cls.ID = old.ID
	if !mdcSet {
		cls.MinDevCount = old.MinDevCount
	}
	if cls.ReplPolicy == "" {
		cls.ReplPolicy = old.ReplPolicy
	}
	if cls.HashType < 0 {
		cls.HashType = old.HashType
	}
	if cls.ID == 0 {
		err = s.upsertDefault(ctx, cls)
	} else {
		err = s.store().UpdateClass(ctx, cls)
	}
	if err != nil {
		return nil, err
	}
	return protocol.Args{"domain": dom.Name, "class": cls.Name, "mindevcount": itoa(cls.MinDevCount)}, s.changed(ctx)
}

func (s *Server) cmdDeleteClass(ctx context.Context, c *call) (protocol.Args, error) {
	dname, cname := c.args.Get("domain"), c.args.Get("class")
	if dname == "" {
		return nil, errf("no_domain")
	}
	if cname == "" {
		return nil, errf("no_class")
	}
	if cname == "default" {
		return nil, errf("nodel_default_class")
	}
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	sn := s.mon.snap()
	dom, ok := sn.domains[dname]
	if !ok {
		return nil, errf("domain_not_found")
	}
	cls, ok := sn.class(dom.ID, cname)
	if !ok {
		return nil, errf("class_not_found")
	}
	has, err := s.store().ClassHasFiles(ctx, dom.ID, cls.ID)
	if err != nil {
		return nil, err
	}
	if has {
		return nil, errf("class_has_files")
	}
	if err := s.store().DeleteClass(ctx, dom.ID, cls.ID); err != nil {
		return nil, err
	}
	return protocol.Args{"domain": dname, "class": cname}, s.changed(ctx)
}

// hostFields applies the optional host arguments to h.
func hostFields(a protocol.Args, h *core.Host) error {
	if a.Has("ip") && a.Get("ip") != "" {
		if net.ParseIP(a.Get("ip")) == nil {
			return protocol.Errf("bad_params", "ip %q is not an IP address", a.Get("ip"))
		}
		h.IP = a.Get("ip")
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"port", &h.HTTPPort}, {"getport", &h.HTTPGetPort}} {
		if v := a.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return protocol.Errf("bad_params", "%s %q is not a port number", f.name, v)
			}
			*f.dst = n
		}
	}
	if a.Has("altip") {
		if v := a.Get("altip"); v != "" && net.ParseIP(v) == nil {
			return protocol.Errf("bad_params", "altip %q is not an IP address", v)
		}
		h.AltIP = a.Get("altip")
	}
	if a.Has("altmask") {
		if v := a.Get("altmask"); v != "" {
			if _, _, err := net.ParseCIDR(v); err != nil {
				return protocol.Errf("bad_params", "altmask %q is not a network (want e.g. 10.0.0.0/8)", v)
			}
		}
		h.AltMask = a.Get("altmask")
	}
	if v := a.Get("status"); v != "" {
		if !core.ValidHostState(v) {
			return errf("unknown_state")
		}
		h.Status = v
	}
	return nil
}

func (s *Server) cmdCreateHost(ctx context.Context, c *call) (protocol.Args, error) {
	a := c.args
	name := a.Get("host")
	if name == "" {
		return nil, errf("no_host")
	}
	if len(name) > 40 {
		return nil, protocol.Errf("bad_params", "host name longer than 40 bytes")
	}
	if a.Get("ip") == "" {
		return nil, errf("no_ip")
	}
	if a.Get("port") == "" {
		return nil, errf("no_port")
	}
	h := core.Host{Name: name, Status: core.HostDown}
	if err := hostFields(a, &h); err != nil {
		return nil, err
	}
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	if _, ok := s.mon.snap().hostsByName[name]; ok {
		return nil, errf("host_exists")
	}
	id, err := s.store().CreateHost(ctx, h)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return nil, errf("dup")
	case errors.Is(err, store.ErrExists):
		return nil, errf("host_exists")
	case err != nil:
		return nil, err
	}
	return protocol.Args{"hostid": itoa(id), "hostname": name}, s.changed(ctx)
}

func (s *Server) cmdUpdateHost(ctx context.Context, c *call) (protocol.Args, error) {
	name := c.args.Get("host")
	if name == "" {
		return nil, errf("no_host")
	}
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	h, ok := s.mon.snap().hostsByName[name]
	if !ok {
		return nil, errf("host_not_found")
	}
	if err := hostFields(c.args, &h); err != nil {
		return nil, err
	}
	if err := s.store().UpdateHost(ctx, h); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errf("dup")
		}
		return nil, err
	}
	return protocol.Args{"hostid": itoa(h.ID), "hostname": name}, s.changed(ctx)
}

func (s *Server) cmdDeleteHost(ctx context.Context, c *call) (protocol.Args, error) {
	name := c.args.Get("host")
	if name == "" {
		return nil, errf("no_host")
	}
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	h, ok := s.mon.snap().hostsByName[name]
	if !ok {
		return nil, errf("unknown_host")
	}
	if err := s.store().DeleteHost(ctx, h.ID); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errf("host_not_empty")
		}
		return nil, err
	}
	return nil, s.changed(ctx)
}

func (s *Server) cmdGetHosts(ctx context.Context, c *call) (protocol.Args, error) {
	sn := s.mon.snap()
	filter, _ := intArg(c.args, "hostid", 0)
	var ids []int
	for id := range sn.hosts {
		if filter == 0 || int64(id) == filter {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	out := protocol.Args{"hosts": itoa(len(ids))}
	for i, id := range ids {
		h := sn.hosts[id]
		p := "host" + itoa(i+1) + "_"
		out[p+"hostid"], out[p+"status"], out[p+"hostname"], out[p+"hostip"] = itoa(h.ID), h.Status, h.Name, h.IP
		out[p+"http_port"], out[p+"http_get_port"] = itoa(h.HTTPPort), ""
		if h.HTTPGetPort > 0 {
			out[p+"http_get_port"] = itoa(h.HTTPGetPort)
		}
		out[p+"altip"], out[p+"altmask"] = h.AltIP, h.AltMask
	}
	return out, nil
}

var devidRE = regexp.MustCompile(`^(?:dev)?(\d+)$`)

func (s *Server) cmdCreateDevice(ctx context.Context, c *call) (protocol.Args, error) {
	a := c.args
	if err := s.mon.refresh(ctx); err != nil {
		return nil, err
	}
	sn := s.mon.snap()
	var h core.Host
	switch {
	case a.Get("hostid") != "":
		id, _ := strconv.Atoi(a.Get("hostid"))
		var ok bool
		if h, ok = sn.hosts[id]; !ok {
			return nil, errf("unknown_hostid")
		}
	case a.Get("hostname") != "":
		var ok bool
		if h, ok = sn.hostsByName[a.Get("hostname")]; !ok {
			return nil, errf("unknown_host")
		}
	default:
		return nil, protocol.Errf("bad_args", "No hostid/hostname parameter")
	}
	m := devidRE.FindStringSubmatch(a.Get("devid"))
	if m == nil {
		return nil, errf("invalid_devid")
	}
	devid, err := strconv.Atoi(m[1])
	if err != nil || devid < 1 || devid > 16777215 {
		return nil, errf("invalid_devid")
	}
	state := a.Get("state")
	if state == "" {
		state = core.DevAlive
	}
	if !core.ValidDeviceState(state) {
		return nil, errf("invalid_state")
	}
	if err := s.store().CreateDevice(ctx, core.Device{ID: devid, HostID: h.ID, Status: state}); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errf("existing_devid")
		}
		return nil, err
	}
	return nil, s.changed(ctx)
}

func (s *Server) cmdGetDevices(ctx context.Context, c *call) (protocol.Args, error) {
	sn := s.mon.snap()
	filter, _ := intArg(c.args, "devid", 0)
	var ids []int
	for _, id := range sn.sortedDeviceIDs() {
		if filter == 0 || int64(id) == filter {
			ids = append(ids, id)
		}
	}
	out := protocol.Args{"devices": itoa(len(ids))}
	for i, id := range ids {
		d := sn.devices[id]
		p := "dev" + itoa(i+1) + "_"
		o, _ := s.mon.observed(id, d.HostID)
		out[p+"devid"], out[p+"hostid"], out[p+"status"], out[p+"weight"] = itoa(d.ID), itoa(d.HostID), d.Status, itoa(d.Weight)
		out[p+"mb_total"], out[p+"mb_used"], out[p+"mb_asof"], out[p+"mb_free"] = "", "", "", ""
		if d.MBTotal >= 0 {
			out[p+"mb_total"] = i64toa(d.MBTotal)
		}
		if d.MBUsed >= 0 {
			out[p+"mb_used"] = i64toa(d.MBUsed)
		}
		if d.MBAsOf > 0 {
			out[p+"mb_asof"] = i64toa(d.MBAsOf)
		}
		if f := d.MBFree(); f >= 0 {
			out[p+"mb_free"] = i64toa(f)
		}
		out[p+"observed_state"], out[p+"utilization"] = o.state, o.utilization
		out[p+"reject_bad_md5"] = "0"
		if o.rejectBadMD5 {
			out[p+"reject_bad_md5"] = "1"
		}
	}
	return out, nil
}

// deviceOfHost resolves the host and device arguments of set_state and
// set_weight.
func (s *Server) deviceOfHost(ctx context.Context, c *call) (core.Device, error) {
	hname, dv := c.args.Get("host"), c.args.Get("device")
	if hname == "" || dv == "" {
		return core.Device{}, errf("bad_params")
	}
	if err := s.mon.refresh(ctx); err != nil {
		return core.Device{}, err
	}
	sn := s.mon.snap()
	m := devidRE.FindStringSubmatch(dv)
	if m == nil {
		return core.Device{}, errf("no_device")
	}
	id, _ := strconv.Atoi(m[1])
	d, ok := sn.devices[id]
	if !ok {
		return core.Device{}, errf("no_device")
	}
	h, ok := sn.hostsByName[hname]
	if !ok || h.ID != d.HostID {
		return core.Device{}, errf("host_mismatch")
	}
	return d, nil
}

func (s *Server) cmdSetState(ctx context.Context, c *call) (protocol.Args, error) {
	state := c.args.Get("state")
	if !core.ValidDeviceState(state) {
		return nil, errf("bad_params")
	}
	d, err := s.deviceOfHost(ctx, c)
	if err != nil {
		return nil, err
	}
	if d.Status == core.DevDead && state == core.DevAlive {
		return nil, errf("state_too_high")
	}
	if d.Status != state {
		if err := s.store().SetDeviceState(ctx, d.ID, state); err != nil {
			return nil, err
		}
		s.log.Info("tracker: device state changed", "devid", d.ID, "from", d.Status, "to", state)
	}
	return nil, s.changed(ctx)
}

func (s *Server) cmdSetWeight(ctx context.Context, c *call) (protocol.Args, error) {
	w, err := strconv.Atoi(c.args.Get("weight"))
	if err != nil || w < 0 {
		return nil, errf("bad_params")
	}
	d, err := s.deviceOfHost(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.store().SetDeviceWeight(ctx, d.ID, w); err != nil {
		return nil, err
	}
	return nil, s.changed(ctx)
}

// cmdGetSpace (get_space, an extension) answers the cluster's space for
// df: the devices not dead, each disk counted once (devices that a node
// says share a file system, as in a test cluster on one machine), in MB.
func (s *Server) cmdGetSpace(ctx context.Context, c *call) (protocol.Args, error) {
	sn := s.mon.snap()
	type disk struct{ total, used int64 }
	disks := map[string]disk{}
	devices := 0
	for _, id := range sn.sortedDeviceIDs() {
		d := sn.devices[id]
		if d.Status == core.DevDead {
			continue
		}
		total, used, fsys, known := s.mon.space(d.ID)
		if !known {
			total, used = d.MBTotal, d.MBUsed
		}
		if total < 0 || used < 0 {
			continue
		}
		devices++
		key := fsys
		if key == "" {
			key = "dev" + itoa(d.ID)
		}
		disks[key] = disk{total, used}
	}
	var total, used int64
	for _, d := range disks {
		total, used = total+d.total, used+d.used
	}
	return protocol.Args{"total_mb": i64toa(total), "used_mb": i64toa(used), "devices": itoa(devices), "filesystems": itoa(len(disks))}, nil
}
