// Package conffile reads the original MogileFS configuration files
// (mogilefsd.conf, mogstored.conf, mogilefs.conf): one `key = value` (or
// `key value`) per line, '#' comments and blank lines ignored. Command-line
// flags win over the file: Apply sets only flags the user did not set.
package conffile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
)

var lineRE = regexp.MustCompile(`^\s*([\w.]+)\s*(?:=\s*|\s+)(.*?)\s*$`)

// Entry is one setting from a file.
type Entry struct {
	Key, Value string
	Line       int
}

// Parse reads settings from r; name is used in error messages.
func Parse(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			// A bare key (e.g. "daemonize") means true.
			if k := strings.TrimSpace(line); regexp.MustCompile(`^[\w.]+$`).MatchString(k) {
				out = append(out, Entry{Key: k, Value: "1", Line: n})
				continue
			}
			return nil, fmt.Errorf("%s:%d: cannot parse %q (want `key = value`)", name, n, line)
		}
		out = append(out, Entry{Key: m[1], Value: m[2], Line: n})
	}
	return out, sc.Err()
}

// ReadFile parses a file. A missing file is reported with os.ErrNotExist.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Apply sets each flag named by an entry (key, or aliases[key]) unless
// the flag was given on the command line. Keys with no flag are returned
// as unknown.
func Apply(fs *pflag.FlagSet, entries []Entry, aliases map[string]string) (unknown []Entry, err error) {
	for _, e := range entries {
		name := e.Key
		if a, ok := aliases[name]; ok {
			name = a
		}
		f := fs.Lookup(name)
		if f == nil {
			f = fs.Lookup(strings.ReplaceAll(name, "_", "-"))
		}
		if f == nil {
			unknown = append(unknown, e)
			continue
		}
		if f.Changed {
			continue
		}
		if err := fs.Set(f.Name, e.Value); err != nil {
			return unknown, fmt.Errorf("line %d: %s = %s: %w", e.Line, e.Key, e.Value, err)
		}
		f.Changed = false // still "from the file", not the command line
	}
	return unknown, nil
}

// Load reads path (when it exists, or always when required) and applies
// it to fs. It returns the unknown entries.
func Load(fs *pflag.FlagSet, path string, required bool, aliases map[string]string) ([]Entry, error) {
	entries, err := ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	unknown, err := Apply(fs, entries, aliases)
	if err != nil {
		return unknown, fmt.Errorf("%s: %w", path, err)
	}
	return unknown, nil
}
