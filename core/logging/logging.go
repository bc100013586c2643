// Package logging builds the daemons' structured loggers (log/slog).
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a text logger writing to w at the named level (debug, info,
// warn or error; anything else means info).
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
