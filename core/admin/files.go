package admin

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

func (c *cmd) needDomainKey() error {
	if c.domain == "" {
		return usagef("--domain is required")
	}
	if c.str("key") == "" {
		return usagef("--key is required")
	}
	return nil
}

// progress reports a transfer on stderr when attached to a terminal.
type progress struct {
	w     io.Writer
	total int64
	n     atomic.Int64
	done  chan struct{}
	start time.Time
}

func (c *cmd) startProgress(total int64) *progress {
	if !c.env.Interactive || (total >= 0 && total < 4<<20) {
		return nil
	}
	p := &progress{w: c.env.Stderr, total: total, done: make(chan struct{}), start: time.Now()}
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				p.print()
				fmt.Fprintln(p.w)
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

func (p *progress) print() {
	n := p.n.Load()
	rate := float64(n) / time.Since(p.start).Seconds() / (1 << 20)
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%6.1f%%  %d / %d MiB  %.1f MiB/s ", float64(n)*100/float64(p.total), n>>20, p.total>>20, rate)
	} else {
		fmt.Fprintf(p.w, "\r%d MiB  %.1f MiB/s ", n>>20, rate)
	}
}

func (p *progress) stop() {
	if p != nil {
		close(p.done)
	}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if r.p != nil {
		r.p.n.Add(int64(n))
	}
	return n, err
}

func (c *cmd) upload() error {
	if err := c.needDomainKey(); err != nil {
		return err
	}
	file := c.str("file")
	if file == "" {
		return usagef("--file is required (a path, or - for standard input)")
	}
	var in io.Reader = c.env.Stdin
	size := int64(-1)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		in, size = f, st.Size()
	}
	class := c.str("class")
	if class == "default" {
		class = ""
	}
	p := c.startProgress(size)
	_, err := c.c.Upload(c.ctx, c.domain, c.str("key"), class, progressReader{in, p}, size, client.UploadOptions{Checksum: c.flag("checksum")})
	p.stop()
	if err != nil {
		return fmt.Errorf("Error writing file: %w", err)
	}
	return nil
}

func (c *cmd) fetch() error {
	if err := c.needDomainKey(); err != nil {
		return err
	}
	file := c.str("file")
	if file == "" {
		return usagef("--file is required (a path, or - for standard output)")
	}
	info, err := c.c.Tracker.FileInfo(c.ctx, c.domain, c.str("key"))
	if err != nil {
		return err
	}
	r, err := c.c.Open(c.ctx, c.domain, c.str("key"))
	if err != nil {
		return err
	}
	defer r.Close()
	var out io.Writer = c.env.Stdout
	var f *os.File
	if file != "-" {
		// Write next to the target and rename, so a failed fetch leaves
		// no partial file under the name.
		f, err = os.CreateTemp(dirOf(file), ".mogfetch-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		out = f
	}
	p := c.startProgress(info.Length)
	n, err := io.Copy(out, progressReader{r, p})
	p.stop()
	if err != nil {
		return err
	}
	if n != info.Length {
		return fmt.Errorf("fetched %d bytes, the tracker says %d", n, info.Length)
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), file)
	}
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func (c *cmd) deleteFile() error {
	if err := c.needDomainKey(); err != nil {
		return err
	}
	if err := c.c.Tracker.Delete(c.ctx, c.domain, c.str("key")); err != nil {
		return fmt.Errorf("Error deleting file: %w", err)
	}
	return nil
}

func (c *cmd) rename() error {
	if c.domain == "" || c.str("old_key") == "" || c.str("new_key") == "" {
		return usagef("usage: mogrename --domain=D --old_key=K --new_key=K")
	}
	return c.c.Tracker.Rename(c.ctx, c.domain, c.str("old_key"), c.str("new_key"))
}

func (c *cmd) fileinfo() error {
	if err := c.needDomainKey(); err != nil {
		return err
	}
	r, err := c.do("file_info", protocol.Args{"domain": c.domain, "key": c.str("key")})
	if err != nil {
		return err
	}
	w := c.env.Stdout
	fmt.Fprintf(w, "- file: %s\n", c.str("key"))
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %8s: %20s\n", k, r[k])
	}
	pr, err := c.do("get_paths", protocol.Args{"domain": c.domain, "key": c.str("key"), "noverify": "1", "pathcount": "99"})
	if err != nil {
		return err
	}
	for i := 1; i <= atoi(pr["paths"]); i++ {
		fmt.Fprintf(w, " - %s\n", pr["path"+strconv.Itoa(i)])
	}
	return nil
}

func (c *cmd) filedebug() error {
	a := protocol.Args{}
	if fid := c.str("fid"); fid != "" {
		a["fid"] = fid
	} else {
		if err := c.needDomainKey(); err != nil {
			return err
		}
		a["domain"], a["key"] = c.domain, c.str("key")
	}
	r, err := c.do("file_debug", a)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(c.env.Stdout, "%s: %s\n", k, r[k])
	}
	return nil
}

func (c *cmd) listkeys() error {
	if c.domain == "" {
		return usagef("--domain is required")
	}
	after := ""
	for {
		keys, next, err := c.c.Tracker.ListKeys(c.ctx, c.domain, c.str("key_prefix"), after, 1000)
		if err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Fprintln(c.env.Stdout, k)
		}
		if len(keys) < 1000 {
			return nil
		}
		after = next
	}
}

func (c *cmd) listfids() error {
	from, _ := strconv.ParseInt(c.str("fromfid"), 10, 64)
	count := int64(100)
	if v := c.str("count"); v != "" {
		count, _ = strconv.ParseInt(v, 10, 64)
	}
	for count > 0 {
		chunk := min(count, 500)
		r, err := c.do("list_fids", protocol.Args{"from": strconv.FormatInt(from, 10), "to": strconv.FormatInt(chunk, 10)})
		if err != nil {
			return err
		}
		n := atoi(r["fid_count"])
		for i := 1; i <= n; i++ {
			p := "fid_" + strconv.Itoa(i) + "_"
			fmt.Fprintf(c.env.Stdout, "fid %s\nclass %s\ndevcount %s\ndomain %s\nkey %s\nlength %s\n\n",
				r[p+"fid"], r[p+"class"], r[p+"devcount"], r[p+"domain"], r[p+"key"], r[p+"length"])
			if f, _ := strconv.ParseInt(r[p+"fid"], 10, 64); f > from {
				from = f
			}
		}
		if int64(n) < chunk {
			return nil
		}
		count -= int64(n)
	}
	return nil
}
