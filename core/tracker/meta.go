package tracker

import (
	"context"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// cmdSetMeta (plugin_meta_set, an extension) changes a file's metadata
// without rewriting it: mogmount's chmod and utimes.
func (s *Server) cmdSetMeta(ctx context.Context, c *call) (protocol.Args, error) {
	f, _, _, _, err := s.lookupKey(ctx, c, false)
	if err != nil {
		return nil, err
	}
	meta, err := protocol.DecodeMeta(c.args)
	if err != nil {
		return nil, err
	}
	if len(meta) == 0 {
		return nil, protocol.Errf("bad_params", "no plugin.meta.* pairs given")
	}
	return nil, s.store().SetFileMeta(ctx, f.FID, meta, s.durability(c))
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
		if e.IsDir && !e.Marker {
			out[p+"_type"] = "dir"
			continue
		}
		// A directory whose marker key is known comes with the marker's
		// fid, size and metadata: a stat of it needs no file_info.
		out[p+"_type"], out[p+"_fid"], out[p+"_size"] = "file", i64toa(e.FID), i64toa(e.Length)
		if e.IsDir {
			out[p+"_type"] = "dir"
		}
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
