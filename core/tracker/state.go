package tracker

import (
	"context"
	"sort"
	"strconv"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// snapshot is an immutable copy of the cluster's configuration tables.
// It is replaced as a whole, never modified.
type snapshot struct {
	domains     map[string]core.Domain
	domainsByID map[int]core.Domain
	classes     map[int][]core.Class // dmid -> classes, default (id 0) first
	hosts       map[int]core.Host
	hostsByName map[string]core.Host
	devices     map[int]core.Device
	settings    map[string]string
	defaultMin  int // copies of a class deleted since its files were stored
}

// configReader reads the configuration tables.
type configReader interface {
	Domains(context.Context) ([]core.Domain, error)
	Classes(context.Context) ([]core.Class, error)
	Hosts(context.Context) ([]core.Host, error)
	Devices(context.Context) ([]core.Device, error)
	Settings(context.Context) (map[string]string, error)
}

// loadSnapshot reads the configuration tables from st; a domain without
// a stored default class gets one of defaultMinDevCount copies.
func loadSnapshot(ctx context.Context, st configReader, defaultMinDevCount int) (*snapshot, error) {
	doms, err := st.Domains(ctx)
	if err != nil {
		return nil, err
	}
	cls, err := st.Classes(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := st.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	settings, err := st.Settings(ctx)
	if err != nil {
		return nil, err
	}
	sn := &snapshot{
		domains:     map[string]core.Domain{},
		domainsByID: map[int]core.Domain{},
		classes:     map[int][]core.Class{},
		hosts:       map[int]core.Host{},
		hostsByName: map[string]core.Host{},
		devices:     map[int]core.Device{},
		settings:    settings,
		defaultMin:  defaultMinDevCount,
	}
	for _, d := range doms {
		sn.domains[d.Name] = d
		sn.domainsByID[d.ID] = d
	}
	stored := map[int]map[int]core.Class{}
	for _, c := range cls {
		if stored[c.DomainID] == nil {
			stored[c.DomainID] = map[int]core.Class{}
		}
		stored[c.DomainID][c.ID] = c
	}
	for _, d := range doms {
		def, ok := stored[d.ID][0]
		if !ok {
			def = core.Class{DomainID: d.ID, ID: 0, MinDevCount: defaultMinDevCount}
		}
		def.Name = "default"
		list := []core.Class{def}
		for id, c := range stored[d.ID] {
			if id != 0 {
				list = append(list, c)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		sn.classes[d.ID] = list
	}
	for _, h := range hosts {
		sn.hosts[h.ID] = h
		sn.hostsByName[h.Name] = h
	}
	for _, d := range devs {
		sn.devices[d.ID] = d
	}
	return sn, nil
}

// snap returns the current snapshot.
func (m *monitor) snap() *snapshot { return m.tables.Load() }

// snapFor returns the snapshot, re-read first when missing reports that
// it lacks what the caller looks for: a domain, class or device added
// through another tracker is known before this one's next round, since
// clients send one request to one tracker and the next to another.
// Callers that miss at once share one read: one that waited for another's
// read takes its result. A name nobody added costs one read of the
// configuration tables, as any request costs a query.
func (m *monitor) snapFor(ctx context.Context, missing func(*snapshot) bool) *snapshot {
	sn := m.snap()
	if !missing(sn) {
		return sn
	}
	m.missMu.Lock()
	defer m.missMu.Unlock()
	if now := m.snap(); now != sn {
		return now // re-read while this caller waited
	}
	if err := m.refresh(ctx); err != nil {
		m.log.Warn("tracker: cannot re-read the configuration", "err", err)
	}
	return m.snap()
}

// refresh re-reads the configuration tables now.
func (m *monitor) refresh(ctx context.Context) error {
	sn, err := loadSnapshot(ctx, m.db, m.cfg.DefaultMinDevCount)
	if err != nil {
		return err
	}
	m.tables.Store(sn)
	return nil
}

// class finds a class of a domain by name ("" and "default" are class 0).
func (sn *snapshot) class(dmid int, name string) (core.Class, bool) {
	if name == "" {
		name = "default"
	}
	for _, c := range sn.classes[dmid] {
		if c.Name == name {
			return c, true
		}
	}
	return core.Class{}, false
}

// classByID finds a class of a domain by id.
func (sn *snapshot) classByID(dmid, id int) (core.Class, bool) {
	for _, c := range sn.classes[dmid] {
		if c.ID == id {
			return c, true
		}
	}
	return core.Class{}, false
}

// classOf returns a file's class for replication decisions; a class
// deleted since the file was stored counts as the default one.
func (sn *snapshot) classOf(dmid, id int) core.Class {
	if c, ok := sn.classByID(dmid, id); ok {
		return c
	}
	return core.Class{MinDevCount: sn.defaultMin}
}

// settingDefault reads a positive numeric server setting, def when it
// is unset or not a positive number.
func (sn *snapshot) settingDefault(key string, def int64) int64 {
	if n, err := strconv.ParseInt(sn.settings[key], 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}

// sortedDeviceIDs returns every devid in ascending order.
func (sn *snapshot) sortedDeviceIDs() []int {
	ids := make([]int, 0, len(sn.devices))
	for id := range sn.devices {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// settingBool reads a boolean server setting.
func (sn *snapshot) settingBool(key string) bool {
	v := sn.settings[key]
	return v != "" && v != "0"
}
