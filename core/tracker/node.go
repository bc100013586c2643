package tracker

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/node"
)

// userAgent identifies the tracker to storage nodes.
const userAgent = "mogilefs-go-tracker/" + Version

// newNodeClient builds the client of the storage nodes.
func newNodeClient(cfg Config) *node.Client {
	return node.New(node.Options{
		ConnectTimeout: cfg.ConnTimeout,
		HeaderTimeout:  cfg.NodeTimeout,
		MaxIdlePerHost: 32,
		UserAgent:      userAgent,
	})
}

// nodeCalls are the storage-node requests both the query handlers and
// the jobs make, bounded by the tracker's timeouts.
type nodeCalls struct {
	*node.Client
	cfg *Config
	log *slog.Logger
}

// headSize HEADs url and returns its Content-Length; missing is true on 404.
func (n nodeCalls) headSize(ctx context.Context, url string) (size int64, missing bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.NodeTimeout)
	defer cancel()
	in, err := n.Head(ctx, url)
	if node.IsStatus(err, http.StatusNotFound) {
		return 0, true, nil
	}
	return in.Size, false, err
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
func (n nodeCalls) digest(ctx context.Context, h core.Host, uri, fullURL string, hashType int, size int64) ([]byte, error) {
	alg := core.HashName(hashType)
	sideCtx, cancel := context.WithTimeout(ctx, n.cfg.NodeTimeout+time.Duration(size/(2<<20))*time.Second)
	sum, err := n.Digest(sideCtx, net.JoinHostPort(h.IP, strconv.Itoa(n.cfg.SideChannelPort)), alg, uri)
	cancel()
	if err == nil {
		return sum, nil
	}
	n.log.Debug("tracker: side-channel digest failed, falling back to HTTP", "host", h.Name, "uri", uri, "err", err)
	var hh hash.Hash = md5.New()
	if hashType == core.HashSHA1 {
		hh = sha1.New()
	}
	b, err := n.Get(ctx, fullURL, 0, -1)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if _, err := io.Copy(hh, b); err != nil {
		return nil, err
	}
	return hh.Sum(nil), nil
}
