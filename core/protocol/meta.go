package protocol

import (
	"fmt"
	"sort"
	"strconv"
)

// Per-file metadata travels in the shape of the original's MetaData
// plugin: plugin.meta.keys=N, plugin.meta.key<i>=name,
// plugin.meta.value<i>=value (i from 0).

// Limits on metadata, enforced by DecodeMeta.
const (
	MaxMetaKeys     = 32
	MaxMetaNameLen  = 64
	MaxMetaValueLen = 255
)

// MetaCreated is the metadata name under which a mogilefs-go tracker
// records when a file was stored (Unix nanoseconds) if its client gave no
// "mtime": files stored by other clients get a stable time too. file_info
// shows it only when asked (created=1), so that its replies to the
// original's clients stay as they were.
const MetaCreated = "mogilefs.created"

// EncodeMeta adds meta to a as plugin.meta.* pairs, names in order; it
// adds nothing when meta is empty.
func EncodeMeta(a Args, meta map[string]string) {
	if len(meta) == 0 {
		return
	}
	names := make([]string, 0, len(meta))
	for k := range meta {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		a["plugin.meta.key"+strconv.Itoa(i)] = k
		a["plugin.meta.value"+strconv.Itoa(i)] = meta[k]
	}
	a["plugin.meta.keys"] = strconv.Itoa(len(names))
}

// DecodeMeta reads the plugin.meta.* pairs of a (nil when there are
// none). A count, name or value out of limits is a bad_params error.
func DecodeMeta(a Args) (map[string]string, error) {
	v := a.Get("plugin.meta.keys")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxMetaKeys {
		return nil, Errf("bad_params", "plugin.meta.keys must be 0..%d", MaxMetaKeys)
	}
	if n == 0 {
		return nil, nil
	}
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := a.Get("plugin.meta.key" + strconv.Itoa(i))
		val := a.Get("plugin.meta.value" + strconv.Itoa(i))
		if k == "" || len(k) > MaxMetaNameLen || len(val) > MaxMetaValueLen {
			return nil, Errf("bad_params", "%s", fmt.Sprintf("metadata %d: name must be 1..%d bytes and value at most %d", i, MaxMetaNameLen, MaxMetaValueLen))
		}
		out[k] = val
	}
	return out, nil
}
