package storage

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/listener"
)

// ServeSide answers side-channel connections on ln until ctx ends or ln
// fails: `size <uri>`, `MD5 <uri> [reason]`, `SHA-1 <uri> [reason]` and
// `watch` (per-device disk utilisation every second).
func (s *Server) ServeSide(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ln = listener.Limit(ln, s.cfg.MaxSideConns, s.log)
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sideConn(ctx, c)
		}()
	}
}

// sideIdleTimeout closes a side-channel connection that sends no request
// for this long (a tracker's fsck asks every few seconds while it runs).
const sideIdleTimeout = 10 * time.Minute

// maxSideLine bounds a side-channel request line.
const maxSideLine = 8192

func (s *Server) sideConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReaderSize(c, maxSideLine)
	w := bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(sideIdleTimeout))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			w.WriteString("ERROR: line too long\r\n")
			w.Flush()
			return
		}
		if err != nil {
			return
		}
		cmd := strings.TrimRight(string(line), "\r\n")
		if cmd == "" {
			continue
		}
		if cmd == "watch" {
			s.watch(ctx, c)
			return
		}
		w.WriteString(s.sideCommand(ctx, cmd))
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// sideCommand answers one side-channel request line (with its \r\n).
func (s *Server) sideCommand(ctx context.Context, line string) string {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return ""
	}
	word := fields[0]
	switch word {
	case "size", "MD5", "SHA-1":
	default:
		return "ERROR: unknown command: " + word + "\r\n"
	}
	if len(fields) < 2 {
		return "ERROR: no uri given\r\n"
	}
	uri := fields[1]
	if strings.Contains(uri, "..") {
		return "ERROR: uri invalid (contains ..)\r\n"
	}
	first, rest, err := splitPath(uri)
	if err != nil || rest == "" {
		if word == "size" {
			return uri + " -1\r\n"
		}
		return uri + " " + word + "=-1\r\n"
	}
	dev, err := s.openRoot(first)
	if err != nil {
		if word == "size" {
			return uri + " -1\r\n"
		}
		return uri + " " + word + "=-1\r\n"
	}
	defer s.dirs.release(dev)
	root := dev.root
	if word == "size" {
		var st fs.FileInfo
		err := s.beneath(dev, rest, func(dir *os.Root, name string) (err error) {
			st, err = dir.Stat(name)
			return err
		})
		if err != nil || !st.Mode().IsRegular() {
			return uri + " -1\r\n"
		}
		return fmt.Sprintf("%s %d\r\n", uri, st.Size())
	}
	if len(fields) > 2 && fields[2] == "fsck" {
		gate := s.fsck.get(first)
		select {
		case gate <- struct{}{}:
			defer func() { <-gate }()
		case <-ctx.Done():
			return ""
		}
	}
	f, err := root.Open(rest)
	if err != nil {
		return uri + " " + word + "=-1\r\n"
	}
	defer f.Close()
	var h hash.Hash = md5.New()
	if word == "SHA-1" {
		h = sha1.New()
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var off int64
	for {
		n, err := f.Read(*buf)
		h.Write((*buf)[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return uri + " " + word + "=-1\r\n"
			}
			return fmt.Sprintf("ERR read %s at %d failed\r\n", uri, off)
		}
	}
	return uri + " " + word + "=" + hex.EncodeToString(h.Sum(nil)) + "\r\n"
}

// watch streams `<devid>\t<util>\n` for every device, then `.\n`, once a
// second, until the connection or ctx ends. util is the percentage of
// time the device's block device was busy, or "-" when unknown.
func (s *Server) watch(ctx context.Context, c net.Conn) {
	prev := map[string]diskTicks{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		devs, _ := s.Devices()
		var b strings.Builder
		for _, d := range devs {
			util := "-"
			if cur, ok := readTicks(s.cfg.DocRoot + "/" + d); ok {
				if p, ok := prev[d]; ok && cur.at.After(p.at) {
					busy := float64(cur.ioMillis-p.ioMillis) / float64(cur.at.Sub(p.at).Milliseconds()) * 100
					util = fmt.Sprintf("%.2f", min(max(busy, 0), 100))
				}
				prev[d] = cur
			}
			b.WriteString(strings.TrimPrefix(d, "dev") + "\t" + util + "\n")
		}
		b.WriteString(".\n")
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, b.String()); err != nil {
			return
		}
	}
}

type diskTicks struct {
	ioMillis int64
	at       time.Time
}

// readTicks finds the block device holding dir in /proc/diskstats and
// returns its milliseconds spent doing I/O.
func readTicks(dir string) (diskTicks, bool) {
	major, minor, ok := devNumbers(dir)
	if !ok || major == 0 {
		return diskTicks{}, false
	}
	data, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return diskTicks{}, false
	}
	ms, ok := ioMillis(string(data), major, minor)
	if !ok {
		return diskTicks{}, false
	}
	return diskTicks{ioMillis: ms, at: time.Now()}, true
}

// ioMillis finds the device major:minor in /proc/diskstats text and
// returns its milliseconds spent doing I/O (the 13th column). The kernel
// pads the number columns with runs of spaces.
func ioMillis(diskstats string, major, minor uint64) (int64, bool) {
	maj, mnr := strconv.FormatUint(major, 10), strconv.FormatUint(minor, 10)
	for _, line := range strings.Split(diskstats, "\n") {
		f := strings.Fields(line)
		if len(f) < 13 || f[0] != maj || f[1] != mnr {
			continue
		}
		ms, err := strconv.ParseInt(f[12], 10, 64)
		return ms, err == nil
	}
	return 0, false
}
