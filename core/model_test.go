package core

import (
	"net"
	"testing"
)

func TestFIDPath(t *testing.T) {
	tests := []struct {
		dev  int
		fid  int64
		want string
	}{
		{2, 148056, "/dev2/0/000/148/0000148056.fid"},
		{1, 123, "/dev1/0/000/000/0000000123.fid"},
		{7, 12345678901, "/dev7/1/234/567/12345678901.fid"},
	}
	for _, tt := range tests {
		if got := FIDPath(tt.dev, tt.fid); got != tt.want {
			t.Errorf("FIDPath(%d, %d) = %q; want %q", tt.dev, tt.fid, got, tt.want)
		}
	}
}

func TestHashNames(t *testing.T) {
	for _, n := range []string{"MD5", "SHA-1", "NONE"} {
		ht, ok := HashType(n)
		if !ok || HashName(ht) != n {
			t.Errorf("HashType(%q) round trip failed: %d %v", n, ht, ok)
		}
	}
	if _, ok := HashType("CRC32"); ok {
		t.Error("HashType(CRC32) accepted")
	}
}

func TestParseNetworks(t *testing.T) {
	nets, err := ParseNetworks("10.0.0.0/8, 127.0.0.1 ::1")
	if err != nil || len(nets) != 3 {
		t.Fatalf("ParseNetworks = %v, %v", nets, err)
	}
	for ip, want := range map[string]bool{"10.1.2.3": true, "127.0.0.1": true, "127.0.0.2": false, "::1": true, "192.168.0.1": false} {
		if got := InNetworks(nets, net.ParseIP(ip)); got != want {
			t.Errorf("InNetworks(%s) = %v", ip, got)
		}
	}
	if _, err := ParseNetworks("10.0.0.0/33"); err == nil {
		t.Error("bad network accepted")
	}
}
