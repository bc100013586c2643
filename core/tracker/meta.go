package tracker

import (
	"context"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Per-file metadata travels in the shape of the original's MetaData
// plugin: plugin.meta.keys=N, plugin.meta.key<i>=name,
// plugin.meta.value<i>=value (i from 0).

// Limits on metadata.
const (
	maxMetaKeys     = 32
	maxMetaNameLen  = 64
	maxMetaValueLen = 255
)

// metaArgs reads plugin.meta.* pairs from a request.
func metaArgs(a protocol.Args) (map[string]string, error) {
	v := a.Get("plugin.meta.keys")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxMetaKeys {
		return nil, protocol.Errf("bad_params", "plugin.meta.keys must be 0..%d", maxMetaKeys)
	}
	out := map[string]string{}
	for i := 0; i < n; i++ {
		k := a.Get("plugin.meta.key" + strconv.Itoa(i))
		val := a.Get("plugin.meta.value" + strconv.Itoa(i))
		if k == "" || len(k) > maxMetaNameLen || len(val) > maxMetaValueLen {
			return nil, protocol.Errf("bad_params", "metadata %d: name must be 1..%d bytes and value at most %d", i, maxMetaNameLen, maxMetaValueLen)
		}
		out[k] = val
	}
	return out, nil
}

// putMeta adds metadata to a reply as plugin.meta.* pairs.
func putMeta(out protocol.Args, meta map[string]string) {
	if len(meta) == 0 {
		return
	}
	i := 0
	for k, v := range meta {
		out["plugin.meta.key"+strconv.Itoa(i)] = k
		out["plugin.meta.value"+strconv.Itoa(i)] = v
		i++
	}
	out["plugin.meta.keys"] = strconv.Itoa(i)
}

// cmdSetMeta (plugin_meta_set, an extension) changes a file's metadata
// without rewriting it: mogmount's chmod and utimes.
func (s *Server) cmdSetMeta(ctx context.Context, c *call) (protocol.Args, error) {
	f, _, _, _, err := s.lookupKey(ctx, c, false)
	if err != nil {
		return nil, err
	}
	meta, err := metaArgs(c.args)
	if err != nil {
		return nil, err
	}
	if len(meta) == 0 {
		return nil, protocol.Errf("bad_params", "no plugin.meta.* pairs given")
	}
	return nil, s.store().SetFileMeta(ctx, f.FID, meta)
}

// listDir answers list_keys with delimiter= (an extension): the entries
// directly below prefix, sub-prefixes once each, with each file's fid,
// size and metadata, so that a directory listing is one round trip per
// thousand entries.
func (s *Server) listDir(ctx context.Context, dmid int, c *call, limit int) (protocol.Args, error) {
	prefix, after, delim := c.args.Get("prefix"), c.args.Get("after"), c.args.Get("delimiter")
	es, more, err := s.store().ListDir(ctx, dmid, prefix, delim, after, limit)
	if err != nil {
		return nil, err
	}
	out := protocol.Args{"entries": itoa(len(es)), "more": "0"}
	if more {
		out["more"] = "1"
	}
	for i, e := range es {
		p := "entry_" + itoa(i+1)
		out[p] = e.Name
		if e.IsDir {
			out[p+"_type"] = "dir"
			continue
		}
		out[p+"_type"], out[p+"_fid"], out[p+"_size"] = "file", i64toa(e.FID), i64toa(e.Length)
		for k, v := range e.Meta {
			out[p+"_meta_"+k] = v
		}
	}
	if len(es) > 0 {
		last := es[len(es)-1]
		out["next_after"] = last.Name
		if last.IsDir {
			// Resume past the whole subtree.
			out["next_after"] = last.Name + strings.Repeat("\xff", max(1, 256-len(last.Name)))
		}
	}
	return out, nil
}
