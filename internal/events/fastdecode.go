package events

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// unmarshalEnvelope decodes a job event's JSON into env. Nearly every
// event takes the fast path below, which reads the payload once with no
// reflection; anything it does not handle exactly as encoding/json does
// (escapes in the fields it keeps, duplicate or case-folded keys, invalid
// UTF-8, numbers that are not plain integers, deep nesting, any syntax or
// type error) goes to json.Unmarshal, which also produces the error. The
// fast path never accepts what json.Unmarshal rejects, and what it accepts
// it decodes to the same envelope (FuzzFastDecode checks both).
//
// It exists because json.Unmarshal was most of the daemon's per-event CPU
// when folding the job stream (see BENCHMARKS.md, "Profile and fix").
func unmarshalEnvelope(payload []byte, env *envelope) error {
	if decodeFast(payload, env) {
		return nil
	}
	var std envelope // only this path's envelope escapes to the heap
	err := json.Unmarshal(payload, &std)
	*env = std
	return err
}

// maxFastDepth bounds the nesting the fast path skips through.
const maxFastDepth = 64

type fastScanner struct {
	b []byte
	i int
}

// decodeFast reports false, with env in an unspecified state, whenever
// json.Unmarshal must decide.
func decodeFast(b []byte, env *envelope) bool {
	*env = envelope{}
	s := fastScanner{b: b}
	s.ws()
	if !s.object(func(key []byte) bool {
		switch string(key) {
		case "specversion":
			return s.stringField(&env.SpecVersion)
		case "id":
			return s.stringField(&env.ID)
		case "source":
			return s.stringField(&env.Source)
		case "type":
			return s.stringField(&env.Type)
		case "time":
			return s.timeField(&env.Time)
		case "data":
			return s.jobData(&env.Data)
		}
		return s.unknown(key, envelopeKeys)
	}) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

var (
	envelopeKeys  = []string{"specversion", "id", "source", "type", "time", "data"}
	jobDataKeys   = []string{"job_id", "pool", "worker_id", "outcome", "resources", "labels"}
	resourcesKeys = []string{"cpu_millis", "memory_mb"}
)

func (s *fastScanner) jobData(d *domain.JobData) bool {
	if s.null() {
		return true
	}
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "job_id":
			return s.stringField(&d.JobID)
		case "pool":
			return s.stringField(&d.Pool)
		case "worker_id":
			return s.stringField(&d.WorkerID)
		case "outcome":
			return s.stringField(&d.Outcome)
		case "resources":
			if s.null() {
				d.Resources = nil
				return true
			}
			r := &domain.Resources{}
			d.Resources = r
			return s.object(func(key []byte) bool {
				switch string(key) {
				case "cpu_millis":
					return s.intField(&r.CPUMillis)
				case "memory_mb":
					return s.intField(&r.MemoryMB)
				}
				return s.unknown(key, resourcesKeys)
			})
		case "labels":
			if s.null() {
				d.Labels = nil
				return true
			}
			m := map[string]string{}
			d.Labels = m
			return s.object(func(key []byte) bool {
				v, ok := s.str()
				if !ok {
					return false
				}
				m[string(key)] = string(v)
				return true
			})
		}
		return s.unknown(key, jobDataKeys)
	})
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {"key": value, ...}, calling field positioned on each
// value. A key seen twice sends the event to json.Unmarshal (it merges
// repeated objects, which the fast path does not reproduce).
func (s *fastScanner) object(field func(key []byte) bool) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	var seen [8][]byte // the keys of this object (a job event has few)
	n := 0
	for {
		s.ws()
		key, ok := s.str()
		if !ok {
			return false
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return false
			}
		}
		if n == len(seen) {
			return false
		}
		seen[n] = key
		n++
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !field(key) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// unknown skips the value of a key the struct does not have, unless the
// key could match one of known the way encoding/json matches names
// (case-insensitively, with Unicode folding): then json.Unmarshal decides.
func (s *fastScanner) unknown(key []byte, known []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, k := range known {
		if asciiEqualFold(key, k) {
			return false
		}
	}
	return s.skip(0)
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// str reads a string without escapes, made of valid UTF-8, and returns
// its content. Anything else is left to json.Unmarshal.
func (s *fastScanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// null consumes a null literal if one is next.
func (s *fastScanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// Values of the contract that need no allocation.
var constants = []string{
	"1.0", domain.TypeJobQueued, domain.TypeJobStarted, domain.TypeJobFinished,
	string(domain.OutcomeSucceeded), string(domain.OutcomeFailed), string(domain.OutcomeCancelled),
}

// stringField reads a string (or null, which leaves *dst alone, as
// encoding/json does).
func (s *fastScanner) stringField(dst *string) bool {
	if s.null() {
		return true
	}
	v, ok := s.str()
	if !ok {
		return false
	}
	for _, c := range constants {
		if c == string(v) {
			*dst = c
			return true
		}
	}
	*dst = string(v)
	return true
}

func (s *fastScanner) timeField(dst **time.Time) bool {
	if s.null() {
		*dst = nil
		return true
	}
	start := s.i
	if _, ok := s.str(); !ok {
		return false
	}
	t := new(time.Time)
	if err := t.UnmarshalJSON(s.b[start:s.i]); err != nil {
		return false
	}
	*dst = t
	return true
}

// intField reads a plain JSON integer (or null) that fits an int64.
func (s *fastScanner) intField(dst *int64) bool {
	if s.null() {
		return true
	}
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	var u uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		if u > (1<<63)/10 {
			return false
		}
		u = u*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	switch {
	case neg && u <= 1<<63:
		*dst = -int64(u)
	case !neg && u < 1<<63:
		*dst = int64(u)
	default:
		return false
	}
	return true
}

// skip validates and skips any JSON value.
func (s *fastScanner) skip(depth int) bool {
	if depth > maxFastDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.skipString() {
				return false
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			if s.b[s.i] == '}' {
				s.i++
				return true
			}
			if s.b[s.i] != ',' {
				return false
			}
			s.i++
		}
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			if s.b[s.i] == ']' {
				s.i++
				return true
			}
			if s.b[s.i] != ',' {
				return false
			}
			s.i++
		}
	case c == '"':
		return s.skipString()
	case c == '-' || ('0' <= c && c <= '9'):
		return s.skipNumber()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return true
			}
		}
		return false
	}
}

// skipString skips a string, escapes included, checking its grammar.
func (s *fastScanner) skipString() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

// skipNumber skips a number, checking its grammar.
func (s *fastScanner) skipNumber() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
