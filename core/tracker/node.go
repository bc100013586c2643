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
	"sync"
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
	// sideDown holds, by side-channel address, until when a side channel
	// that failed is not asked again (copySize goes to HTTP meanwhile).
	sideDown *sync.Map
}

// sideRetry is how long copySize leaves a side channel alone that did
// not answer.
const sideRetry = time.Minute

// copySize returns the size of fid's file on device devid of host h and
// whether it is missing: asked on the side channel (a kept connection, a
// third of an HTTP request's cost), else by a HEAD of url, which also
// confirms a file the side channel says is missing.
func (n nodeCalls) copySize(ctx context.Context, h core.Host, devid int, fid int64, url string) (size int64, missing bool, err error) {
	addr := net.JoinHostPort(h.IP, strconv.Itoa(n.cfg.SideChannelPort))
	if until, ok := n.sideDown.Load(addr); !ok || time.Now().After(until.(time.Time)) {
		sctx, cancel := context.WithTimeout(ctx, n.cfg.NodeTimeout)
		size, err := n.Size(sctx, addr, core.FIDPath(devid, fid))
		cancel()
		switch {
		case err == nil:
			return size, false, nil
		case !core.Is(core.NotFound, err) && ctx.Err() == nil:
			n.sideDown.Store(addr, time.Now().Add(sideRetry))
			n.log.Debug("tracker: side channel did not answer a size; using HTTP for a minute", "addr", addr, "err", err)
		}
	}
	return n.headSize(ctx, url)
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
