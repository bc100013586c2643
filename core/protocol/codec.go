package protocol

import (
	"sort"
	"strings"
)

// unreserved reports whether b is left as-is by the MogileFS encoder:
// A-Z a-z 0-9 _ , - . / \ : and space (space later becomes '+').
func unreserved(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '_', ',', '-', '.', '/', '\\', ':', ' ':
		return true
	}
	return false
}

const upperHex = "0123456789ABCDEF"

// Escape encodes s exactly as the original tracker and Perl client do:
// unreserved bytes stay, space becomes '+', all else is %XX (upper-case).
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 && !strings.Contains(s, " ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('+')
		case unreserved(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Unescape decodes s as the tracker does: '+' becomes space first, then
// every valid %XX becomes its byte. Invalid escapes are left as they are.
func Unescape(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 < len(s) {
				h, ok1 := unhex(s[i+1])
				l, ok2 := unhex(s[i+2])
				if ok1 && ok2 {
					b = append(b, h<<4|l)
					i += 2
					continue
				}
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Args holds decoded request or reply arguments. A name absent from the map
// was not sent; the tracker treats absent and empty alike for most commands.
type Args map[string]string

// Get returns the value of name, or "" when it is absent.
func (a Args) Get(name string) string { return a[name] }

// Has reports whether name was sent at all.
func (a Args) Has(name string) bool { _, ok := a[name]; return ok }

// Bool reports whether name holds a Perl-truthy value (non-empty, not "0").
func (a Args) Bool(name string) bool {
	v := a[name]
	return v != "" && v != "0"
}

// DecodeArgs parses an argument string. Pieces are split on '&'; empty
// pieces and the piece "0" are dropped (as the original does); a value with
// a literal '=' is cut there. Repeated names are joined with NUL, following
// the original's rule.
func DecodeArgs(s string) Args {
	a := make(Args)
	// Repeated names collect their values here and are joined once at
	// the end, so that a line of one name repeated n times costs O(n).
	var repeats map[string][]string
	for len(s) > 0 {
		var piece string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			piece, s = s[:i], s[i+1:]
		} else {
			piece, s = s, ""
		}
		if piece == "" || piece == "0" {
			continue
		}
		name, value, _ := strings.Cut(piece, "=")
		if j := strings.IndexByte(value, '='); j >= 0 {
			value = value[:j]
		}
		name, value = Unescape(name), Unescape(value)
		if parts, ok := repeats[name]; ok {
			repeats[name] = append(parts, value)
			continue
		}
		if old, ok := a[name]; ok && old != "" && old != "0" {
			if repeats == nil {
				repeats = map[string][]string{}
			}
			repeats[name] = []string{old, value}
			continue
		}
		a[name] = value
	}
	for name, parts := range repeats {
		a[name] = strings.Join(parts, "\x00")
	}
	return a
}

// EncodeArgs encodes args as name=value pairs joined with '&', names in
// sorted order so that output is deterministic (clients must not rely on
// any order).
func EncodeArgs(a Args) string {
	if len(a) == 0 {
		return ""
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(Escape(k))
		b.WriteByte('=')
		b.WriteString(Escape(a[k]))
	}
	return b.String()
}
