// Package node is the one client of storage nodes (mogstored, ours or the
// original's), used by the tracker, the client library, the mount and
// mogadm: HTTP GET, HEAD, PUT, DELETE and MKCOL on the node's web port,
// and the side channel (digests, the I/O watch). Connections are reused,
// connecting and waiting for an answer are bounded, bodies stream (a PUT
// of a file sends it with sendfile), and every error carries a kind: a
// node that cannot be reached is core.Unavailable, a 404 core.NotFound,
// a full device core.NoSpace.
package node

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Options tune a Client; zero values take the defaults.
type Options struct {
	// ConnectTimeout bounds connecting to a node (default 3 s).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the answer's headers once the
	// request is sent (default 60 s). Bodies may stream for longer: the
	// caller's context bounds them.
	HeaderTimeout time.Duration
	// MaxIdlePerHost is how many idle connections are kept per node
	// (default 16).
	MaxIdlePerHost int
	// BufferSize is the size of each connection's read and write buffers
	// (default net/http's, 4 KiB); streaming clients want more.
	BufferSize int
	// UserAgent is sent with every request.
	UserAgent string
}

// Client talks to storage nodes. It is safe for concurrent use.
type Client struct {
	hc     *http.Client
	ua     string
	dialer net.Dialer
	sides  sidePool // idle side-channel connections, for Size
}

// New returns a client with the given options.
func New(o Options) *Client {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 60 * time.Second
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = 16
	}
	d := net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          8 * o.MaxIdlePerHost,
		MaxIdleConnsPerHost:   o.MaxIdlePerHost,
		IdleConnTimeout:       25 * time.Second,
		ResponseHeaderTimeout: o.HeaderTimeout,
		DisableCompression:    true,
		WriteBufferSize:       o.BufferSize,
		ReadBufferSize:        o.BufferSize,
	}
	return &Client{hc: &http.Client{Transport: tr}, ua: o.UserAgent, dialer: d}
}

// CloseIdle closes the idle connections.
func (c *Client) CloseIdle() {
	c.hc.CloseIdleConnections()
	c.sides.closeAll()
}

// StatusError is an answer with a status other than the one asked for.
type StatusError struct {
	Method, URL string
	Code        int
	Status      string // "404 Not Found"
	Message     string // the start of the node's body, if any
}

func (e *StatusError) Error() string {
	msg := e.Method + " " + e.URL + ": " + e.Status
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrorKind classifies the status.
func (e *StatusError) ErrorKind() core.Kind {
	switch {
	case e.Code == http.StatusNotFound:
		return core.NotFound
	case e.Code == http.StatusForbidden:
		return core.Permission
	case e.Code == http.StatusInsufficientStorage:
		return core.NoSpace
	case e.Code == http.StatusBadRequest || e.Code == http.StatusRequestedRangeNotSatisfiable:
		return core.Invalid
	case e.Code >= 500:
		return core.Unavailable
	}
	return core.Other
}

// statusError reads the start of resp's body into a StatusError and
// closes it.
func statusError(method, url string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return &StatusError{Method: method, URL: url, Code: resp.StatusCode, Status: resp.Status, Message: strings.TrimSpace(string(msg))}
}

// transportError gives a failed exchange its kind: Unavailable, unless the
// caller's context ended (then the context's error is kept).
func transportError(ctx context.Context, method, url string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	return core.E(core.Unavailable, method+" "+url, err)
}

// do sends one request. body of size bytes (-1: unknown, sent chunked).
func (c *Client) do(ctx context.Context, method, url string, body io.Reader, size int64, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, core.E(core.Invalid, method+" "+url, err)
	}
	req.ContentLength = size
	if body == nil || size == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v) // canonicalizes k: "Content-MD5" works as written
		}
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	switch method {
	case http.MethodPut, http.MethodDelete, http.MethodPost, "MOVE", "COPY":
		req.Header.Set(core.SentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, method, url, err)
	}
	return resp, nil
}

// drain reads what is left of a short body so that the connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// Put streams body (size bytes; -1 when unknown: chunked) to url. Any 2xx
// answer is success. hdr adds headers (Content-MD5, ...).
func (c *Client) Put(ctx context.Context, url string, body io.Reader, size int64, hdr http.Header) error {
	resp, err := c.do(ctx, http.MethodPut, url, body, size, hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return statusError(http.MethodPut, url, resp)
	}
	drain(resp)
	return nil
}

// Info is what HEAD says of a file.
type Info struct {
	Size     int64
	Modified time.Time // zero when the node did not say
}

// Head returns the size and modification time of the file at url; a
// missing file is an error of kind core.NotFound.
func (c *Client) Head(ctx context.Context, url string) (Info, error) {
	resp, err := c.do(ctx, http.MethodHead, url, nil, 0, nil)
	if err != nil {
		return Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Info{}, statusError(http.MethodHead, url, resp)
	}
	in := Info{Size: resp.ContentLength}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil {
			return Info{}, core.E(core.Invalid, "HEAD "+url, fmt.Errorf("Content-Length %q", cl))
		}
		in.Size = n
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		in.Modified = t
	}
	return in, nil
}

// Body is an open GET: the bytes, how many there are and the answer's
// headers.
type Body struct {
	io.ReadCloser
	Length int64 // -1 when the node did not say
	Header http.Header
}

// Get opens bytes [from, to) of the file at url (to < 0: to its end). A
// range that starts at or past the end reads as empty.
func (c *Client) Get(ctx context.Context, url string, from, to int64) (*Body, error) {
	var hdr http.Header
	ranged := from > 0 || to >= 0
	if ranged {
		if to >= 0 && from >= to {
			return &Body{ReadCloser: http.NoBody}, nil
		}
		rng := "bytes=" + strconv.FormatInt(from, 10) + "-"
		if to >= 0 {
			rng += strconv.FormatInt(to-1, 10)
		}
		hdr = http.Header{"Range": {rng}}
	}
	resp, err := c.do(ctx, http.MethodGet, url, nil, 0, hdr)
	if err != nil {
		return nil, err
	}
	switch {
	case ranged && resp.StatusCode == http.StatusPartialContent, !ranged && resp.StatusCode == http.StatusOK:
		return &Body{ReadCloser: resp.Body, Length: resp.ContentLength, Header: resp.Header}, nil
	case ranged && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		drain(resp)
		return &Body{ReadCloser: http.NoBody, Header: resp.Header}, nil
	}
	return nil, statusError(http.MethodGet, url, resp)
}

// Fetch reads a small file whole (at most limit bytes): usage files, probes.
func (c *Client) Fetch(ctx context.Context, url string, limit int64) ([]byte, http.Header, error) {
	b, err := c.Get(ctx, url, 0, -1)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, limit))
	if err != nil {
		return nil, nil, transportError(ctx, http.MethodGet, url, err)
	}
	return data, b.Header, nil
}

// Delete removes the file at url; a missing one is an error of kind
// core.NotFound.
func (c *Client) Delete(ctx context.Context, url string) error {
	return c.delete(ctx, url, nil)
}

// DeleteFid removes the copy at url of a fid whose file is deleted
// (core.FidDeletedHeader): the node refuses later writes of it for a
// while. A missing one is an error of kind core.NotFound.
func (c *Client) DeleteFid(ctx context.Context, url string) error {
	return c.delete(ctx, url, http.Header{core.FidDeletedHeader: {"1"}})
}

func (c *Client) delete(ctx context.Context, url string, hdr http.Header) error {
	resp, err := c.do(ctx, http.MethodDelete, url, nil, 0, hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return statusError(http.MethodDelete, url, resp)
	}
	drain(resp)
	return nil
}

// Probe sends a request without a body (MKCOL, a GET of a node's root)
// and returns the status code; the error is only for a node that did not
// answer.
func (c *Client) Probe(ctx context.Context, method, url string) (int, error) {
	resp, err := c.do(ctx, method, url, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	drain(resp)
	return resp.StatusCode, nil
}

// side opens a side-channel connection to addr (host:port), with ctx's
// deadline on it.
func (c *Client) side(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, transportError(ctx, "side channel", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
}

// Digest asks the side channel at addr for the digest (alg: MD5, SHA-1)
// of the file at uri (/devN/...); a missing file is core.NotFound.
func (c *Client) Digest(ctx context.Context, addr, alg, uri string) ([]byte, error) {
	conn, err := c.side(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := fmt.Fprintf(conn, "%s %s\r\n", alg, uri); err != nil {
		return nil, transportError(ctx, "side channel", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return nil, transportError(ctx, "side channel", addr, err)
	}
	line = strings.TrimRight(line, "\r\n")
	v, ok := strings.CutPrefix(line, uri+" "+alg+"=")
	switch {
	case !ok:
		return nil, core.E(core.Other, "side channel "+addr, fmt.Errorf("unexpected answer %q", line))
	case v == "-1":
		return nil, core.E(core.NotFound, "side channel "+addr, fmt.Errorf("%s missing", uri))
	}
	sum, err := hex.DecodeString(v)
	if err != nil {
		return nil, core.E(core.Other, "side channel "+addr, fmt.Errorf("bad digest %q", v))
	}
	return sum, nil
}

// ErrNoWatch: the node has no I/O statistics to report.
var ErrNoWatch = core.Errorf(core.Unsupported, "node: the side channel's watch is not available")

// Watch follows the side channel's I/O report at addr until ctx ends or
// the node closes the connection, calling report for each device line
// (util is "" when the node does not know it). It returns nil when the
// node closed the connection after reporting, ErrNoWatch when it refused,
// and an error when the connection could not be used. silence bounds the
// wait for each line.
func (c *Client) Watch(ctx context.Context, addr string, silence time.Duration, report func(devid int, util string)) error {
	conn, err := c.side(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, "watch\n"); err != nil {
		return transportError(ctx, "side channel", addr, err)
	}
	r := bufio.NewReaderSize(conn, 4096)
	got := false
	for {
		conn.SetReadDeadline(time.Now().Add(silence))
		line, err := r.ReadString('\n')
		if err != nil {
			if got {
				return nil
			}
			return transportError(ctx, "side channel", addr, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "ERR") {
			return ErrNoWatch
		}
		id, util, ok := strings.Cut(line, "\t")
		devid, err := strconv.Atoi(id)
		if !ok || err != nil {
			continue // "." ends a report
		}
		got = true
		if _, err := strconv.ParseFloat(util, 64); err != nil {
			util = "" // "-": not known
		}
		report(devid, util)
	}
}

// IsStatus reports whether err is an answer of a node with status code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// Copy asks the node holding src to copy it to dst (WebDAV COPY, which
// replaces an existing dst); Move renames it (WebDAV MOVE). Both names are
// on one node. A node that does not know the method answers 400, 405 or
// 501: an error of kind core.Unsupported.
func (c *Client) Copy(ctx context.Context, src, dst string) error {
	return c.transfer(ctx, "COPY", src, dst)
}

// Move renames src to dst on the node that holds it; see Copy.
func (c *Client) Move(ctx context.Context, src, dst string) error {
	return c.transfer(ctx, "MOVE", src, dst)
}

func (c *Client) transfer(ctx context.Context, method, src, dst string) error {
	resp, err := c.do(ctx, method, src, nil, 0, http.Header{"Destination": {dst}, "Overwrite": {"T"}})
	if err != nil {
		return err
	}
	if resp.StatusCode/100 == 2 {
		drain(resp)
		return nil
	}
	err = statusError(method, src, resp)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return core.E(core.Unsupported, "the storage node cannot "+method, err)
	}
	return err
}

// FidFile is one fid file of a device, as its storage node lists it.
type FidFile struct {
	FID   int64
	MTime time.Time
	Size  int64
	Path  string // below the device directory: where the next page starts
}

// ListFids returns up to limit fid files of device devid on the node at
// baseURL (http://ip:port) after path after, in path order (see
// core.FidListHeader). A node that does not list them (the original's)
// is an error of kind core.Unsupported.
func (c *Client) ListFids(ctx context.Context, baseURL string, devid int, after string, limit int) ([]FidFile, error) {
	url := fmt.Sprintf("%s/dev%d/?list_fids=1&limit=%d&after=%s", baseURL, devid, limit, neturl.QueryEscape(after))
	data, hdr, err := c.Fetch(ctx, url, 64<<20)
	if err != nil {
		return nil, err
	}
	if hdr.Get(core.FidListHeader) != "1" {
		return nil, core.Errorf(core.Unsupported, "node: "+baseURL+" does not list the fids of its devices")
	}
	var out []FidFile
	bad := func(line string) error {
		return core.Errorf(core.Other, fmt.Sprintf("node: bad fid listing line %q from %s", line, url))
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, bad(line)
		}
		var n [3]int64 // fid, mtime, size
		for i := range n {
			if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				return nil, bad(line)
			}
		}
		out = append(out, FidFile{FID: n[0], MTime: time.Unix(n[1], 0), Size: n[2], Path: f[3]})
	}
	return out, nil
}

// DeleteFids removes the files of deleted fids on device devid of the
// node at baseURL (http://host:port) in one request (see
// core.FidDeleteHeader), and returns each fid's status as a DELETE of its
// file with core.FidDeletedHeader would have had (204, 404, ...). A node
// that cannot (the original's) answers core.Unsupported.
func (c *Client) DeleteFids(ctx context.Context, baseURL string, devid int, fids []int64) (map[int64]int, error) {
	url := fmt.Sprintf("%s/dev%d/?delete_fids=1", baseURL, devid)
	var body strings.Builder
	for _, fid := range fids {
		body.WriteString(strconv.FormatInt(fid, 10))
		body.WriteByte('\n')
	}
	resp, err := c.do(ctx, http.MethodPost, url, strings.NewReader(body.String()), int64(body.Len()), nil)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.Header.Get(core.FidDeleteHeader) != "1" {
		return nil, core.Errorf(core.Unsupported, "node: "+baseURL+" does not delete many fids at once")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(http.MethodPost, url, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(fids))*32+1024))
	if err != nil {
		return nil, transportError(ctx, http.MethodPost, url, err)
	}
	out := make(map[int64]int, len(fids))
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		var fid int64
		var code int
		var err1, err2 error
		if len(f) == 2 {
			fid, err1 = strconv.ParseInt(f[0], 10, 64)
			code, err2 = strconv.Atoi(f[1])
		}
		if len(f) != 2 || err1 != nil || err2 != nil {
			return nil, core.Errorf(core.Other, fmt.Sprintf("node: bad deletion line %q from %s", line, url))
		}
		out[fid] = code
	}
	return out, nil
}
