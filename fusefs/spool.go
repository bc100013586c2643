package fusefs

import (
	"io"
	"os"
)

// spoolFile holds a handle's bytes until they are saved: memory for a
// small file, else an unlinked temporary file.
type spoolFile interface {
	io.ReaderAt
	io.WriterAt
	io.Writer // at the end of what Write wrote before
	Truncate(size int64) error
	Close() error
}

// memSpool is a spool in memory up to the mount's SmallFileMax and while
// its MemSpoolLimit allows; past either it moves to a spool file (a new
// small file then costs no file of its own on the mount's disk).
type memSpool struct {
	fs   *FS
	buf  []byte // the content while in memory
	held int64  // bytes of buf counted in fs.memUsed
	pos  int64  // where the next Write goes
	file *os.File
}

// newSpool returns an empty spool.
func (f *FS) newSpool() (spoolFile, error) {
	return &memSpool{fs: f}, nil
}

// newSpoolFile returns a new, already unlinked, spool file.
func (f *FS) newSpoolFile() (*os.File, error) {
	sp, err := os.CreateTemp(f.cfg.SpoolDir, "spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(sp.Name()) // nothing is left behind by a crash
	return sp, nil
}

// fit makes room for size bytes in memory, or moves the content to a
// spool file when it may not be held there.
func (s *memSpool) fit(size int64) error {
	if s.file != nil || size <= int64(len(s.buf)) {
		return nil
	}
	if size <= s.fs.cfg.SmallFileMax {
		extra := size - s.held
		if extra <= 0 || s.fs.memUsed.Add(extra) <= s.fs.cfg.MemSpoolLimit {
			s.held = max(s.held, size)
			s.buf = append(s.buf, make([]byte, size-int64(len(s.buf)))...)
			return nil
		}
		s.fs.memUsed.Add(-extra)
	}
	f, err := s.fs.newSpoolFile()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(s.buf, 0); err != nil {
		f.Close()
		return err
	}
	s.file = f
	s.release()
	return nil
}

// release gives the memory back.
func (s *memSpool) release() {
	s.fs.memUsed.Add(-s.held)
	s.buf, s.held = nil, 0
}

func (s *memSpool) WriteAt(p []byte, off int64) (int, error) {
	if err := s.fit(off + int64(len(p))); err != nil {
		return 0, err
	}
	if s.file != nil {
		return s.file.WriteAt(p, off)
	}
	return copy(s.buf[off:], p), nil
}

func (s *memSpool) Write(p []byte) (int, error) {
	n, err := s.WriteAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *memSpool) ReadAt(p []byte, off int64) (int, error) {
	if s.file != nil {
		return s.file.ReadAt(p, off)
	}
	if off >= int64(len(s.buf)) {
		return 0, io.EOF
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *memSpool) Truncate(size int64) error {
	if s.file == nil && size <= int64(len(s.buf)) {
		clear(s.buf[size:])
		s.buf = s.buf[:size]
		return nil
	}
	if err := s.fit(size); err != nil {
		return err
	}
	if s.file != nil {
		return s.file.Truncate(size)
	}
	return nil
}

func (s *memSpool) Close() error {
	s.release()
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
