package protocol

import "fmt"

// Error is a tracker error reply: `ERR <code> <text>`. Code is the stable,
// machine-readable part; Text is for people.
type Error struct {
	Code string
	Text string
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
