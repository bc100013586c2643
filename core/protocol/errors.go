package protocol

import (
	"fmt"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// Error is a tracker error reply: `ERR <code> <text>`. Code is the stable,
// machine-readable part; Text is for people. Its kind (core.KindOf) comes
// from the code by one table, codeKinds; a caller that knows a code means
// something else for one command sets Kind.
type Error struct {
	Code string
	Text string
	Kind core.Kind // when not Other, overrides the code's kind
}

// ErrorKind returns the kind of the reply's code.
func (e *Error) ErrorKind() core.Kind {
	if e.Kind != core.Other {
		return e.Kind
	}
	return CodeKind(e.Code)
}

// CodeKind returns the kind of error a wire code stands for.
func CodeKind(code string) core.Kind { return codeKinds[code] }

// codeKinds maps the tracker's wire codes, ours and the original's, to
// kinds. Codes not listed are core.Other.
var codeKinds = map[string]core.Kind{
	"access_denied":           core.Permission,
	"after_mismatch":          core.Invalid,
	"bad_args":                core.Invalid,
	"bad_params":              core.Invalid,
	"bad_rebal_pol":           core.Invalid,
	"bogus_args":              core.Invalid,
	"checksum_mismatch":       core.Invalid,
	"class_exists":            core.Exists,
	"class_has_files":         core.Conflict,
	"class_not_found":         core.NotFound,
	"db":                      core.Database,
	"domain_exists":           core.Exists,
	"domain_has_classes":      core.Conflict,
	"domain_has_files":        core.Conflict,
	"domain_not_empty":        core.Conflict,
	"domain_not_found":        core.NotFound,
	"dup":                     core.Exists,
	"existing_devid":          core.Exists,
	"fid_exists":              core.Exists,
	"fid_in_use":              core.Exists,
	"fsck_running":            core.Conflict,
	"host_exists":             core.Exists,
	"host_mismatch":           core.Invalid,
	"host_not_empty":          core.Conflict,
	"host_not_found":          core.NotFound,
	"invalid_checker_level":   core.Invalid,
	"invalid_checksum_format": core.Invalid,
	"invalid_destdev":         core.Invalid,
	"invalid_devid":           core.Invalid,
	"invalid_format":          core.Invalid,
	"invalid_hashtype":        core.Invalid,
	"invalid_key":             core.TooLong, // create_open; updateclass uses it for a missing key
	"invalid_mindevcount":     core.Invalid,
	"invalid_replpolicy":      core.Invalid,
	"invalid_state":           core.Invalid,
	"key_exists":              core.Exists,
	"no_class":                core.Invalid,
	"no_device":               core.NotFound,
	"no_devices":              core.NoSpace,
	"no_devid":                core.Invalid,
	"no_domain":               core.Invalid,
	"no_fid":                  core.Invalid,
	"no_host":                 core.Invalid,
	"no_ip":                   core.Invalid,
	"no_key":                  core.Invalid,
	"no_path":                 core.Invalid,
	"no_port":                 core.Invalid,
	"no_rebal_policy":         core.NotFound,
	"no_rebal_state":          core.NotFound,
	"no_set_rebal":            core.Conflict,
	"no_temp_file":            core.Conflict, // the reservation is gone: start again
	"nodel_default_class":     core.Invalid,
	"none_match":              core.NotFound,
	"not_writable":            core.Invalid, // a server setting that may not be set
	"rebal_not_started":       core.Conflict,
	"rebal_running":           core.Conflict,
	"request_too_long":        core.TooLong,
	"size_mismatch":           core.Invalid,
	"size_verify_error":       core.Unavailable,
	"state_too_high":          core.Invalid,
	"unknown_command":         core.Unsupported,
	"edit_unsupported":        core.Unsupported,
	"unknown_fid":             core.NotFound,
	"unknown_host":            core.NotFound,
	"unknown_hostid":          core.NotFound,
	"unknown_key":             core.NotFound,
	"unknown_state":           core.Invalid,
	"unreg_class":             core.Invalid, // a write naming an unknown class: a bad request
	"unreg_domain":            core.NotFound,
}

func (e *Error) Error() string {
	if e.Text == "" || e.Text == e.Code {
		return "mogilefs: " + e.Code
	}
	return fmt.Sprintf("mogilefs: %s: %s", e.Code, e.Text)
}

// Is makes errors.Is match two *Error values with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errf builds an *Error with a formatted text.
func Errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Err builds an *Error carrying the default text of its code.
func Err(code string) *Error { return &Error{Code: code, Text: DefaultText(code)} }

// defaultTexts is the original tracker's err_line table (SPEC §1.6).
var defaultTexts = map[string]string{
	"dup":                   "Duplicate name/number used.",
	"after_mismatch":        "Pattern does not match the after-value?",
	"bad_params":            "Invalid parameters to command; please see documentation",
	"class_exists":          "That class already exists in that domain",
	"class_has_files":       "Class still has files, unable to delete",
	"class_not_found":       "Class not found",
	"db":                    "Database error",
	"domain_has_files":      "Domain still has files, unable to delete",
	"domain_exists":         "That domain already exists",
	"domain_not_empty":      "Domain still has classes, unable to delete",
	"domain_not_found":      "Domain not found",
	"failure":               "Operation failed",
	"host_exists":           "That host already exists",
	"host_mismatch":         "The device specified doesn't belong to the host specified",
	"host_not_empty":        "Unable to delete host; it contains devices still",
	"host_not_found":        "Host not found",
	"invalid_checker_level": "Checker level invalid.  Please see documentation on this command.",
	"invalid_mindevcount":   "The mindevcount must be at least 1",
	"key_exists":            "Target key name already exists; can't overwrite.",
	"no_class":              "No class provided",
	"no_devices":            "No devices found to store file",
	"no_device":             "Device not found",
	"no_domain":             "No domain provided",
	"no_host":               "No host provided",
	"no_ip":                 "IP required to create host",
	"no_port":               "Port required to create host",
	"no_temp_file":          "No tempfile or file already closed",
	"none_match":            "No keys match that pattern and after-value (if any).",
	"plugin_aborted":        "Action aborted by plugin",
	"state_too_high":        "Status cannot go from dead to alive; must use down",
	"unknown_command":       "Unknown server command",
	"unknown_host":          "Host not found",
	"unknown_state":         "Invalid/unknown state",
	"unreg_domain":          "Domain name invalid/not found",
	"rebal_not_started":     "Rebalance not running",
	"no_rebal_state":        "No available rebalance status",
	"no_rebal_policy":       "No rebalance policy available",
	"nodel_default_class":   "Cannot delete the default class",
}

// DefaultText returns the original's default text for code, or the code
// itself when the table has none.
func DefaultText(code string) string {
	if t, ok := defaultTexts[code]; ok {
		return t
	}
	return code
}
