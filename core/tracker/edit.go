package tracker

import (
	"context"
	"errors"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// cmdEditFile starts an edit of a stored file in place, as
// MogileFS::Client's edit_file drives it: the client MOVEs oldpath to
// newpath on the storage node, patches newpath with Content-Range PUTs,
// and create_closes the new fid under the key.
//
// The original hands out the file's own copy as oldpath and takes it off
// the old fid first, so an edit that never closes leaves the file with a
// copy fewer (none, for a class of one copy). Here the old fid keeps
// every copy until the new version is committed: the tracker has the
// node COPY the file (a hard link on our nodes) to a scratch fid, and
// hands out that scratch copy as oldpath. Both the scratch and the new
// fid are uploads: an edit abandoned is reaped like an upload never
// closed. Storage nodes without WebDAV COPY get a clear refusal.
func (s *Server) cmdEditFile(ctx context.Context, c *call) (protocol.Args, error) {
	f, devids, dom, sn, err := s.lookupKey(ctx, c, false)
	if err != nil {
		return nil, err
	}
	if err := s.mon.waitRound(ctx, false); err != nil {
		return nil, err
	}
	sn = s.mon.snap()
	var dev core.Device
	found := false
	for _, id := range weightedOrder(devids, func(id int) float64 { return s.readWeight(sn, id) }) {
		d, ok := sn.devices[id]
		if ok && s.mon.canRead(sn, d) && s.mon.canWrite(sn, d) {
			dev, found = d, true
			break
		}
	}
	if !found {
		return nil, protocol.Errf("no_devices", "No device holding %s can take writes now", c.args.Get("key"))
	}
	host := sn.hosts[dev.HostID]
	zoneAlt := c.args.Get("zone") == "alt"
	register := func(key string) (int64, error) {
		fid, err := s.store().RegisterTempfile(ctx, store.Tempfile{DomainID: dom.ID, Key: key, ClassID: f.ClassID, Devids: []int{dev.ID}}, s.minFID)
		if err == nil {
			s.mon.vivifyDirs(ctx, sn, dev, fid)
		}
		return fid, err
	}
	abandon := func(fids ...int64) {
		for _, fid := range fids {
			if err := s.store().AbandonUpload(context.WithoutCancel(ctx), fid, []int{dev.ID}, true); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Error("tracker: cannot queue an abandoned edit's upload for deletion", "fid", fid, "err", err)
			}
		}
		kick(s.jobs.delKick)
	}
	scratch, err := register("")
	if err != nil {
		return nil, err
	}
	newFID, err := register(f.Key)
	if err != nil {
		abandon(scratch)
		return nil, err
	}
	base := hostBase(host, nil, false, false)
	err = s.nodes.Copy(ctx, base+core.FIDPath(dev.ID, f.FID), base+core.FIDPath(dev.ID, scratch))
	if err != nil {
		abandon(scratch, newFID)
		if core.KindOf(err) == core.Unsupported {
			return nil, protocol.Errf("edit_unsupported", "The storage node %s cannot COPY (WebDAV); edit_file needs nodes that can: %v", host.Name, err)
		}
		return nil, protocol.Errf("edit_failed", "Cannot copy the file on device %d: %v", dev.ID, err)
	}
	return protocol.Args{
		"oldpath": fidURL(host, dev.ID, scratch, c.clientIP, zoneAlt, false),
		"newpath": fidURL(host, dev.ID, newFID, c.clientIP, zoneAlt, false),
		"fid":     i64toa(newFID),
		"devid":   itoa(dev.ID),
		"class":   itoa(f.ClassID),
	}, nil
}
