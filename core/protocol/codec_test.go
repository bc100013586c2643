package protocol

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"a b", "a+b"},
		{"http://10.0.0.1:7500/dev1/0/000/000/0000000123.fid", "http://10.0.0.1:7500/dev1/0/000/000/0000000123.fid"},
		{"a=b&c", "a%3Db%26c"},
		{"+%", "%2B%25"},
		{"MultipleHosts()", "MultipleHosts%28%29"},
		{"line\n", "line%0A"},
		{"é", "%C3%A9"},
		{`back\slash,comma-dash_under.dot`, `back\slash,comma-dash_under.dot`},
		{"Target key name already exists; can't overwrite.", "Target+key+name+already+exists%3B+can%27t+overwrite."},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if got := Unescape(tt.want); got != tt.in {
			t.Errorf("Unescape(%q) = %q; want %q", tt.want, got, tt.in)
		}
	}
}

func TestUnescapeOddities(t *testing.T) {
	tests := []struct{ in, want string }{
		{"%2b", "+"},     // lower-case hex accepted
		{"%zz", "%zz"},   // invalid escape kept
		{"%2", "%2"},     // truncated escape kept
		{"a+%2B", "a +"}, // '+' first, then %XX
	}
	for _, tt := range tests {
		if got := Unescape(tt.in); got != tt.want {
			t.Errorf("Unescape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeArgs(t *testing.T) {
	a := DecodeArgs("domain=test&key=a+b%26c&&0&empty=&dup=1&dup=2&eq=x=y")
	want := map[string]string{"domain": "test", "key": "a b&c", "empty": "", "dup": "1\x002", "eq": "x"}
	if len(a) != len(want) {
		t.Fatalf("DecodeArgs gave %v; want %v", a, want)
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("arg %q = %q; want %q", k, a[k], v)
		}
	}
	if !a.Has("empty") || a.Has("missing") || a.Bool("empty") {
		t.Errorf("Has/Bool wrong on %v", a)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line    string
		ok      bool
		command string
		nargs   int
	}{
		{"noop", true, "noop", 0},
		{"NOOP ", true, "noop", 0},
		{"get_paths domain=d&key=k", true, "get_paths", 2},
		{"get_paths    domain=d", true, "get_paths", 1},
		{" noop", false, "", 0},
		{"", false, "", 0},
		{"&&&", false, "", 0},
	}
	for _, tt := range tests {
		req, ok := ParseRequest(tt.line)
		if ok != tt.ok || req.Command != tt.command || len(req.Args) != tt.nargs {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %q with %d args, %v", tt.line, req, ok, tt.command, tt.nargs, tt.ok)
		}
	}
}

func TestReplyLines(t *testing.T) {
	if got := OKLine(nil); got != "OK \r\n" {
		t.Errorf("OKLine(nil) = %q", got)
	}
	if got := ErrLine("no_domain", "", ""); got != "ERR no_domain No+domain+provided\r\n" {
		t.Errorf("ErrLine = %q", got)
	}
	if got := ErrLine("unknown_key", "", "7"); got != "ERR unknown_key unknown_key 7\r\n" {
		t.Errorf("ErrLine with callid = %q", got)
	}
	a, err := ParseReply("OK key_count=1&key_1=a+b\r\n")
	if err != nil || a["key_1"] != "a b" {
		t.Errorf("ParseReply OK = %v, %v", a, err)
	}
	a, err = ParseReply("OK 12 fid=3")
	if err != nil || a["fid"] != "3" {
		t.Errorf("ParseReply historic = %v, %v", a, err)
	}
	_, err = ParseReply("ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29.")
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "none_match" || pe.Text != "No keys match that pattern and after-value (if any)." {
		t.Errorf("ParseReply ERR = %v", err)
	}
	if !errors.Is(err, &Error{Code: "none_match"}) {
		t.Errorf("errors.Is by code failed")
	}
	if _, err := ParseReply("garbage"); err == nil {
		t.Errorf("ParseReply(garbage) succeeded")
	}
}

func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{"a=b", "a=%ZZ&b=+", "x=1&x=2&&0", "k=%C3%A9=x", "=", "&=&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := DecodeArgs(s)
		// Re-encoding and decoding must be stable for values without NUL.
		b := DecodeArgs(EncodeArgs(a))
		for k, v := range a {
			if k == "" || k == "0" {
				continue
			}
			if b[k] != v {
				t.Fatalf("round trip of %q: %q = %q, then %q", s, k, v, b[k])
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"noop", "get_paths domain=a&key=b", "!stats", " x", "create_close fid=1&path=http://a:1/dev1/x.fid"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req, ok := ParseRequest(s)
		if ok && req.Command == "" {
			t.Fatalf("ok request with empty command from %q", s)
		}
		_ = ErrLine("unknown_command", s, s)
	})
}

// A line of one argument name repeated many times must decode in time and
// memory linear in its length (joining each repeat onto the previous
// value made an 800 KB line cost the tracker 28 s of CPU).
func TestDecodeArgsRepeatedNameLinear(t *testing.T) {
	const repeats = 20000
	line := strings.Repeat("a=xy&", repeats)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := DecodeArgs(line)
	runtime.ReadMemStats(&after)
	if got := strings.Count(a["a"], "\x00"); got != repeats-1 {
		t.Fatalf("decoded %d joined values; want %d", got+1, repeats)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(40*len(line)) {
		t.Errorf("decoding a %d-byte line allocated %d bytes; want at most %d (linear)", len(line), alloc, 40*len(line))
	}
	// The original's rule still holds: an empty or "0" first value is
	// replaced, not joined.
	if got := DecodeArgs("b=0&b=1&b=2&c=&c=3")["b"]; got != "1\x002" {
		t.Errorf(`b = %q; want "1\x002"`, got)
	}
	if got := DecodeArgs("c=&c=3")["c"]; got != "3" {
		t.Errorf(`c = %q; want "3"`, got)
	}
}
