// Package protocol implements the MogileFS tracker wire format: one request
// line per command (`name arg=value&...`), answered by exactly one line,
// `OK <args>` or `ERR <code> <text>`, both URL-encoded with the original
// tracker's codec. It is pure: no I/O beyond what a caller hands it.
package protocol
