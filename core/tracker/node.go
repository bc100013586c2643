package tracker

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// userAgent identifies the tracker to storage nodes.
const userAgent = "mogilefs-go-tracker/" + Version

// newNodeClient builds the HTTP client used to talk to storage nodes.
func newNodeClient(cfg Config) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.ConnTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       25 * time.Second,
		ResponseHeaderTimeout: cfg.NodeTimeout,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr}
}

// nodeRequest makes one request to a storage node, bounded by the node
// timeout (or the caller's context, whichever ends first).
func (s *Server) nodeRequest(ctx context.Context, method, url string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body == nil {
		req.ContentLength = 0
	}
	return s.http.Do(req)
}

// headSize HEADs url and returns its Content-Length; missing is true on 404.
func (s *Server) headSize(ctx context.Context, url string) (size int64, missing bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.NodeTimeout)
	defer cancel()
	resp, err := s.nodeRequest(ctx, http.MethodHead, url, nil, nil)
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, true, nil
	}
	if resp.StatusCode/100 != 2 {
		return 0, false, fmt.Errorf("HEAD %s: %s", url, resp.Status)
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		return n, false, err
	}
	return resp.ContentLength, false, nil
}

// hostURL returns the base URL of host h for a client at ip: the alt IP
// when the zone rule says so, with the read or write port.
func hostBase(h core.Host, clientIP net.IP, zoneAlt, get bool) string {
	ip := h.IP
	if h.AltIP != "" && h.AltMask != "" {
		use := zoneAlt
		if !use && clientIP != nil {
			if _, n, err := net.ParseCIDR(h.AltMask); err == nil && n.Contains(clientIP) {
				use = true
			}
		}
		if use {
			ip = h.AltIP
		}
	}
	port := h.HTTPPort
	if get {
		port = h.GetPort()
	}
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return "http://" + ip + ":" + strconv.Itoa(port)
}

// fidURL is the URL of fid on device d as seen by a client.
func fidURL(h core.Host, devid int, fid int64, clientIP net.IP, zoneAlt, get bool) string {
	return hostBase(h, clientIP, zoneAlt, get) + core.FIDPath(devid, fid)
}

// digest computes the checksum of the file at path on host h: first by
// the side channel, then by streaming it over HTTP.
func (s *Server) digest(ctx context.Context, h core.Host, uri, fullURL string, hashType int, size int64) ([]byte, error) {
	alg := core.HashName(hashType)
	if sum, err := s.digestSide(ctx, h, uri, alg, size); err == nil {
		return sum, nil
	} else {
		s.log.Debug("tracker: side-channel digest failed, falling back to HTTP", "host", h.Name, "uri", uri, "err", err)
	}
	var hh hash.Hash = md5.New()
	if hashType == core.HashSHA1 {
		hh = sha1.New()
	}
	resp, err := s.nodeRequest(ctx, http.MethodGet, fullURL, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", fullURL, resp.Status)
	}
	if _, err := io.Copy(hh, resp.Body); err != nil {
		return nil, err
	}
	return hh.Sum(nil), nil
}

// digestSide asks a mogstored side channel for a digest.
func (s *Server) digestSide(ctx context.Context, h core.Host, uri, alg string, size int64) ([]byte, error) {
	timeout := s.cfg.NodeTimeout + time.Duration(size/(2<<20))*time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.IP, strconv.Itoa(s.cfg.SideChannelPort)))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "%s %s\r\n", alg, uri); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	prefix := uri + " " + alg + "="
	if !strings.HasPrefix(line, prefix) {
		return nil, fmt.Errorf("side channel: unexpected answer %q", line)
	}
	v := line[len(prefix):]
	if v == "-1" {
		return nil, fmt.Errorf("side channel: %s missing", uri)
	}
	return hex.DecodeString(v)
}
