package protocol

import (
	"strings"
)

// MaxLineBytes is the longest request line a tracker accepts. The longest
// legitimate lines (create_close with a long path, key and metadata) are a
// few KiB; anything near this size is a broken or hostile client.
const MaxLineBytes = 1 << 20

// Request is one parsed tracker request line.
type Request struct {
	// Command is the lower-cased command word, e.g. "get_paths".
	Command string
	// Args are the decoded arguments.
	Args Args
	// Raw is the argument string as sent, before decoding.
	Raw string
}

func isWord(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ParseRequest parses one request line (without its line ending). It
// follows the original's `^(\w+)\s*(.*)` rule: a line that does not start
// with a word character yields ok=false.
func ParseRequest(line string) (req Request, ok bool) {
	i := 0
	for i < len(line) && isWord(line[i]) {
		i++
	}
	if i == 0 {
		return Request{}, false
	}
	req.Command = strings.ToLower(line[:i])
	rest := strings.TrimLeft(line[i:], " \t\r\n\v\f")
	req.Raw = rest
	req.Args = DecodeArgs(rest)
	return req, true
}

// OKLine formats a success reply, always with the space after OK.
func OKLine(a Args) string { return "OK " + EncodeArgs(a) + "\r\n" }

// ErrLine formats an error reply. An empty text takes the default text of
// the code; callid, when non-empty, is appended as the original does.
func ErrLine(code, text, callid string) string {
	if text == "" {
		text = DefaultText(code)
	}
	s := "ERR " + code + " " + Escape(text)
	if callid != "" {
		s += " " + Escape(callid)
	}
	return s + "\r\n"
}

// ParseReply parses one reply line (without its line ending) into args or
// an *Error. It accepts the historic `OK <number> <args>` form too.
func ParseReply(line string) (Args, error) {
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "OK"):
		rest := strings.TrimLeft(line[2:], " \t")
		// Historic "OK <n> args": skip a leading all-digit token.
		if j := strings.IndexAny(rest, " \t"); j > 0 && isDigits(rest[:j]) {
			rest = strings.TrimLeft(rest[j:], " \t")
		}
		if j := strings.IndexAny(rest, " \t"); j >= 0 {
			rest = rest[:j]
		}
		return DecodeArgs(rest), nil
	case strings.HasPrefix(line, "ERR"):
		fields := strings.Fields(line[3:])
		e := &Error{Code: "failure"}
		if len(fields) > 0 {
			e.Code = fields[0]
		}
		if len(fields) > 1 {
			e.Text = Unescape(fields[1])
		}
		return nil, e
	}
	return nil, &Error{Code: "bad_reply", Text: "unexpected tracker reply: " + truncate(line, 80)}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// RequestLine formats a request for sending: `cmd args\r\n`.
func RequestLine(cmd string, a Args) string {
	return cmd + " " + EncodeArgs(a) + "\r\n"
}
