package protocol

import (
	"strings"
	"testing"
)

func TestMetaCodec(t *testing.T) {
	a := Args{}
	EncodeMeta(a, map[string]string{"mtime": "1700000000", "mode": "644"})
	if a["plugin.meta.keys"] != "2" || a["plugin.meta.key0"] != "mode" || a["plugin.meta.value1"] != "1700000000" {
		t.Errorf("EncodeMeta = %v", a)
	}
	m, err := DecodeMeta(a)
	if err != nil || len(m) != 2 || m["mode"] != "644" || m["mtime"] != "1700000000" {
		t.Errorf("DecodeMeta = %v, %v", m, err)
	}
	empty := Args{}
	EncodeMeta(empty, nil)
	if len(empty) != 0 {
		t.Errorf("EncodeMeta(nil) = %v", empty)
	}
	if m, err := DecodeMeta(Args{"plugin.meta.keys": "0"}); m != nil || err != nil {
		t.Errorf("no pairs = %v, %v", m, err)
	}
	for _, bad := range []Args{
		{"plugin.meta.keys": "x"},
		{"plugin.meta.keys": "33"},
		{"plugin.meta.keys": "1"},
		{"plugin.meta.keys": "1", "plugin.meta.key0": strings.Repeat("n", 65)},
		{"plugin.meta.keys": "1", "plugin.meta.key0": "n", "plugin.meta.value0": strings.Repeat("v", 256)},
	} {
		if _, err := DecodeMeta(bad); err == nil || !strings.Contains(err.Error(), "bad_params") {
			t.Errorf("DecodeMeta(%v) = %v; want bad_params", bad, err)
		}
	}
}
