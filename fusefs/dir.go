package fusefs

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// dirNode is the top directory (dom == ""), a domain (prefix == "") or
// a directory inside a domain (prefix ends in "/").
type dirNode struct {
	fs     *FS
	dom    string
	prefix string // guarded by fs.mu when renamed
}

var (
	_ fs.Node                = (*dirNode)(nil)
	_ fs.NodeRequestLookuper = (*dirNode)(nil)
	_ fs.HandleReadDirAller  = (*dirNode)(nil)
	_ fs.NodeCreater         = (*dirNode)(nil)
	_ fs.NodeMkdirer         = (*dirNode)(nil)
	_ fs.NodeRemover         = (*dirNode)(nil)
	_ fs.NodeRenamer         = (*dirNode)(nil)
	_ fs.NodeForgetter       = (*dirNode)(nil)
	_ fs.NodeSymlinker       = (*dirNode)(nil)
	_ fs.NodeLinker          = (*dirNode)(nil)
	_ fs.NodeMknoder         = (*dirNode)(nil)
	_ fs.NodeSetattrer       = (*dirNode)(nil)
	_ fs.NodeFsyncer         = (*dirNode)(nil)
)

// listing is a directory's cached contents, shared by the lookups and
// listings of the directory while cached; files this mount commits are
// added to it in place (see FS.noteCommitted). exists is true when any
// key starts with the directory's prefix (its own marker included).
type listing struct {
	mu     sync.Mutex // guards the fields below
	ents   []dirEnt
	exists bool
	byName map[string][]int // name -> indexes in ents (a file and a dir may share a name)
}

// newListing indexes ents.
func newListing(ents []dirEnt, exists bool) *listing {
	l := &listing{ents: ents, exists: exists, byName: make(map[string][]int, len(ents))}
	for i, e := range ents {
		l.byName[e.name] = append(l.byName[e.name], i)
	}
	return l
}

// entries returns a copy of the entries.
func (l *listing) entries() []dirEnt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]dirEnt(nil), l.ents...)
}

// named returns the entries called name.
func (l *listing) named(name string) []dirEnt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []dirEnt
	for _, i := range l.byName[name] {
		out = append(out, l.ents[i])
	}
	return out
}

// hasAny reports whether the directory exists.
func (l *listing) hasAny() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exists
}

// putFile adds the file name, or updates its attributes.
func (l *listing) putFile(name string, a fileAttr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exists = true
	for _, i := range l.byName[name] {
		if !l.ents[i].isDir {
			l.ents[i].detailed, l.ents[i].attr = true, a
			return
		}
	}
	l.byName[name] = append(l.byName[name], len(l.ents))
	l.ents = append(l.ents, dirEnt{name: name, detailed: true, attr: a})
}

// putDir adds the directory name unless it is there.
func (l *listing) putDir(name string) { l.putDirEnt(dirEnt{name: name, isDir: true}, false) }

// putDirAttr adds the directory name, or updates it, with a as its
// marker's attributes.
func (l *listing) putDirAttr(name string, a fileAttr) {
	l.putDirEnt(dirEnt{name: name, isDir: true, detailed: true, attr: a}, true)
}

// putDirEnt adds the directory entry e, or replaces the one there when
// replace is true.
func (l *listing) putDirEnt(e dirEnt, replace bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exists = true
	for _, i := range l.byName[e.name] {
		if l.ents[i].isDir {
			if replace {
				l.ents[i] = e
			}
			return
		}
	}
	l.byName[e.name] = append(l.byName[e.name], len(l.ents))
	l.ents = append(l.ents, e)
}

// removeFile drops the file name (a directory of that name stays).
func (l *listing) removeFile(name string) { l.remove(name, false) }

// removeDir drops the directory name (a file of that name stays).
func (l *listing) removeDir(name string) { l.remove(name, true) }

// remove drops the entry name that is (isDir) or is not a directory.
func (l *listing) remove(name string, isDir bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	idx := l.byName[name]
	for j, i := range idx {
		if l.ents[i].isDir != isDir {
			continue
		}
		last := len(l.ents) - 1
		if i != last {
			// Move the last entry into the hole and fix its index.
			moved := l.ents[last]
			l.ents[i] = moved
			for k, mi := range l.byName[moved.name] {
				if mi == last {
					l.byName[moved.name][k] = i
				}
			}
		}
		l.ents = l.ents[:last]
		rest := append(idx[:j:j], idx[j+1:]...)
		if len(rest) == 0 {
			delete(l.byName, name)
		} else {
			l.byName[name] = rest
		}
		return
	}
}

// dirEnt is one cached directory entry.
type dirEnt struct {
	name     string
	isDir    bool
	detailed bool // attr is known from the listing
	attr     fileAttr
}

func (d *dirNode) where() (string, string) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	return d.dom, d.prefix
}

func (d *dirNode) isTop() bool { return d.dom == "" }

// Fsync of a directory writes its changed time to its marker and makes
// the renames, deletions and metadata changes made so far durable (the
// entries created in it are: a file's commit is).
func (d *dirNode) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	dom, prefix := d.where()
	if err := d.fs.flushDirTime(ctx, dom, prefix); err != nil {
		return errno(err)
	}
	return errno(d.fs.cl.Sync(ctx))
}

// Attr describes the directory.
func (d *dirNode) Attr(ctx context.Context, a *fuse.Attr) error {
	dom, prefix := d.where()
	da, err := d.dirAttr(ctx)
	if err != nil {
		return errno(err)
	}
	mode := da.mode
	if mode == 0 {
		mode = d.fs.cfg.DirMode
	}
	a.Inode = dirInode(dom, prefix)
	a.Mode = os.ModeDir | mode
	a.Uid, a.Gid = d.fs.cfg.UID, d.fs.cfg.GID
	if da.own.set {
		a.Uid, a.Gid = da.own.uid, da.own.gid
	}
	a.Nlink = 2
	a.Mtime, a.Ctime, a.Atime = da.mtime, da.mtime, da.mtime
	a.Valid = d.fs.cfg.KernelTTL
	return nil
}

// Setattr stores chmod, chown and utimes of a directory (cp -a, tar and
// rsync set them) on its marker.
func (d *dirNode) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	var mode os.FileMode
	var mtime time.Time
	if req.Valid.Mode() {
		mode = req.Mode & modeMask
		if err := d.fs.checkMode(mode); err != nil {
			return errno(err)
		}
	}
	if req.Valid.Mtime() {
		mtime = req.Mtime
	}
	var uid, gid *uint32
	if req.Valid.Uid() || req.Valid.Gid() {
		uid, gid = optUint(req.Valid.Uid(), req.Uid), optUint(req.Valid.Gid(), req.Gid)
	}
	if err := d.setattr(ctx, mode, mtime, req.Header.Uid, uid, gid); err != nil {
		return errno(err)
	}
	return d.Attr(ctx, &resp.Attr)
}

// Forget drops the node from the table.
func (d *dirNode) Forget() {
	dom, prefix := d.where()
	if dom != "" {
		d.fs.forget("d\x00"+ck(dom, prefix), d)
	}
}

// list returns the cached entries of the directory.
func (d *dirNode) list(ctx context.Context) ([]dirEnt, error) {
	l, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	return l.entries(), nil
}

// load returns the directory's cached listing.
func (d *dirNode) load(ctx context.Context) (*listing, error) {
	dom, prefix := d.where()
	if d.isTop() {
		names, err := d.fs.domains.Load(ctx, "", func(ctx context.Context) ([]string, error) {
			return d.fs.cl.Domains(ctx)
		})
		if err != nil {
			return nil, err
		}
		ents := make([]dirEnt, len(names))
		for i, n := range names {
			ents[i] = dirEnt{name: n, isDir: true}
		}
		return newListing(ents, true), nil
	}
	return d.fs.dirs.Load(ctx, ck(dom, prefix), func(ctx context.Context) (*listing, error) {
		l, _, err := d.fetch(ctx, 0)
		return l, err
	})
}

// fetch reads the directory's listing from the tracker; with limit > 0
// it reads at most that many entries and gives up (nil, false) when the
// directory is bigger.
func (d *dirNode) fetch(ctx context.Context, limit int) (*listing, bool, error) {
	dom, prefix := d.where()
	var ents []dirEnt
	exists := false
	after := ""
	page := 1000
	if limit > 0 {
		page = min(page, limit)
	}
	read := 0
	anyRemoved := d.fs.removed.Len() > 0 // spares a lookup per entry
	for {
		p, err := d.fs.cl.ListDir(ctx, dom, prefix, after, page)
		if err != nil {
			return nil, false, err
		}
		read += len(p.Entries)
		if limit > 0 && p.More && read >= limit {
			return nil, false, nil
		}
		exists = exists || len(p.Entries) > 0
		ents = append(ents, d.pageEntries(p, anyRemoved)...)
		if !p.More || len(p.Entries) == 0 {
			return newListing(ents, exists), true, nil
		}
		after = p.Next
	}
}

// pageEntries are the entries of one page of the directory's listing.
func (d *dirNode) pageEntries(p client.DirPage, anyRemoved bool) []dirEnt {
	dom, prefix := d.where()
	var ents []dirEnt
	for _, e := range p.Entries {
		name := strings.TrimPrefix(e.Name, prefix)
		if e.IsDir {
			name = strings.TrimSuffix(name, "/")
		}
		if name == "" || strings.Contains(name, "/") {
			continue // the directory's own marker, or an odd key
		}
		if !e.IsDir && (strings.HasPrefix(name, replacedPrefix) || anyRemoved && d.fs.wasRemoved(dom, e.Name)) {
			continue
		}
		de := dirEnt{name: name, isDir: e.IsDir}
		switch {
		case p.Detailed && !e.IsDir:
			de.detailed = true
			de.attr = attrFromEntry(e)
			d.fs.overlay(dom, e.Name, &de.attr)
		case p.Detailed && e.Marker:
			de.detailed = true // the directory's marker
			de.attr = attrFromEntry(e)
		}
		ents = append(ents, de)
	}
	return ents
}

// smallDirLimit is the most entries a directory may have for a lookup of
// a name it does not hold to read (and cache) its whole listing, which
// then answers the lookups that follow: cp -r and tar create files one
// by one in directories the mount has not listed.
const smallDirLimit = 256

// busyDirLookups is how many lookups a directory too big to probe
// answers name by name (two round trips each) within the cache's time
// before its listing is read whole, up to busyDirLimit entries: ls -l
// after the listing's cache time has run out, files created one by one
// in a big directory. A lookup or two in a huge directory stays cheap;
// many cost at most twice what reading the listing once would.
const (
	busyDirLookups = 32
	busyDirLimit   = 200_000
)

// bigDir counts the lookups in a directory too big to probe.
type bigDir struct {
	lookups atomic.Int64
	huge    atomic.Bool // bigger than busyDirLimit: never read whole for lookups
}

// probe returns the directory's listing when it is cached, or small
// enough to read now, or busy enough to be worth reading; nil otherwise.
func (d *dirNode) probe(ctx context.Context) (*listing, error) {
	dom, prefix := d.where()
	k := ck(dom, prefix)
	if l, ok := d.fs.dirs.Get(k); ok {
		return l, nil
	}
	limit := smallDirLimit
	if b, big := d.fs.bigDirs.Get(k); big {
		if b.huge.Load() || b.lookups.Add(1) <= busyDirLookups {
			return nil, nil
		}
		limit = busyDirLimit
	}
	l, err := d.fs.dirs.Load(ctx, k, func(ctx context.Context) (*listing, error) {
		l, ok, err := d.fetch(ctx, limit)
		if err == nil && !ok {
			err = errBigDir
		}
		return l, err
	})
	if err == errBigDir {
		b, ok := d.fs.bigDirs.Get(k)
		if !ok {
			b = &bigDir{}
			d.fs.bigDirs.Add(k, b)
		}
		if limit == busyDirLimit {
			b.huge.Store(true)
		}
		return nil, nil
	}
	return l, err
}

// errBigDir: a directory too big to read for a lookup (not cached).
var errBigDir = errors.New("directory too big to probe")

// ReadDirAll lists the directory, with files being written here merged in.
func (d *dirNode) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	ents, err := d.entries(ctx)
	if err != nil {
		return nil, errno(err)
	}
	out := make([]fuse.Dirent, len(ents))
	for i, e := range ents {
		out[i] = fuse.Dirent{Name: e.name, Type: fuse.DT_File, Inode: e.ino}
		switch {
		case e.isDir:
			out[i].Type = fuse.DT_Dir
		case e.link:
			out[i].Type = fuse.DT_Link
		}
	}
	return out, nil
}

// dirEntry is one name a directory shows.
type dirEntry struct {
	name  string
	isDir bool
	link  bool // a symbolic link
	ino   uint64
}

// entries returns what the directory shows: its cached listing, where a
// subdirectory hides a key of the same name, plus the files created here
// and not yet committed.
func (d *dirNode) entries(ctx context.Context) ([]dirEntry, error) {
	ents, err := d.list(ctx)
	if err != nil {
		return nil, err
	}
	dom, prefix := d.where()
	dirs := map[string]bool{}
	files := map[string]bool{}
	for _, e := range ents {
		if e.isDir {
			dirs[e.name] = true
		}
	}
	var out []dirEntry
	d.fs.mu.Lock() // for the nodes' inode numbers and the pending files
	defer d.fs.mu.Unlock()
	for _, e := range ents {
		switch {
		case e.isDir:
			ino := dirInode(dom, prefix+e.name+"/")
			if d.isTop() {
				ino = dirInode(e.name, "")
			}
			out = append(out, dirEntry{name: e.name, isDir: true, ino: ino})
		case dirs[e.name]:
			d.fs.log.Warn("fusefs: key hidden by a directory of the same name", "domain", dom, "key", prefix+e.name)
		case !files[e.name]:
			files[e.name] = true
			ino := fileInode(dom, prefix+e.name)
			if n, ok := d.fs.nodes["f\x00"+ck(dom, prefix+e.name)].(*fileNode); ok {
				ino = n.ino
			}
			out = append(out, dirEntry{name: e.name, ino: ino, link: e.detailed && e.attr.link})
		}
	}
	for _, n := range d.fs.pending {
		n.mu.Lock()
		if n.dom == dom && parentOf(n.key) == prefix {
			if name := n.key[len(prefix):]; !files[name] && !dirs[name] {
				out = append(out, dirEntry{name: name, ino: n.ino})
			}
		}
		n.mu.Unlock()
	}
	return out, nil
}

// nameMax is the longest name of one directory entry, as on local file
// systems (NAME_MAX); the whole key may be longer.
const nameMax = 255

// checkName refuses names that cannot be keys: a name longer than
// nameMax, or a key longer than the tracker stores (Config.MaxKeyBytes),
// which the log says.
func (f *FS) checkName(prefix, name string) error {
	if len(strings.TrimSuffix(name, "/")) > nameMax {
		return syscall.ENAMETOOLONG
	}
	if n := len(prefix) + len(name); n > f.cfg.MaxKeyBytes {
		f.log.Info("fusefs: name too long for a key", "bytes", n, "limit", f.cfg.MaxKeyBytes, "name", name)
		return syscall.ENAMETOOLONG
	}
	return nil
}

// Lookup finds a child.
func (d *dirNode) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	d.fs.Stats.Lookups.Add(1)
	resp.EntryValid = d.fs.cfg.KernelTTL
	file, dir, err := d.lookup(ctx, req.Name)
	switch {
	case err != nil:
		return nil, errno(err)
	case dir != nil:
		return dir, nil
	}
	return file, nil
}

// lookup finds a child: a file being written, an entry of the cached
// listing, a directory (a key below it), or a key (file_info); a
// directory wins over a key of the same name.
func (d *dirNode) lookup(ctx context.Context, name string) (*fileNode, *dirNode, error) {
	dom, prefix := d.where()
	if d.isTop() {
		ents, err := d.list(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			if e.name == name {
				return nil, d.fs.dirNode(name, ""), nil
			}
		}
		return nil, nil, syscall.ENOENT
	}
	if err := d.fs.checkName(prefix, name); err != nil {
		return nil, nil, err
	}
	key := prefix + name
	d.fs.mu.Lock()
	p, pending := d.fs.pending[ck(dom, key)]
	d.fs.mu.Unlock()
	if pending {
		return p, nil, nil
	}
	l, err := d.probe(ctx)
	if err != nil {
		return nil, nil, err
	}
	if l != nil {
		var file *dirEnt
		for _, e := range l.named(name) {
			if e.isDir {
				if e.detailed {
					d.fs.attrs.Add(ck(dom, key+"/"), e.attr)
				}
				return nil, d.fs.dirNode(dom, key+"/"), nil
			}
			file = &e
		}
		if file == nil {
			return nil, nil, syscall.ENOENT
		}
		if file.detailed {
			d.fs.attrs.Add(ck(dom, key), file.attr)
		}
		return d.fs.fileNode(dom, key), nil, nil
	}
	isDir, err := d.fs.isDir(ctx, dom, key+"/")
	if err != nil {
		return nil, nil, err
	}
	if isDir {
		return nil, d.fs.dirNode(dom, key+"/"), nil
	}
	a, err := d.fs.stat(ctx, dom, key)
	if err != nil {
		return nil, nil, err
	}
	if !a.exists {
		return nil, nil, syscall.ENOENT
	}
	return d.fs.fileNode(dom, key), nil, nil
}

// cachedKind tells from what the mount holds whether name in the
// directory prefix is a directory: a file being written there is not,
// and the directory's cached listing knows its entries (a directory wins
// over a key of the same name, as in lookup). known is false when
// neither tells.
func (f *FS) cachedKind(dom, prefix, name string) (isDir, known bool) {
	f.mu.Lock()
	_, pending := f.pending[ck(dom, prefix+name)]
	f.mu.Unlock()
	l, ok := f.dirs.Get(ck(dom, prefix))
	if !ok {
		return false, pending
	}
	for _, e := range l.named(name) {
		if e.isDir {
			return true, true
		}
		known = true
	}
	return false, known || pending
}

// isDir reports whether any key starts with prefix (which ends in "/").
func (f *FS) isDir(ctx context.Context, dom, prefix string) (bool, error) {
	if l, ok := f.dirs.Get(ck(dom, prefix)); ok {
		return l.hasAny(), nil
	}
	page, err := f.cl.ListDir(ctx, dom, prefix, "", 1)
	if err != nil {
		return false, err
	}
	return len(page.Entries) > 0, nil
}

// wasRemoved reports whether this mount removed key lately.
func (f *FS) wasRemoved(dom, key string) bool {
	_, ok := f.removed.Get(ck(dom, key))
	return ok
}

func (d *dirNode) writable() error {
	if d.fs.cfg.ReadOnly {
		return fuse.Errno(syscall.EROFS)
	}
	if d.isTop() {
		return fuse.Errno(syscall.EPERM) // domains are made with mogadm domain add
	}
	return nil
}

// Create makes a new file; its bytes stream to a storage node as they
// are written, and it becomes visible to others when closed.
func (d *dirNode) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (fs.Node, fs.Handle, error) {
	if err := d.writable(); err != nil {
		return nil, nil, err
	}
	dom, prefix := d.where()
	if err := d.fs.checkName(prefix, req.Name); err != nil {
		return nil, nil, err
	}
	key := prefix + req.Name
	if err := d.fs.checkMode(req.Mode & modeMask &^ req.Umask); err != nil {
		return nil, nil, errno(err)
	}
	n, h, err := d.fs.create(ctx, dom, key, req.Mode&^req.Umask&modeMask, d.fs.creator(req.Header))
	d.fs.log.Debug("fusefs: create", "domain", dom, "key", key, "err", err)
	if err != nil {
		return nil, nil, errno(err)
	}
	resp.EntryValid = d.fs.cfg.KernelTTL
	d.fs.fillAttr(&resp.Attr, n, h.attr())
	return n, h, nil
}

// Mkdir stores an empty marker key "<dir>/" so that the directory
// persists while empty.
func (d *dirNode) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fs.Node, error) {
	if err := d.writable(); err != nil {
		return nil, err
	}
	dom, prefix := d.where()
	if err := d.fs.checkName(prefix, req.Name+"/"); err != nil {
		return nil, err
	}
	marker := prefix + req.Name + "/"
	mode := req.Mode & modeMask &^ req.Umask
	if err := d.fs.checkMode(mode); err != nil {
		return nil, errno(err)
	}
	mtime := time.Now()
	own := d.fs.creator(req.Header)
	meta := metaOf(mtime, mode)
	own.addTo(meta)
	fid, err := d.fs.store(ctx, dom, marker, nil, 0, meta, nil)
	if err != nil {
		return nil, errno(err)
	}
	d.fs.removed.Remove(ck(dom, marker))
	d.fs.noteMadeDir(dom, marker)
	d.fs.noteMarker(dom, marker, fileAttr{exists: true, fid: fid, mtime: mtime, mode: mode, own: own})
	d.fs.touchDir(dom, prefix)
	return d.fs.dirNode(dom, marker), nil
}

// Remove unlinks a file or removes an empty directory.
func (d *dirNode) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	if err := d.writable(); err != nil {
		return err
	}
	dom, prefix := d.where()
	if req.Dir {
		return errno(d.fs.rmdir(ctx, dom, prefix+req.Name+"/"))
	}
	return errno(d.fs.unlink(ctx, dom, prefix+req.Name))
}

// rmdir removes the directory sub (ending in "/") when it is empty: no
// key below it but its marker, names this mount removed lately aside.
func (f *FS) rmdir(ctx context.Context, dom, sub string) error {
	after := ""
	for {
		page, err := f.cl.ListDir(ctx, dom, sub, after, 100)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if e.Name != sub && (e.IsDir || !f.wasRemoved(dom, e.Name)) {
				return syscall.ENOTEMPTY
			}
		}
		if !page.More || len(page.Entries) == 0 {
			break
		}
		after = page.Next
	}
	if f.hasPendingBelow(dom, sub) {
		return syscall.ENOTEMPTY
	}
	if err := f.cl.Delete(ctx, dom, sub); err != nil && !core.Is(core.NotFound, err) {
		return err
	}
	f.noteRemovedDir(dom, sub)
	f.touchDir(dom, parentOf(sub))
	return nil
}

// hasPendingBelow reports whether a file created here and not yet
// committed lies below prefix.
func (f *FS) hasPendingBelow(dom, prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.pending {
		if strings.HasPrefix(k, ck(dom, prefix)) {
			return true
		}
	}
	return false
}

// create makes a new file, open for writing; it is listed at once and
// saved when first flushed. An existing file of that name is replaced
// then (O_CREAT without O_EXCL on a name the kernel did not find).
func (f *FS) create(ctx context.Context, dom, key string, mode os.FileMode, own owner) (*fileNode, *writeHandle, error) {
	n := f.fileNode(dom, key)
	n.mu.Lock()
	n.mode, n.own = mode, own
	n.mu.Unlock()
	f.mu.Lock()
	f.pending[ck(dom, key)] = n
	f.mu.Unlock()
	f.removed.Remove(ck(dom, key))
	h, err := newWriteHandle(ctx, n, true)
	if err != nil {
		n.clearPending()
		return nil, nil, err
	}
	h.pre = f.reserveFid(dom, key)
	f.touchDir(dom, parentOf(key))
	return n, h, nil
}

// Rename moves a file (replacing an existing target, as POSIX says) or
// a directory (key by key, up to RenameDirLimit keys; beyond that EXDEV,
// so that mv copies instead).
func (d *dirNode) Rename(ctx context.Context, req *fuse.RenameRequest, newDir fs.Node) error {
	if err := d.writable(); err != nil {
		return err
	}
	nd, ok := newDir.(*dirNode)
	if !ok {
		return fuse.Errno(syscall.EIO)
	}
	dom, prefix := d.where()
	ndom, nprefix := nd.where()
	if nd.isTop() || ndom != dom {
		return fuse.Errno(syscall.EXDEV)
	}
	if err := d.fs.checkName(nprefix, req.NewName); err != nil {
		return err
	}
	from, to := prefix+req.OldName, nprefix+req.NewName
	var err error
	isDir, known := d.fs.cachedKind(dom, prefix, req.OldName)
	if !known {
		if isDir, err = d.fs.isDir(ctx, dom, from+"/"); err != nil {
			return errno(err)
		}
	}
	if isDir {
		err = d.fs.renameDir(ctx, dom, from+"/", to+"/")
	} else {
		err = d.fs.renameFile(ctx, dom, from, to)
	}
	if err != nil {
		return errno(err)
	}
	d.fs.touchDir(dom, prefix)
	d.fs.touchDir(dom, nprefix)
	return nil
}

// Symlink makes a symbolic link (see FS.symlink).
func (d *dirNode) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (fs.Node, error) {
	if err := d.writable(); err != nil {
		return nil, err
	}
	n, err := d.symlink(ctx, req.NewName, req.Target, d.fs.creator(req.Header))
	if err != nil {
		return nil, errno(err)
	}
	return n, nil
}

// Link is not supported: MogileFS has no links.
func (d *dirNode) Link(ctx context.Context, req *fuse.LinkRequest, old fs.Node) (fs.Node, error) {
	return nil, fuse.Errno(syscall.EPERM)
}

// Mknod is not supported: only regular files are stored.
func (d *dirNode) Mknod(ctx context.Context, req *fuse.MknodRequest) (fs.Node, error) {
	return nil, fuse.Errno(syscall.EPERM)
}
