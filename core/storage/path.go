package storage

import (
	"errors"
	"regexp"
	"strings"
)

// errBadPath: the request path is not one a storage node serves.
var errBadPath = errors.New("mogstored: invalid path")

// putPathRE is the original's PUT/DELETE filename rule: word characters,
// '-' and '.' in every component.
var putPathRE = regexp.MustCompile(`^(/[\w\-.]+)+$`)

// devDirRE matches a device directory name.
var devDirRE = regexp.MustCompile(`^dev[0-9]+$`)

// splitPath checks a decoded URL path and splits it into its first
// component (normally devN) and the rest, relative to that component.
// It refuses NUL bytes, backslashes, "." and ".." components, and paths
// not starting with '/'. rest is "" for "/devN" and "/devN/".
func splitPath(p string) (first, rest string, err error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\\") {
		return "", "", errBadPath
	}
	parts := strings.Split(p[1:], "/")
	for i, c := range parts {
		if c == "." || c == ".." {
			return "", "", errBadPath
		}
		if c == "" && i != len(parts)-1 && !(i == 0 && len(parts) == 1) {
			return "", "", errBadPath // "//" inside the path
		}
	}
	first = parts[0]
	rest = strings.Join(parts[1:], "/")
	return first, rest, nil
}

// validWritePath reports whether p may be the target of a PUT or DELETE.
func validWritePath(p string) bool {
	if strings.Contains(p, "..") || !putPathRE.MatchString(p) {
		return false
	}
	_, _, err := splitPath(p)
	return err == nil
}

// collapseSlashes turns each run of slashes in p into one, as the
// original's web server does for reads: MogileFS-Utils asks for
// "//devN/usage". The result is checked by splitPath like any path.
func collapseSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
