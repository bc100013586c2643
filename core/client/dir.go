package client

import (
	"context"
	"strconv"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core/protocol"
)

// Entry is one entry of a directory listing.
type Entry struct {
	Name  string // the full key, or the full sub-prefix ending in "/"
	IsDir bool
	// Known only from trackers with the listing extension (Detailed); for
	// a directory, its marker key's ("a/b/"), when Marker is true.
	FID    int64
	Size   int64
	Meta   map[string]string
	Marker bool
}

// DirPage is one page of a directory listing.
type DirPage struct {
	Entries []Entry
	// Next is the after value for the next page; More tells whether one
	// may follow.
	Next string
	More bool
	// Detailed is true when the tracker answered with fids, sizes and
	// metadata (mogilefs-go's listing extension).
	Detailed bool
}

// skipSubtree returns an after value past every key starting with sub.
func skipSubtree(sub string) string { return sub + strings.Repeat("\xff", max(1, 256-len(sub))) }

// ListDir lists the entries directly below prefix (which ends in "/",
// or is "" for the top). A tracker with the listing extension answers in
// one round trip per page; a plain tracker is asked for keys, and each
// subdirectory found is skipped over with the after argument, so a deep
// tree is not read key by key.
func (t *Tracker) ListDir(ctx context.Context, domain, prefix, after string, limit int) (DirPage, error) {
	a := protocol.Args{"domain": domain, "prefix": prefix, "limit": strconv.Itoa(limit), "delimiter": "/"}
	if after != "" {
		a["after"] = after
	}
	r, err := t.Do(ctx, "list_keys", a)
	if IsCode(err, "none_match") {
		return DirPage{}, nil
	}
	if err != nil {
		return DirPage{}, err
	}
	if _, ok := r["entries"]; ok {
		return parseEntries(r), nil
	}
	// A plain tracker: key_N lines, subtrees to skip by hand.
	var page DirPage
	for {
		n, _ := strconv.Atoi(r["key_count"])
		skipped := false
		for i := 1; i <= n; i++ {
			k := r["key_"+strconv.Itoa(i)]
			rest := strings.TrimPrefix(k, prefix)
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				sub := prefix + rest[:j+1]
				page.Entries = append(page.Entries, Entry{Name: sub, IsDir: true})
				page.Next = skipSubtree(sub)
				skipped = true
				break
			}
			page.Entries = append(page.Entries, Entry{Name: k})
			page.Next = k
		}
		if len(page.Entries) >= limit || (!skipped && n < limit) {
			page.More = len(page.Entries) >= limit || n == limit
			return page, nil
		}
		a["after"] = page.Next
		r, err = t.Do(ctx, "list_keys", a)
		if IsCode(err, "none_match") {
			return page, nil
		}
		if err != nil {
			return page, err
		}
	}
}

func parseEntries(r protocol.Args) DirPage {
	n, _ := strconv.Atoi(r["entries"])
	page := DirPage{Next: r["next_after"], More: r["more"] == "1", Detailed: true}
	page.Entries = make([]Entry, 0, max(0, min(n, 100000)))
	for i := 1; i <= n; i++ {
		p := "entry_" + strconv.Itoa(i)
		e := Entry{Name: r[p], IsDir: r[p+"_type"] == "dir"}
		_, e.Marker = r[p+"_fid"]
		e.Marker = e.Marker && e.IsDir
		if !e.IsDir || e.Marker {
			e.FID, _ = strconv.ParseInt(r[p+"_fid"], 10, 64)
			e.Size, _ = strconv.ParseInt(r[p+"_size"], 10, 64)
		}
		page.Entries = append(page.Entries, e)
	}
	// Metadata ("entry_<i>_meta_<name>") in one pass over the reply.
	for k, v := range r {
		rest, ok := strings.CutPrefix(k, "entry_")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(rest, "_meta_")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 1 || i > len(page.Entries) || page.Entries[i-1].IsDir && !page.Entries[i-1].Marker {
			continue
		}
		e := &page.Entries[i-1]
		if e.Meta == nil {
			e.Meta = map[string]string{}
		}
		e.Meta[name] = v
	}
	return page
}

// SetMeta changes a file's metadata (mogilefs-go trackers only; a plain
// tracker answers unknown_command).
func (t *Tracker) SetMeta(ctx context.Context, domain, key string, meta map[string]string) error {
	a := protocol.Args{"domain": domain, "key": key}
	protocol.EncodeMeta(a, meta)
	return t.metaChange(ctx, "plugin_meta_set", a)
}
