package tracker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// checkKey refuses a key longer than the database's dkey columns take
// (read at start: 255 on the original's schema, 1,024 on ours).
func (s *Server) checkKey(key string) error {
	if len(key) > s.keyLimit {
		return protocol.Errf("invalid_key", "key is %d bytes long; the most this database stores is %d (mogilefsd widen-keys raises it to %d)", len(key), s.keyLimit, store.WideKeyBytes)
	}
	return nil
}

// cmdGetLimits (get_limits, an extension) tells clients the tracker's
// limits: key_bytes, the longest key.
func (s *Server) cmdGetLimits(ctx context.Context, c *call) (protocol.Args, error) {
	return protocol.Args{"key_bytes": itoa(s.keyLimit)}, nil
}

func (s *Server) cmdCreateOpen(ctx context.Context, c *call) (protocol.Args, error) {
	dom, sn, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	key := c.args.Get("key")
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	cls, ok := sn.class(dom.ID, c.args.Get("class"))
	if !ok {
		return nil, errf("unreg_class")
	}
	fid, ok := intArg(c.args, "fid", 0)
	if !ok || fid < 0 {
		return nil, protocol.Errf("bad_params", "fid must be a number")
	}
	size, ok := intArg(c.args, "size", -1)
	if !ok {
		return nil, protocol.Errf("bad_params", "size must be a number")
	}
	if err := s.mon.waitRound(ctx, false); err != nil {
		return nil, err
	}
	sn = s.mon.snap()
	var writable, unknown []core.Device
	for _, id := range sn.sortedDeviceIDs() {
		d := s.mon.withPlacements(sn.devices[id])
		if !s.mon.canWrite(sn, d) {
			continue
		}
		if size > 0 {
			if free := d.MBFree(); free < 0 {
				unknown = append(unknown, d)
				continue
			} else if free*1048576 <= size {
				continue
			}
		}
		writable = append(writable, d)
	}
	if len(writable) == 0 {
		writable = unknown
	}
	want := 1
	multi := c.args.Bool("multi_dest")
	if multi {
		want = 3
	}
	// write_copies (ours): the client may write the class's copies itself
	// and name them in create_close (copy_devids); it hears how many with
	// copies=. Only with multi_dest, which gives it the destinations.
	copies := multi && c.args.Bool("write_copies")
	if copies {
		want = max(want, cls.MinDevCount)
	}
	chosen := pickSpread(orderForNewFile(writable), want)
	if len(chosen) == 0 {
		return nil, errf("no_devices")
	}
	devids := make([]int, len(chosen))
	for i, d := range chosen {
		devids[i] = d.ID
	}
	fid, err = s.store().RegisterTempfile(ctx, store.Tempfile{FID: fid, DomainID: dom.ID, Key: key, ClassID: cls.ID, Devids: devids}, s.minFID)
	if errors.Is(err, store.ErrExists) {
		return nil, errf("fid_in_use")
	}
	if errors.Is(err, store.ErrFIDRange) {
		return nil, protocol.Errf("bad_params", "fid %d is more than %d above the highest fid allocated; choose a lower one or let the tracker choose (fid=0)", fid, store.ExplicitFIDHeadroom)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range chosen {
		s.mon.vivifyDirs(ctx, sn, d, fid)
	}
	out := protocol.Args{"fid": i64toa(fid)}
	zoneAlt := c.args.Get("zone") == "alt"
	if copies {
		out["copies"] = itoa(max(cls.MinDevCount, 1))
	}
	if multi {
		out["dev_count"] = itoa(len(chosen))
		for i, d := range chosen {
			n := itoa(i + 1)
			out["devid_"+n] = itoa(d.ID)
			out["path_"+n] = fidURL(sn.hosts[d.HostID], d.ID, fid, c.clientIP, zoneAlt, false)
		}
	} else {
		d := chosen[0]
		out["devid"] = itoa(d.ID)
		out["path"] = fidURL(sn.hosts[d.HostID], d.ID, fid, c.clientIP, zoneAlt, false)
	}
	return out, nil
}

// vivifyDirs sends MKCOL for the fid's parent directories unless the
// node is known to create them itself (it refused MKCOL before).
func (m *monitor) vivifyDirs(ctx context.Context, sn *snapshot, d core.Device, fid int64) {
	if sn.settingBool("skip_mkcol") {
		return
	}
	if m.refusesMkcol(d.ID) {
		return
	}
	h := sn.hosts[d.HostID]
	p := core.FIDPath(d.ID, fid)
	parts := strings.Split(p, "/") // "", devN, b, mmm, ttt, file
	base := hostBase(h, nil, false, false)
	for i := 3; i <= 5; i++ {
		url := base + strings.Join(parts[:i], "/") + "/"
		if m.mkcolDone(url) {
			continue
		}
		code := m.mkcol(ctx, url)
		if code == 400 || code == 501 {
			m.noteRefusesMkcol(d.ID)
			return
		}
		if code/100 == 2 || code == 405 {
			m.noteMkcolDone(url)
		}
	}
}

var checksumRE = regexp.MustCompile(`^([\w-]+):([0-9a-fA-F]{32,128})$`)

// parseChecksum parses `ALG:hex`.
func parseChecksum(v string) (int, []byte, error) {
	m := checksumRE.FindStringSubmatch(v)
	if m == nil {
		return 0, nil, errf("invalid_checksum_format")
	}
	ht, ok := core.HashType(m[1])
	if !ok || ht == core.HashNone {
		return 0, nil, errf("invalid_checksum_format")
	}
	sum, err := hex.DecodeString(m[2])
	if err != nil || len(sum) != core.HashSize(ht) {
		return 0, nil, errf("invalid_checksum_format")
	}
	return ht, sum, nil
}

func (s *Server) cmdCreateClose(ctx context.Context, c *call) (protocol.Args, error) {
	dom, _, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	a := c.args
	if !a.Bool("fid") {
		return nil, errf("no_fid")
	}
	if !a.Bool("devid") {
		return nil, errf("no_devid")
	}
	if !a.Bool("path") {
		return nil, errf("no_path")
	}
	fid, err1 := strconv.ParseInt(a.Get("fid"), 10, 64)
	devid, err2 := strconv.Atoi(a.Get("devid"))
	if err1 != nil || err2 != nil {
		return nil, errf("bogus_args")
	}
	var hashType int
	var sum []byte
	if a.Get("checksum") != "" {
		if hashType, sum, err = parseChecksum(a.Get("checksum")); err != nil {
			return nil, err
		}
	}
	path := a.Get("path")
	// copy_devids (ours, after create_open's write_copies): devices the
	// client wrote the same bytes to, each checked like the first;
	// failed_devids: devices a write to failed, which may hold bytes.
	copyIDs, err1 := devidList(a.Get("copy_devids"))
	failedIDs, err2 := devidList(a.Get("failed_devids"))
	if err1 != nil || err2 != nil || len(copyIDs)+len(failedIDs) > 16 {
		return nil, errf("bogus_args")
	}
	// A device another tracker handed out may be new to this one: the
	// configuration is re-read when any of them is unknown.
	named := append(append([]int{devid}, copyIDs...), failedIDs...)
	sn := s.mon.snapFor(ctx, func(sn *snapshot) bool {
		for _, d := range named {
			if _, ok := sn.devices[d]; !ok {
				return true
			}
		}
		return false
	})
	dev, ok := sn.devices[devid]
	if !ok {
		return nil, errf("bogus_args")
	}
	host := sn.hosts[dev.HostID]
	if path != fidURL(host, devid, fid, c.clientIP, a.Get("zone") == "alt", false) &&
		path != fidURL(host, devid, fid, nil, false, false) && path != fidURL(host, devid, fid, nil, true, false) {
		return nil, errf("bogus_args")
	}
	// Verify the size with the write URL as the node sees it (the path the
	// client used), while the upload's row is read.
	type sizeCheck struct {
		length  int64
		missing bool
		err     error
	}
	head := make(chan sizeCheck, 1)
	if a.Get("key") != "" {
		go func() {
			l, m, err := s.nodes.copySize(ctx, host, devid, fid, path)
			head <- sizeCheck{l, m, err}
		}()
	}
	seen := map[int]bool{devid: true}
	for _, d := range named[1:] {
		if _, ok := sn.devices[d]; !ok || seen[d] {
			return nil, errf("bogus_args")
		}
		seen[d] = true
	}
	copyHeads := make([]chan sizeCheck, len(copyIDs))
	if a.Get("key") != "" {
		for i, d := range copyIDs {
			copyHeads[i] = make(chan sizeCheck, 1)
			h := sn.hosts[sn.devices[d].HostID]
			url := fidURL(h, d, fid, nil, false, false)
			go func() {
				l, m, err := s.nodes.copySize(ctx, h, d, fid, url)
				copyHeads[i] <- sizeCheck{l, m, err}
			}()
		}
	}
	// Read the upload now; it is claimed (its row deleted) in the same
	// transaction that commits it, so one database commit fewer.
	tf, err := s.store().TempfileByFID(ctx, fid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf("no_temp_file")
	}
	if err != nil {
		return nil, err
	}
	// An upload abandoned may have bytes on any of its destinations.
	written := []int{devid}
	for d := range seen {
		if d != devid {
			written = append(written, d)
		}
	}
	for _, d := range tf.Devids {
		if !seen[d] {
			written = append(written, d)
		}
	}
	abandon := func() {
		err := s.store().AbandonUpload(context.WithoutCancel(ctx), fid, written, true)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("tracker: cannot queue abandoned upload for deletion", "fid", fid, "err", err)
		}
		kick(s.jobs.delKick)
	}
	okDev := true
	for d := range seen {
		okDev = okDev && slices.Contains(tf.Devids, d)
	}
	if !okDev {
		abandon()
		return nil, protocol.Errf("invalid_destdev", "File uploaded to invalid dest %d. Valid devices were: %s", devid, joinInts(tf.Devids))
	}
	key := a.Get("key")
	if key == "" {
		abandon()
		return nil, nil
	}
	if err := s.checkKey(key); err != nil {
		abandon()
		return nil, err
	}
	meta, err := protocol.DecodeMeta(a)
	if err != nil {
		abandon()
		return nil, err
	}
	switch {
	case s.cfg.Plain || !s.store().HasMeta():
		meta = nil
	case meta["mtime"] == "":
		if meta == nil {
			meta = map[string]string{}
		}
		meta[protocol.MetaCreated] = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	wantSize := int64(-1)
	if n, err := strconv.ParseInt(a.Get("size"), 10, 64); err == nil && n > 0 {
		wantSize = n
	}
	sc := <-head
	length, missing := sc.length, sc.missing
	switch {
	case sc.err != nil:
		abandon()
		return nil, protocol.Errf("size_verify_error", "Expected: %d; actual: 0 (cantreach); path: %s; error: %v", wantSize, path, sc.err)
	case missing:
		abandon()
		return nil, protocol.Errf("size_verify_error", "Expected: %d; actual: 0 (missing); path: %s", wantSize, path)
	case wantSize > 0 && length != wantSize:
		abandon()
		return nil, protocol.Errf("size_mismatch", "Expected: %d; actual: %d; path: %s", wantSize, length, path)
	}
	if hashType != core.HashNone && a.Bool("checksumverify") {
		got, err := s.nodes.digest(ctx, host, core.FIDPath(devid, fid), path, hashType, length)
		if err != nil {
			abandon()
			return nil, protocol.Errf("checksum_mismatch", "Expected: Checksum[f=%d;%s=%x]; actual: unknown (%v); path: %s", fid, core.HashName(hashType), sum, err, path)
		}
		if string(got) != string(sum) {
			abandon()
			return nil, protocol.Errf("checksum_mismatch", "Expected: Checksum[f=%d;%s=%x]; actual: %s:%x; path: %s", fid, core.HashName(hashType), sum, core.HashName(hashType), got, path)
		}
	}
	// The client's other copies count when they hold the same bytes; the
	// others are removed now, before replication may write there (a later
	// write of the client's is refused by the node: it was sent before),
	// or, when their node does not answer, noted as strays.
	var copies, strays []int
	bad := failedIDs
	for i, d := range copyIDs {
		if sc := <-copyHeads[i]; sc.err != nil || sc.missing || sc.length != length {
			bad = append(bad, d)
			continue
		}
		copies = append(copies, d)
	}
	for _, d := range bad {
		url := fidURL(sn.hosts[sn.devices[d].HostID], d, fid, nil, false, false)
		if _, err := s.jobs.deleteCopy(ctx, url, false); err != nil {
			strays = append(strays, d)
		}
	}
	cls := sn.classOf(dom.ID, tf.ClassID)
	commit := store.Commit{FID: fid, DomainID: dom.ID, Key: key, Length: length, ClassID: tf.ClassID, Devid: devid, Copies: copies, Meta: meta, ClaimTempfile: true}
	// Copies that already satisfy the class (mindevcount 1, or the client
	// wrote them all) need no replication: queueing it would only cost the
	// queue a row and a pass.
	commit.Satisfied = replicationPlan(sn, cls, append([]int{devid}, copies...), nil, s.mon.canWrite).verdict == allGood
	if hashType != core.HashNone && cls.HashType == hashType {
		commit.HashType, commit.Checksum = hashType, sum
	}
	if _, err := s.store().CommitFile(ctx, commit); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, errf("no_temp_file") // closed twice at once: the other won
		case errors.Is(err, store.ErrFIDExists):
			return nil, errf("fid_exists")
		}
		abandon()
		return nil, err
	}
	for _, d := range append([]int{devid}, copies...) {
		s.mon.notePlaced(d, length)
	}
	for _, d := range strays {
		s.jobs.noteStray(fid, d, errors.New("the client's copy failed or does not match"))
	}
	if !commit.Satisfied {
		kick(s.jobs.replKick)
	}
	return nil, nil
}

// devidList parses a comma-separated list of device ids ("" is none).
func devidList(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		d, err := strconv.Atoi(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bad device id %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}

func joinInts(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// lookupKey resolves the domain and key arguments to a file and the
// devices holding it, in one query. With replicaOK the query may go to a
// read replica (get_paths, file_info); else it reads the master.
func (s *Server) lookupKey(ctx context.Context, c *call, replicaOK bool) (core.File, []int, core.Domain, *snapshot, error) {
	f, devids, _, dom, sn, err := s.lookupKeyMeta(ctx, c, replicaOK, false)
	return f, devids, dom, sn, err
}

// lookupKeyMeta is lookupKey that also reads the file's metadata (with
// withMeta) in the same query.
func (s *Server) lookupKeyMeta(ctx context.Context, c *call, replicaOK, withMeta bool) (core.File, []int, map[string]string, core.Domain, *snapshot, error) {
	dom, sn, err := s.domainArg(ctx, c)
	if err != nil {
		return core.File{}, nil, nil, dom, sn, err
	}
	key := c.args.Get("key")
	if key == "" {
		return core.File{}, nil, nil, dom, sn, errf("no_key")
	}
	var f core.File
	var devids []int
	var meta map[string]string
	query := func(st fileReader) error {
		var err error
		if withMeta {
			f, devids, meta, err = st.FileAndMeta(ctx, dom.ID, key)
		} else {
			f, devids, err = st.FileAndDevids(ctx, dom.ID, key)
		}
		return err
	}
	if replicaOK {
		err = s.readFrom(ctx, query)
	} else {
		err = query(s.store())
	}
	if errors.Is(err, store.ErrNotFound) {
		return f, nil, nil, dom, sn, errf("unknown_key")
	}
	return f, devids, meta, dom, sn, err
}

func (s *Server) cmdGetPaths(ctx context.Context, c *call) (protocol.Args, error) {
	f, devids, _, sn, err := s.lookupKey(ctx, c, true)
	if err != nil {
		return nil, err
	}
	pathcount, _ := intArg(c.args, "pathcount", 2)
	if pathcount < 2 {
		pathcount = 2
	}
	noverify := c.args.Bool("noverify")
	zoneAlt := c.args.Get("zone") == "alt"
	ordered := weightedOrder(devids, func(id int) float64 { return s.readWeight(sn, id) })
	var paths, drain []string
	backup := ""
	for _, id := range ordered {
		d, ok := sn.devices[id]
		if !ok {
			continue
		}
		h, ok := sn.hosts[d.HostID]
		if !ok {
			continue
		}
		url := fidURL(h, id, f.FID, c.clientIP, zoneAlt, true)
		if !s.mon.canRead(sn, d) {
			if backup == "" {
				backup = url
			}
			continue
		}
		if len(paths) == 0 && !noverify {
			size, missing, err := s.nodes.headSize(ctx, url)
			if err != nil || missing || size != f.Length {
				continue
			}
		}
		if d.Status == core.DevDrain {
			drain = append(drain, url)
			continue
		}
		paths = append(paths, url)
		if int64(len(paths)) >= pathcount {
			break
		}
	}
	for _, u := range drain {
		if int64(len(paths)) >= pathcount {
			break
		}
		paths = append(paths, u)
	}
	if len(paths) == 0 && backup != "" {
		paths = []string{backup}
	}
	out := protocol.Args{"paths": itoa(len(paths))}
	for i, p := range paths {
		out["path"+itoa(i+1)] = p
	}
	return out, nil
}

func (s *Server) cmdDelete(ctx context.Context, c *call) (protocol.Args, error) {
	dom, _, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	key := c.args.Get("key")
	if key == "" {
		return nil, errf("no_key")
	}
	if _, err := s.store().DeleteKey(ctx, dom.ID, key, s.durability(c)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf("unknown_key")
		}
		return nil, err
	}
	kick(s.jobs.delKick)
	return nil, nil
}

func (s *Server) cmdRename(ctx context.Context, c *call) (protocol.Args, error) {
	dom, _, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	from, to := c.args.Get("from_key"), c.args.Get("to_key")
	if from == "" || to == "" {
		return nil, errf("no_key")
	}
	if err := s.checkKey(to); err != nil {
		return nil, err
	}
	switch err := s.store().RenameKey(ctx, dom.ID, from, to, s.durability(c)); {
	case errors.Is(err, store.ErrNotFound):
		return nil, errf("unknown_key")
	case errors.Is(err, store.ErrExists):
		return nil, errf("key_exists")
	case err != nil:
		return nil, err
	}
	return nil, nil
}

func (s *Server) cmdUpdateFileClass(ctx context.Context, c *call) (protocol.Args, error) {
	dom, sn, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	key := c.args.Get("key")
	if key == "" {
		return nil, errf("no_key")
	}
	if c.args.Get("class") == "" {
		return nil, errf("no_class")
	}
	cls, ok := sn.class(dom.ID, c.args.Get("class"))
	if !ok {
		return nil, errf("class_not_found")
	}
	f, err := s.store().FileByKey(ctx, dom.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf("invalid_key")
	}
	if err != nil {
		return nil, err
	}
	devids, err := s.store().FileDevids(ctx, f.FID)
	if err != nil {
		return nil, err
	}
	if len(devids) == 0 {
		return nil, errf("no_devices")
	}
	if f.ClassID != cls.ID {
		if err := s.store().SetFileClass(ctx, f.FID, cls.ID); err != nil {
			return nil, err
		}
		kick(s.jobs.replKick)
	}
	return nil, nil
}

// readWeight is how often a device is offered first for reads: the less
// busy its disk (the I/O utilization its node reports), the more; without
// a report, its weight.
func (s *Server) readWeight(sn *snapshot, id int) float64 {
	d, ok := sn.devices[id]
	if !ok {
		return 1
	}
	if util, ok := s.mon.utilization(id); ok {
		return max(102-util, 1)
	}
	if d.Weight <= 0 {
		return 100
	}
	return float64(d.Weight)
}

func (s *Server) cmdFileInfo(ctx context.Context, c *call) (protocol.Args, error) {
	f, devids, meta, dom, sn, err := s.lookupKeyMeta(ctx, c, true, true)
	if err != nil {
		return nil, err
	}
	cls, _ := sn.classByID(dom.ID, f.ClassID)
	out := protocol.Args{
		"fid": i64toa(f.FID), "domain": dom.Name, "class": cls.Name, "key": f.Key,
		"length": i64toa(f.Length), "devcount": itoa(f.DevCount),
	}
	if cls.HashType != core.HashNone {
		out["checksum"] = "MISSING"
		ht, sum, err := s.store().Checksum(ctx, f.FID)
		switch {
		case err == nil:
			out["checksum"] = core.HashName(ht) + ":" + hex.EncodeToString(sum)
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	if !c.args.Bool("created") {
		delete(meta, protocol.MetaCreated)
	}
	protocol.EncodeMeta(out, meta)
	if c.args.Bool("devices") {
		out["devids"] = joinInts(devids)
	}
	return out, nil
}

func (s *Server) cmdFileDebug(ctx context.Context, c *call) (protocol.Args, error) {
	var fid int64
	sn := s.mon.snap()
	if v := c.args.Get("fid"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errf("unknown_fid")
		}
		fid = n
	} else {
		f, _, _, _, err := s.lookupKey(ctx, c, false)
		if err != nil {
			return nil, err
		}
		fid = f.FID
	}
	out := protocol.Args{}
	found := false
	if f, err := s.store().FileByFID(ctx, fid); err == nil {
		found = true
		cls, _ := sn.classByID(f.DomainID, f.ClassID)
		out["fid_fid"], out["fid_dmid"], out["fid_dkey"] = i64toa(f.FID), itoa(f.DomainID), f.Key
		out["fid_length"], out["fid_classid"], out["fid_devcount"] = i64toa(f.Length), itoa(f.ClassID), itoa(f.DevCount)
		out["fid_domain"], out["fid_class"] = sn.domainsByID[f.DomainID].Name, cls.Name
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if t, err := s.store().TempfileByFID(ctx, fid); err == nil {
		found = true
		out["tempfile_classid"], out["tempfile_dmid"] = itoa(t.ClassID), itoa(t.DomainID)
		out["tempfile_dkey"], out["tempfile_devids"] = t.Key, joinInts(t.Devids)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	rows, err := s.store().DebugRows(ctx, fid)
	if err != nil {
		return nil, err
	}
	for prefix, cols := range rows {
		found = true
		for k, v := range cols {
			out[prefix+"_"+k] = v
		}
	}
	devids, err := s.store().FileDevids(ctx, fid)
	if err != nil {
		return nil, err
	}
	if len(devids) > 0 {
		found = true
	}
	for _, id := range devids {
		if d, ok := sn.devices[id]; ok {
			out["devpath_"+itoa(id)] = fidURL(sn.hosts[d.HostID], id, fid, c.clientIP, c.args.Get("zone") == "alt", true)
		}
	}
	out["devids"] = joinInts(devids)
	out["checksum"] = "NONE"
	ht, sum, err := s.store().Checksum(ctx, fid)
	switch {
	case err == nil:
		found = true
		out["checksum"] = core.HashName(ht) + ":" + hex.EncodeToString(sum)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if !found {
		return nil, errf("unknown_fid")
	}
	return out, nil
}

func (s *Server) cmdListKeys(ctx context.Context, c *call) (protocol.Args, error) {
	dom, _, err := s.domainArg(ctx, c)
	if err != nil {
		return nil, err
	}
	prefix, after := c.args.Get("prefix"), c.args.Get("after")
	if prefix != "" && after != "" && !strings.HasPrefix(after, prefix) {
		return nil, errf("after_mismatch")
	}
	limit := int64(1000)
	if v := c.args.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			n = 0
		}
		limit = min(max(n, 0), 1000)
	}
	if c.args.Get("delimiter") != "" && !s.cfg.Plain {
		return s.listDir(ctx, dom.ID, c, int(max(limit, 1)))
	}
	if limit == 0 {
		return nil, errf("none_match")
	}
	keys, err := s.store().ListKeys(ctx, dom.ID, prefix, after, int(limit))
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errf("none_match")
	}
	out := protocol.Args{"key_count": itoa(len(keys)), "next_after": keys[len(keys)-1]}
	for i, k := range keys {
		out["key_"+itoa(i+1)] = k
	}
	return out, nil
}

func (s *Server) cmdListFids(ctx context.Context, c *call) (protocol.Args, error) {
	from, _ := intArg(c.args, "from", 0)
	count, ok := intArg(c.args, "to", 100)
	if !ok || count < 0 || count > 500 {
		count = 500
	}
	files, err := s.store().ListFids(ctx, from, int(count))
	if err != nil {
		return nil, err
	}
	sn := s.mon.snap()
	out := protocol.Args{"fid_count": itoa(len(files))}
	for i, f := range files {
		p := "fid_" + itoa(i+1) + "_"
		cls, _ := sn.classByID(f.DomainID, f.ClassID)
		out[p+"fid"], out[p+"domain"], out[p+"class"] = i64toa(f.FID), sn.domainsByID[f.DomainID].Name, cls.Name
		out[p+"key"], out[p+"length"], out[p+"devcount"] = f.Key, i64toa(f.Length), itoa(f.DevCount)
	}
	return out, nil
}
