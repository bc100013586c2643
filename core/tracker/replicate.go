package tracker

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/node"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// replicateItem works one replication queue row: copies the file until
// its class's policy is satisfied, trims surplus copies, and then removes
// or reschedules the row.
func (j *jobs) replicateItem(ctx context.Context, it store.QueueItem) {
	st := j.db
	err := j.replicateFID(ctx, it.FID, it.FromDevid)
	switch {
	case errors.Is(err, errFinished):
		j.stats.Replicated.Add(1)
	case err == nil:
		j.settle(ctx, "replicate", it.FID, func(ctx context.Context) error { return st.DoneQueue(ctx, store.ReplicateQueue, it.FID) })
		j.stats.Replicated.Add(1)
	case errors.Is(err, errNoSource):
		j.log.Error("tracker: file has no copy left to replicate from; needs an operator (fsck)", "fid", it.FID)
		j.settle(ctx, "replicate", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.ReplicateQueue, it.FID, -1, it.FailCount+1)
		})
	case ctx.Err() != nil:
		// Shutting down: the lease expires and someone retries.
	default:
		delay := backoff(it.FailCount)
		j.log.Warn("tracker: replication failed; will retry", "fid", it.FID, "in_seconds", delay, "err", err)
		j.stats.ReplicateFailures.Add(1)
		j.settle(ctx, "replicate", it.FID, func(ctx context.Context) error {
			return st.RetryQueue(ctx, store.ReplicateQueue, it.FID, delay, it.FailCount+1)
		})
	}
}

// unrecordedCopy handles a copy made but not recorded: it is a stray to
// remove. A file deleted meanwhile needs no more copies (nil: done).
func (j *jobs) unrecordedCopy(fid int64, devid int, err error) error {
	j.noteStray(fid, devid, err)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

var (
	// errFinished: the last copy was recorded together with the removal
	// of the queue row.
	errFinished   = errors.New("replication finished")
	errNoSource   = errors.New("no copy of the file exists")
	errSourceDown = errors.New("no readable copy of the file right now")
	errNoDest     = errors.New("no device can take another copy right now")
)

// replicateFID brings fid to its policy. nil means done (or the file is
// gone).
func (j *jobs) replicateFID(ctx context.Context, fid int64, fromDevid int) error {
	st := j.db
	if err := j.copying.lock(ctx, fid); err != nil {
		return err
	}
	defer j.copying.unlock(fid)
	f, err := st.FileByFID(ctx, fid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	holders, err := st.FileDevids(ctx, fid)
	if err != nil {
		return err
	}
	failed := map[int]bool{}
	badSource := map[int]bool{}
	var lastErr error
	for round := 0; round < 16; round++ {
		sn := j.mon.snap()
		cls := sn.classOf(f.DomainID, f.ClassID)
		p := replicationPlan(sn, cls, holders, failed, j.mon.canWrite)
		switch p.verdict {
		case allGood:
			return nil
		case tooGood:
			trimmed, err := j.trimSurplus(ctx, sn, f, holders)
			if err != nil || trimmed == 0 {
				return nil // over-replicated but nothing safe to trim: leave it
			}
			holders = removeInt(holders, trimmed)
			continue
		case noAnswer:
			if lastErr != nil {
				return lastErr
			}
			return errNoDest
		}
		if len(holders) == 0 {
			return errNoSource
		}
		dest := p.ideal
		if len(dest) == 0 {
			dest = p.desperate
		}
		src, ok := j.pickSource(sn, holders, fromDevid, badSource)
		if !ok {
			return errSourceDown
		}
		d := dest[0]
		err := j.copyFID(ctx, sn, f, src, d)
		var se *sourceError
		switch {
		case err == nil:
			j.mon.notePlaced(d.ID, f.Length)
			holders = append(holders, d.ID)
			if replicationPlan(j.mon.snap(), cls, holders, failed, j.mon.canWrite).verdict == allGood {
				// The common case: one commit records the copy and ends the work.
				if err := st.AddCopyDone(ctx, fid, d.ID, store.ReplicateQueue); err != nil {
					return j.unrecordedCopy(fid, d.ID, err)
				}
				return errFinished
			}
			if err := st.AddCopy(ctx, fid, d.ID); err != nil {
				return j.unrecordedCopy(fid, d.ID, err)
			}
		case errors.As(err, &se):
			badSource[src.ID] = true
			lastErr = err
		default:
			// The destination may have stored the copy before failing to
			// answer: nothing would ever reference or remove it.
			j.noteStray(fid, d.ID, err)
			failed[d.ID] = true
			lastErr = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("replication did not settle")
	}
	return lastErr
}

func removeInt(l []int, x int) []int {
	out := l[:0:0]
	for _, v := range l {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// pickSource chooses a readable holder: fromDevid when it can be read,
// else a random one.
func (j *jobs) pickSource(sn *snapshot, holders []int, fromDevid int, bad map[int]bool) (core.Device, bool) {
	var ok []core.Device
	for _, id := range holders {
		d, known := sn.devices[id]
		if !known || bad[id] || !j.mon.canRead(sn, d) {
			continue
		}
		if id == fromDevid {
			return d, true
		}
		ok = append(ok, d)
	}
	if len(ok) == 0 {
		return core.Device{}, false
	}
	return ok[rand.IntN(len(ok))], true
}

// sourceError marks a copy that failed because of its source.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "source: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// errChecksum: the bytes read do not match the stored checksum.
var errChecksum = errors.New("checksum mismatch")

// verifyingReader hashes a stream and, when the last byte is read,
// withholds it and fails if the digest is wrong, so that the destination
// never receives a complete bad copy.
type verifyingReader struct {
	r      io.Reader
	h      hash.Hash
	want   []byte // nil: only compute
	length int64
	n      int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.n >= v.length {
		return 0, io.EOF
	}
	if rem := v.length - v.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := v.r.Read(p)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	v.n += int64(n)
	if v.n == v.length {
		if v.want != nil && string(v.h.Sum(nil)) != string(v.want) {
			return 0, errChecksum
		}
		return n, io.EOF
	}
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// copyTimeout bounds one copy: a minute plus time for the bytes at a slow
// 10 MiB/j.
func copyTimeout(length int64) int64 { return 60 + length/(10<<20) }

// copyFID streams fid from device src to device dst, storage node to
// storage node, checking the stored checksum on the way.
func (j *jobs) copyFID(ctx context.Context, sn *snapshot, f core.File, src, dst core.Device) error {
	st := j.db
	cls, _ := sn.classByID(f.DomainID, f.ClassID)
	storedType, stored, err := st.Checksum(ctx, f.FID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	hashType := cls.HashType
	if stored != nil {
		hashType = storedType
	}
	ctx, cancel := context.WithTimeout(ctx, secondsDur(copyTimeout(f.Length)))
	defer cancel()
	srcURL := fidURL(sn.hosts[src.HostID], src.ID, f.FID, nil, false, sn.settingBool("repl_use_get_port"))
	body, err := j.nodes.Get(ctx, srcURL, 0, -1)
	if err != nil {
		return &sourceError{err}
	}
	defer body.Close()
	if body.Length != f.Length {
		return &sourceError{fmt.Errorf("GET %s: length %d, file is %d bytes", srcURL, body.Length, f.Length)}
	}
	vr := &verifyingReader{r: body, length: f.Length, want: stored}
	switch hashType {
	case core.HashMD5:
		vr.h = md5.New()
	case core.HashSHA1:
		vr.h = sha1.New()
	}
	hdr := http.Header{}
	if storedType == core.HashMD5 && stored != nil {
		hdr.Set("Content-MD5", base64.StdEncoding.EncodeToString(stored))
	}
	j.mon.vivifyDirs(ctx, sn, dst, f.FID)
	dstURL := fidURL(sn.hosts[dst.HostID], dst.ID, f.FID, nil, false, false)
	err = j.nodes.Put(ctx, dstURL, vr, f.Length, hdr)
	if errors.Is(err, errChecksum) {
		return &sourceError{fmt.Errorf("%s does not match the stored checksum", srcURL)}
	}
	var se *node.StatusError
	if err != nil && !errors.As(err, &se) {
		if vr.n < f.Length && !isDestErr(err) {
			return &sourceError{err}
		}
		return err
	}
	if err != nil {
		return err
	}
	j.stats.ReplicatedBytes.Add(f.Length)
	if vr.h == nil {
		return nil
	}
	sum := vr.h.Sum(nil)
	// Unless the destination proved it checks Content-MD5, read its copy
	// back by digest.
	o, _ := j.mon.observed(dst.ID, dst.HostID)
	if hdr.Get("Content-MD5") == "" || !o.rejectBadMD5 {
		got, err := j.nodes.digest(ctx, sn.hosts[dst.HostID], core.FIDPath(dst.ID, f.FID), dstURL, hashType, f.Length)
		if err != nil || string(got) != string(sum) {
			j.deleteURL(ctx, dstURL, false)
			return fmt.Errorf("copy on dev%d does not verify (%x vs %x): %v", dst.ID, got, sum, err)
		}
	}
	if stored == nil && cls.HashType != core.HashNone {
		if err := st.SetChecksum(ctx, f.FID, hashType, sum); err != nil {
			return err
		}
	}
	return nil
}

// isDestErr guesses whether a failed PUT failed on the destination side.
func isDestErr(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne)
}

// trimSurplus deletes one surplus copy of f when another copy checks out;
// it returns the devid trimmed (0: none).
func (j *jobs) trimSurplus(ctx context.Context, sn *snapshot, f core.File, holders []int) (int, error) {
	// Prefer a copy that shares its host with another copy.
	perHost := map[int]int{}
	for _, id := range holders {
		if d, ok := sn.devices[id]; ok {
			perHost[d.HostID]++
		}
	}
	cands := append([]int(nil), holders...)
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	best := 0
	for _, id := range cands {
		d, ok := sn.devices[id]
		if !ok || !j.canDelete(sn, d) || !j.mon.canRead(sn, d) {
			continue
		}
		if best == 0 || perHost[d.HostID] > 1 {
			best = id
		}
	}
	if best == 0 {
		return 0, nil
	}
	// Another readable copy must have the right size.
	verified := false
	for _, id := range holders {
		d, ok := sn.devices[id]
		if id == best || !ok || !j.mon.canRead(sn, d) {
			continue
		}
		size, missing, err := j.nodes.headSize(ctx, fidURL(sn.hosts[d.HostID], id, f.FID, nil, false, true))
		if err == nil && !missing && size == f.Length {
			verified = true
			break
		}
	}
	if !verified {
		return 0, nil
	}
	d := sn.devices[best]
	if err := j.deleteURL(ctx, fidURL(sn.hosts[d.HostID], best, f.FID, nil, false, false), false); err != nil {
		return 0, err
	}
	return best, j.db.RemoveCopy(ctx, f.FID, best)
}

// canDelete reports can_delete_from: host alive, device alive or drain.
func (j *jobs) canDelete(sn *snapshot, d core.Device) bool {
	h, ok := sn.hosts[d.HostID]
	return ok && h.Status == core.HostAlive && (d.Status == core.DevAlive || d.Status == core.DevDrain)
}

// deleteURL DELETEs a copy; 404 counts as deleted. fidDeleted says the
// copy's file is deleted (core.FidDeletedHeader): the node then refuses
// writes of it that arrive late.
func (j *jobs) deleteURL(ctx context.Context, url string, fidDeleted bool) error {
	_, err := j.deleteCopy(ctx, url, fidDeleted)
	return err
}

// deleteCopy DELETEs a copy as deleteURL does; removed tells whether
// there was one (404: there was none).
func (j *jobs) deleteCopy(ctx context.Context, url string, fidDeleted bool) (removed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.NodeTimeout*5)
	defer cancel()
	if fidDeleted {
		err = j.nodes.DeleteFid(ctx, url)
	} else {
		err = j.nodes.Delete(ctx, url)
	}
	if node.IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return err == nil, err
}
