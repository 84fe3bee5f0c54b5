package logging

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
)

// LogrSink is a logr.LogSink writing to a zerolog logger: info lines at
// debug level when their V-level is above 0 (client-go's chatter), at info
// otherwise; errors at error level. Keys and values become fields.
type LogrSink struct {
	log  zerolog.Logger
	name string
}

var _ logr.LogSink = (*LogrSink)(nil)

// Logr returns a logr.Logger writing to log.
func Logr(log zerolog.Logger) logr.Logger { return logr.New(&LogrSink{log: log}) }

// Init is part of logr.LogSink.
func (s *LogrSink) Init(logr.RuntimeInfo) {}

// Enabled reports whether a line of V-level level would be written.
func (s *LogrSink) Enabled(level int) bool { return s.log.GetLevel() <= levelOf(level) }

// Info writes a non-error line.
func (s *LogrSink) Info(level int, msg string, kv ...any) {
	s.write(s.log.WithLevel(levelOf(level)), msg, kv)
}

// Error writes an error line.
func (s *LogrSink) Error(err error, msg string, kv ...any) {
	s.write(s.log.Error().Err(err), msg, kv)
}

// WithValues returns a sink whose lines carry kv.
func (s *LogrSink) WithValues(kv ...any) logr.LogSink {
	c := s.log.With()
	for i := 0; i+1 < len(kv); i += 2 {
		c = c.Interface(fmt.Sprint(kv[i]), kv[i+1])
	}
	return &LogrSink{log: c.Logger(), name: s.name}
}

// WithName returns a sink whose lines name the component.
func (s *LogrSink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "/" + name
	}
	return &LogrSink{log: s.log, name: name}
}

func (s *LogrSink) write(ev *zerolog.Event, msg string, kv []any) {
	if ev == nil {
		return
	}
	if s.name != "" {
		ev = ev.Str("logger", s.name)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		ev = ev.Interface(fmt.Sprint(kv[i]), kv[i+1])
	}
	ev.Msg(msg)
}

func levelOf(v int) zerolog.Level {
	if v > 0 {
		return zerolog.DebugLevel
	}
	return zerolog.InfoLevel
}
