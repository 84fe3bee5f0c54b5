// Package logging builds the daemon's zerolog logger from the log section
// of the configuration, and adapts it for libraries that log through logr
// (client-go's klog), so every line the process writes goes through one
// logger in one format.
package logging

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// Formats are the values of log.format (and --log-format).
var Formats = []string{"json", "console"}

// CheckFormat refuses a log format other than Formats.
func CheckFormat(format string) error {
	if !slices.Contains(Formats, format) {
		return fmt.Errorf("must be json or console (got %q)", format)
	}
	return nil
}

// New returns a logger at level writing to w in format. The console
// format is coloured only when w is a terminal, so a log file or a pipe
// gets no escape codes.
func New(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log.level: %w", err)
	}
	if err := CheckFormat(format); err != nil {
		return zerolog.Logger{}, fmt.Errorf("log.format: %w", err)
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !IsTerminal(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
