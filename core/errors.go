package core

import (
	"context"
	"errors"
)

// Kind is what went wrong, in the terms a caller branches on: whether to
// retry, what to tell a user, which errno or wire code to answer. Every
// package carries kinds on its errors; each boundary maps them once (the
// tracker to wire codes, the client from wire codes, the mount to errno).
type Kind uint8

// The kinds of error.
const (
	Other       Kind = iota // not classified: an unexpected failure
	Invalid                 // the request is malformed or names something unusable
	NotFound                // what the request names does not exist
	Exists                  // the name or number is taken
	Conflict                // the current state does not allow it (not empty, running, gone stale)
	Permission              // the caller may not do this
	Unavailable             // a node, device or tracker cannot be reached now; a retry may work
	NoSpace                 // no device can take the write
	TooLong                 // a key, name or line is over a limit
	Timeout                 // the operation ran out of time
	Unsupported             // the other side does not know the operation
	Database                // the metadata database failed
)

var kindNames = [...]string{
	Other:       "other",
	Invalid:     "invalid",
	NotFound:    "not found",
	Exists:      "exists",
	Conflict:    "conflict",
	Permission:  "permission denied",
	Unavailable: "unavailable",
	NoSpace:     "no space",
	TooLong:     "too long",
	Timeout:     "timeout",
	Unsupported: "unsupported",
	Database:    "database",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown kind"
}

// Error is an error with a kind: Op says what was being done
// ("store: create file"), Err what failed.
type Error struct {
	Kind Kind
	Op   string
	Err  error
}

// E returns an error of kind k for op, wrapping err (which may be nil).
func E(k Kind, op string, err error) error { return &Error{Kind: k, Op: op, Err: err} }

// Errorf returns an error of kind k with the text msg.
func Errorf(k Kind, msg string) error { return &Error{Kind: k, Err: errors.New(msg)} }

func (e *Error) Error() string {
	switch {
	case e.Err == nil && e.Op == "":
		return e.Kind.String()
	case e.Err == nil:
		return e.Op + ": " + e.Kind.String()
	case e.Op == "":
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorKind returns e's kind (see KindOf).
func (e *Error) ErrorKind() Kind { return e.Kind }

// kinded is an error that knows its kind: *Error, and the tracker's
// replies as the protocol package decodes them.
type kinded interface{ ErrorKind() Kind }

// KindOf returns the kind of err: the first one found along its chain of
// wrapped errors that is not Other; context errors are Timeout (a
// deadline) and Other (a cancel). nil is Other.
func KindOf(err error) Kind {
	for e := err; e != nil; {
		if k, ok := e.(kinded); ok && k.ErrorKind() != Other {
			return k.ErrorKind()
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				if k := KindOf(x); k != Other {
					return k
				}
			}
			e = nil
		default:
			e = nil
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	return Other
}

// Is reports whether err is of kind k.
func Is(k Kind, err error) bool { return err != nil && KindOf(err) == k }
