// Package jsonscan holds the grammar primitives of the hand-written JSON
// scanners on the decode fast paths (internal/events for the contract's
// CloudEvents, internal/inputs/hodeijobs for Hodei's messages): a cursor
// over the text whose every method reports false to decline, so that the
// caller's full decoder decides what the scanner does not take.
package jsonscan

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Cursor walks a JSON text: Text[Pos:] is what is left to read.
type Cursor struct {
	Text []byte
	Pos  int
}

// PlainByte reports whether c, inside a string, needs no attention (not
// '"', '\\', a control character or a byte of a multi-byte sequence).
func PlainByte(c byte) bool { return stringByte[c] }

// WS passes over whitespace.
func (s *Cursor) WS() {
	for s.Pos < len(s.Text) {
		switch s.Text[s.Pos] {
		case ' ', '\t', '\n', '\r':
			s.Pos++
		default:
			return
		}
	}
}

// Eat consumes c, if that is what comes.
func (s *Cursor) Eat(c byte) bool {
	if s.Pos < len(s.Text) && s.Text[s.Pos] == c {
		s.Pos++
		return true
	}
	return false
}

// Literal consumes lit, if that is what comes.
func (s *Cursor) Literal(lit string) bool {
	if len(s.Text)-s.Pos >= len(lit) && string(s.Text[s.Pos:s.Pos+len(lit)]) == lit {
		s.Pos += len(lit)
		return true
	}
	return false
}

// Null consumes a null, if that is what comes.
func (s *Cursor) Null() bool { return s.Literal("null") }

// Members walks the members of an object whose '{' is consumed, calling
// member with each name (plain lower-case ASCII only: json.Unmarshal
// matches names case-insensitively, with Unicode folding) positioned at
// the value.
func (s *Cursor) Members(member func(key []byte) bool) bool {
	return s.object(lowerKeys, member)
}

// keyKind is how object reads member names.
type keyKind uint8

const (
	lowerKeys keyKind = iota // PlainKey: what Members matches
	plainKeys                // PlainString: a map's keys
	anyKeys                  // SkipString: validated, not returned
)

// object walks the members of an object whose '{' is consumed, their
// names read as keys says.
func (s *Cursor) object(keys keyKind, member func(key []byte) bool) bool {
	s.WS()
	if s.Eat('}') {
		return true
	}
	for {
		s.WS()
		var key []byte
		var ok bool
		switch keys {
		case lowerKeys:
			key, ok = s.PlainKey()
		case plainKeys:
			key, ok = s.PlainString()
		default:
			ok = s.SkipString()
		}
		if !ok {
			return false
		}
		s.WS()
		if !s.Eat(':') {
			return false
		}
		s.WS()
		if !member(key) {
			return false
		}
		s.WS()
		if s.Eat(',') {
			continue
		}
		return s.Eat('}')
	}
}

// PlainKey reads a member name of lower-case ASCII letters, digits and
// the punctuation that folds onto nothing.
func (s *Cursor) PlainKey() ([]byte, bool) {
	p, i := s.Text, s.Pos
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
	s.Pos = i + 1
	return p[start:i], true
}

// keyByte: the bytes of a plain member name.
var keyByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && (c < 'A' || c > 'Z')
	}
	return t
}()

// PlainString reads a string without escapes, valid UTF-8, and returns
// its bytes.
func (s *Cursor) PlainString() ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	start, high := s.Pos, false
	for {
		s.PlainRun()
		if s.Pos >= len(s.Text) {
			return nil, false
		}
		switch c := s.Text[s.Pos]; {
		case c == '"':
			b := s.Text[start:s.Pos]
			s.Pos++
			if high && !utf8.Valid(b) {
				return nil, false
			}
			return b, true
		case c >= 0x80:
			high = true
			s.Pos++
		default: // a control character or a backslash
			return nil, false
		}
	}
}

// PlainRun passes over the bytes of a string that need no attention (not
// '"', '\\', a control character or a byte of a multi-byte UTF-8
// sequence), eight at a time.
func (s *Cursor) PlainRun() {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	p, i := s.Text, s.Pos
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
	s.Pos = i
}

// stringByte: the bytes of a string that need no attention.
var stringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// UTCTime parses the common form of an RFC 3339 time,
// 2006-01-02T15:04:05Z with 0 to 9 digits of fraction, as time.Time's
// UnmarshalJSON does; false for any other form (or an invalid one),
// which UnmarshalJSON then decides.
func UTCTime(b []byte, t *time.Time) bool {
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

// Digits consumes a run of decimal digits, accumulating them onto v (a
// fraction continues its integer part); it wraps past 19 digits, so
// callers bound the count, measured by s.Pos.
func (s *Cursor) Digits(v uint64) uint64 {
	for s.Pos < len(s.Text) && s.Text[s.Pos] >= '0' && s.Text[s.Pos] <= '9' {
		v = v*10 + uint64(s.Text[s.Pos]-'0')
		s.Pos++
	}
	return v
}

// Int64 reads an integer literal of at most 18 digits (json.Unmarshal
// refuses fractions and exponents for an int64 field; longer ones may
// overflow: the full decoder decides).
func (s *Cursor) Int64(dst *int64) bool {
	neg := s.Eat('-')
	start := s.Pos
	u := s.Digits(0)
	v := int64(u)
	n := s.Pos - start
	if n == 0 || n > 18 || (n > 1 && s.Text[start] == '0') {
		return false
	}
	if s.Pos < len(s.Text) {
		switch s.Text[s.Pos] {
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

// Skip validates and passes over any JSON value.
func (s *Cursor) Skip(depth int) bool {
	if s.Pos >= len(s.Text) {
		return false
	}
	switch c := s.Text[s.Pos]; {
	case c == '"':
		return s.SkipString()
	case c == '{':
		if depth >= MaxDepth {
			return false
		}
		s.Pos++
		return s.object(anyKeys, func([]byte) bool { return s.Skip(depth + 1) })
	case c == '[':
		if depth >= MaxDepth {
			return false
		}
		s.Pos++
		s.WS()
		if s.Eat(']') {
			return true
		}
		for {
			s.WS()
			if !s.Skip(depth + 1) {
				return false
			}
			s.WS()
			if s.Eat(',') {
				continue
			}
			return s.Eat(']')
		}
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.SkipNumber()
	}
	return false
}

// SkipString passes over a string, escapes included, declining a UTF-16
// surrogate escape (domain.CheckJSONText's business) and invalid UTF-8.
func (s *Cursor) SkipString() bool {
	if !s.Eat('"') {
		return false
	}
	start, high := s.Pos, false
	for {
		s.PlainRun()
		if s.Pos >= len(s.Text) {
			return false
		}
		switch c := s.Text[s.Pos]; {
		case c == '"':
			s.Pos++
			return !high || utf8.Valid(s.Text[start:s.Pos-1])
		case c < 0x20:
			return false
		case c >= 0x80:
			high = true
		case c == '\\':
			s.Pos++
			if s.Pos >= len(s.Text) {
				return false
			}
			switch s.Text[s.Pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := domain.Hex4(s.Text, s.Pos+1)
				if !ok || (r >= 0xD800 && r < 0xE000) {
					return false
				}
				s.Pos += 4
			default:
				return false
			}
		}
		s.Pos++
	}
}

// SkipNumber passes over a number of the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Cursor) SkipNumber() bool {
	s.Eat('-')
	digits := func() int {
		start := s.Pos
		for s.Pos < len(s.Text) && s.Text[s.Pos] >= '0' && s.Text[s.Pos] <= '9' {
			s.Pos++
		}
		return s.Pos - start
	}
	start := s.Pos
	n := digits()
	if n == 0 || (n > 1 && s.Text[start] == '0') {
		return false
	}
	if s.Eat('.') && digits() == 0 {
		return false
	}
	if s.Eat('e') || s.Eat('E') {
		if !s.Eat('+') {
			s.Eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// MaxDepth bounds the nesting the fast path skips; deeper values go
// to the full decoder.
const MaxDepth = 32

// StringMap decodes an object of plain strings into a new map, as
// json.Unmarshal does (an empty object is an empty map, not nil); str
// makes each key and value a string (a copy, or an interned one).
func (s *Cursor) StringMap(dst *map[string]string, str func([]byte) string) bool {
	if !s.Eat('{') {
		return false
	}
	m := map[string]string{}
	*dst = m
	return s.object(plainKeys, func(key []byte) bool {
		v, ok := s.PlainString()
		if !ok {
			return false
		}
		m[str(key)] = str(v)
		return true
	})
}

// Copy is the str of StringMap that copies.
func Copy(b []byte) string { return string(b) }

// Seen is the set of an object's known members read so far, a bit each:
// a repeated member is left to the full decoder (json.Unmarshal merges
// or overwrites, by the field's type).
type Seen uint

// First marks bit and reports whether it was not marked before.
func (s *Seen) First(bit uint) bool {
	if uint(*s)&bit != 0 {
		return false
	}
	*s |= Seen(bit)
	return true
}
