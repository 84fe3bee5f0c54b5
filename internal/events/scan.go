package events

import (
	"encoding/binary"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// scanEnvelope is the fast path of Decode for a structured-mode CloudEvent
// in the plain shape the contract's publishers write: one JSON object
// whose known attributes are strings or null, "time" an RFC 3339 string
// or null, "data" the job data object, and any other member a JSON value
// it skips (validating it). It fills env as json.Unmarshal would and
// reports true, or declines (false) on anything unusual: escapes in a
// field it keeps, a member name that is not plain lower-case ASCII (which
// json.Unmarshal might fold onto a known field), a repeated known member,
// a value of the wrong type, invalid UTF-8, a UTF-16 surrogate escape,
// deep nesting, anything that is not JSON. Then Decode takes the full
// decoder (unmarshalEnvelope and domain.CheckJSONText), which decides and
// names the refusal. When scanEnvelope accepts, the payload is valid
// JSON, valid UTF-8 and has no surrogate escape, so CheckJSONText would
// accept it too. TestScanAgreesWithFullDecoder and FuzzScanAgrees hold it
// to that: same envelope as json.Unmarshal, same Decode result and error
// as without the fast path.
//
// pool is the subject's pool: a data.pool equal to it shares its string.
func scanEnvelope(p []byte, env *envelope, pool string) bool {
	*env = envelope{}
	s := scanner{p: p, pool: pool}
	s.ws()
	if !s.eat('{') {
		return false
	}
	const (
		fSpec = 1 << iota
		fID
		fSource
		fType
		fTime
		fData
		fTraceParent
		fTraceState
	)
	var seen uint
	ok := s.members(func(key []byte) bool {
		var str *string
		var bit uint
		switch string(key) {
		case "specversion":
			str, bit = &env.SpecVersion, fSpec
		case "id":
			str, bit = &env.ID, fID
		case "source":
			str, bit = &env.Source, fSource
		case "type":
			str, bit = &env.Type, fType
		case "traceparent":
			str, bit = &env.TraceParent, fTraceParent
		case "tracestate":
			str, bit = &env.TraceState, fTraceState
		case "time":
			if seen&fTime != 0 {
				return false
			}
			seen |= fTime
			return s.time(&env.at, &env.hasAt)
		case "data":
			if seen&fData != 0 {
				return false
			}
			seen |= fData
			if s.null() {
				return true
			}
			return s.data(&env.Data)
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		mode := copied
		switch bit {
		case fSpec, fType:
			mode = common
		case fSource:
			mode = checkedOnly
		}
		return s.stringOrNull(str, mode)
	})
	if !ok {
		return false
	}
	s.ws()
	return s.i == len(s.p)
}

// scanner walks a JSON text; every method reports false to decline.
type scanner struct {
	p    []byte
	i    int
	pool string
}

// maxScanDepth bounds the nesting the fast path skips; deeper values go
// to the full decoder.
const maxScanDepth = 32

func (s *scanner) ws() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.p) && s.p[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.p)-s.i >= len(lit) && string(s.p[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// null consumes a null, if that is what comes.
func (s *scanner) null() bool { return s.literal("null") }

// members walks the members of an object whose '{' is consumed, calling
// member with each name (plain lower-case ASCII only: json.Unmarshal
// matches names case-insensitively, with Unicode folding) positioned at
// the value.
func (s *scanner) members(member func(key []byte) bool) bool {
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.plainKey()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !member(key) {
			return false
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// plainKey reads a member name of lower-case ASCII letters, digits and
// the punctuation that folds onto nothing.
func (s *scanner) plainKey() ([]byte, bool) {
	p, i := s.p, s.i
	if i >= len(p) || p[i] != '"' {
		return nil, false
	}
	i++
	start := i
	for i < len(p) && keyByte[p[i]] {
		i++
	}
	if i >= len(p) || p[i] != '"' {
		return nil, false
	}
	s.i = i + 1
	return p[start:i], true
}

// keyByte: the bytes of a plain member name.
var keyByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && (c < 'A' || c > 'Z')
	}
	return t
}()

// plainString reads a string without escapes, valid UTF-8, and returns
// its bytes.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start, high := s.i, false
	for {
		s.plainRun()
		if s.i >= len(s.p) {
			return nil, false
		}
		switch c := s.p[s.i]; {
		case c == '"':
			b := s.p[start:s.i]
			s.i++
			if high && !utf8.Valid(b) {
				return nil, false
			}
			return b, true
		case c >= 0x80:
			high = true
			s.i++
		default: // a control character or a backslash
			return nil, false
		}
	}
}

// plainRun passes over the bytes of a string that need no attention (not
// '"', '\\', a control character or a byte of a multi-byte UTF-8
// sequence), eight at a time.
func (s *scanner) plainRun() {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	p, i := s.p, s.i
	for i+8 <= len(p) {
		w := binary.LittleEndian.Uint64(p[i:])
		q, b := w^(ones*'"'), w^(ones*'\\')
		if ((q-ones)&^q|(b-ones)&^b|(w-ones*0x20)&^w|w)&highs != 0 {
			break
		}
		i += 8
	}
	for i < len(p) && stringByte[p[i]] {
		i++
	}
	s.i = i
}

// stringByte: the bytes of a string that need no attention.
var stringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// common strings of the contract, kept without an allocation.
var interned = [...]string{"1.0", domain.TypeJobQueued, domain.TypeJobStarted, domain.TypeJobFinished,
	string(domain.OutcomeSucceeded), string(domain.OutcomeFailed), string(domain.OutcomeCancelled)}

func intern(b []byte) string {
	for _, v := range interned {
		if string(b) == v {
			return v
		}
	}
	return string(b)
}

// How stringOrNull makes its string.
type stringMode int

const (
	copied      stringMode = iota // a copy of the payload's bytes
	common                        // one of the interned strings, else a copy
	checkedOnly                   // the payload's own bytes, not copied: for an attribute only checked, never kept past Decode (the CloudEvent source)
)

// stringOrNull decodes a string into dst; null leaves dst as it is (as
// json.Unmarshal does).
func (s *scanner) stringOrNull(dst *string, mode stringMode) bool {
	if s.null() {
		return true
	}
	b, ok := s.plainString()
	if !ok {
		return false
	}
	switch mode {
	case common:
		*dst = intern(b)
	case checkedOnly:
		// Shares the payload's memory, which the caller does not change
		// while Decode runs; validate only checks it is not empty and no
		// event carries it.
		*dst = unsafe.String(unsafe.SliceData(b), len(b))
	default:
		*dst = string(b)
	}
	return true
}

// time decodes the "time" member as json.Unmarshal does for a *time.Time
// (null: none; a string: time.Time's UnmarshalJSON), into at, and says in
// set whether there is one: envelope.at and hasAt, which Decode reads
// as json.Unmarshal's Time. No pointer: the envelope stays on the stack.
func (s *scanner) time(at *time.Time, set *bool) bool {
	*at, *set = time.Time{}, false
	if s.null() {
		return true
	}
	start := s.i
	if _, ok := s.plainString(); !ok {
		return false
	}
	if raw := s.p[start+1 : s.i-1]; !utcTime(raw, at) && at.UnmarshalJSON(s.p[start:s.i]) != nil {
		return false
	}
	*set = true
	return true
}

// utcTime parses the common form of an RFC 3339 time,
// 2006-01-02T15:04:05Z with 0 to 9 digits of fraction, as time.Time's
// UnmarshalJSON does; false for any other form (or an invalid one),
// which UnmarshalJSON then decides.
func utcTime(b []byte, t *time.Time) bool {
	n := len(b)
	if n < 20 || n > 30 || n == 21 || b[n-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	num := func(from, to int) int {
		v := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return false
	}
	nsec := 0
	if n > 20 {
		if b[19] != '.' {
			return false
		}
		if nsec = num(20, n-1); nsec < 0 {
			return false
		}
		for range 30 - n { // 9 digits of fraction: n == 30
			nsec *= 10
		}
	}
	v := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if v.Day() != day { // the 31st of a 30-day month, February the 30th
		return false
	}
	*t = v
	return true
}

// data decodes the job data object.
func (s *scanner) data(d *domain.JobData) bool {
	if !s.eat('{') {
		return false
	}
	const (
		fJobID = 1 << iota
		fPool
		fWorker
		fOutcome
		fResources
		fLabels
	)
	var seen uint
	return s.members(func(key []byte) bool {
		var str *string
		var bit uint
		switch string(key) {
		case "job_id":
			str, bit = &d.JobID, fJobID
		case "pool":
			if seen&fPool != 0 {
				return false
			}
			seen |= fPool
			if s.null() {
				return true
			}
			b, ok := s.plainString()
			if !ok {
				return false
			}
			if d.Pool = s.pool; string(b) != s.pool {
				d.Pool = string(b)
			}
			return true
		case "worker_id":
			str, bit = &d.WorkerID, fWorker
		case "outcome":
			str, bit = &d.Outcome, fOutcome
		case "resources":
			if seen&fResources != 0 {
				return false
			}
			seen |= fResources
			if s.null() {
				d.Resources = nil
				return true
			}
			r := new(domain.Resources)
			d.Resources = r
			return s.resources(r)
		case "labels":
			if seen&fLabels != 0 {
				return false
			}
			seen |= fLabels
			if s.null() {
				d.Labels = nil
				return true
			}
			return s.labels(&d.Labels)
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		mode := copied
		if bit == fOutcome {
			mode = common
		}
		return s.stringOrNull(str, mode)
	})
}

func (s *scanner) resources(r *domain.Resources) bool {
	if !s.eat('{') {
		return false
	}
	var seen uint
	return s.members(func(key []byte) bool {
		var dst *int64
		var bit uint
		switch string(key) {
		case "cpu_millis":
			dst, bit = &r.CPUMillis, 1
		case "memory_mb":
			dst, bit = &r.MemoryMB, 2
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.null() {
			return true
		}
		return s.int64(dst)
	})
}

// int64 reads an integer literal of at most 18 digits (json.Unmarshal
// refuses fractions and exponents for an int64 field; longer ones may
// overflow: the full decoder decides).
func (s *scanner) int64(dst *int64) bool {
	neg := s.eat('-')
	start := s.i
	var v int64
	for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
		v = v*10 + int64(s.p[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 18 || (n > 1 && s.p[start] == '0') {
		return false
	}
	if s.i < len(s.p) {
		switch s.p[s.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	if neg {
		v = -v
	}
	*dst = v
	return true
}

// labels decodes an object of strings into a new map, as json.Unmarshal
// does (an empty object is an empty map, not nil).
func (s *scanner) labels(dst *map[string]string) bool {
	if !s.eat('{') {
		return false
	}
	m := map[string]string{}
	*dst = m
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		k, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		v, ok := s.plainString()
		if !ok {
			return false
		}
		m[string(k)] = string(v)
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// skip validates and passes over any JSON value.
func (s *scanner) skip(depth int) bool {
	if s.i >= len(s.p) {
		return false
	}
	switch c := s.p[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		if depth >= maxScanDepth {
			return false
		}
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if !s.skipString() {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat('}')
		}
	case c == '[':
		if depth >= maxScanDepth {
			return false
		}
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.skipNumber()
	}
	return false
}

// skipString passes over a string, escapes included, declining a UTF-16
// surrogate escape (domain.CheckJSONText's business) and invalid UTF-8.
func (s *scanner) skipString() bool {
	if !s.eat('"') {
		return false
	}
	start, high := s.i, false
	for {
		s.plainRun()
		if s.i >= len(s.p) {
			return false
		}
		switch c := s.p[s.i]; {
		case c == '"':
			s.i++
			return !high || utf8.Valid(s.p[start:s.i-1])
		case c < 0x20:
			return false
		case c >= 0x80:
			high = true
		case c == '\\':
			s.i++
			if s.i >= len(s.p) {
				return false
			}
			switch s.p[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := domain.Hex4(s.p, s.i+1)
				if !ok || (r >= 0xD800 && r < 0xE000) {
					return false
				}
				s.i += 4
			default:
				return false
			}
		}
		s.i++
	}
}

// skipNumber passes over a number of the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() bool {
	s.eat('-')
	digits := func() int {
		start := s.i
		for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
			s.i++
		}
		return s.i - start
	}
	start := s.i
	n := digits()
	if n == 0 || (n > 1 && s.p[start] == '0') {
		return false
	}
	if s.eat('.') && digits() == 0 {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
