package domain

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxJobIDBytes bounds a job id: it is a map key, a log field and a
// label of the claims bucket, on the daemon and on every worker.
const MaxJobIDBytes = 256

// ValidateJobID is the one rule a job id obeys, applied by the daemon's
// decoder and by the example worker (which refuses to run a job the
// daemon would refuse to count): not empty, at most MaxJobIDBytes bytes,
// valid UTF-8, no control characters. The error is an *InvalidError whose
// reason says which rule broke.
func ValidateJobID(id string) error {
	switch {
	case id == "":
		return &InvalidError{Reason: ReasonMissingJobID, Detail: "data.job_id is missing (data has no job_id)"}
	case len(id) > MaxJobIDBytes:
		return &InvalidError{Reason: ReasonMissingJobID, Detail: fmt.Sprintf("data.job_id is longer than %d bytes (%d)", MaxJobIDBytes, len(id))}
	case !utf8.ValidString(id):
		return &InvalidError{Reason: ReasonInvalidUTF8, Detail: "data.job_id is not valid UTF-8"}
	}
	for i, r := range id {
		if unicode.IsControl(r) {
			return &InvalidError{Reason: ReasonBadJobID, Detail: fmt.Sprintf("data.job_id has the control character %U at byte %d", r, i)}
		}
	}
	return nil
}

// CheckJSONText refuses a JSON document whose strings are not valid
// UTF-8: raw bytes that are not UTF-8, or \u escapes of lone UTF-16
// surrogates. encoding/json (and goccy/go-json) silently turn both into
// U+FFFD, so "bad-\xff" and "bad-\xfe" would decode to the same job id:
// the raw bytes must be checked before decoding. It assumes raw is
// otherwise JSON (decode it first to tell "not JSON" apart).
func CheckJSONText(raw []byte) error {
	if !utf8.Valid(raw) {
		at := 0
		for at < len(raw) {
			r, n := utf8.DecodeRune(raw[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return &InvalidError{Reason: ReasonInvalidUTF8, Detail: fmt.Sprintf("payload is not valid UTF-8 (byte 0x%02x at offset %d)", raw[at], at)}
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r, ok := Hex4(raw, i+2)
				switch {
				case !ok:
				case r >= 0xD800 && r < 0xDC00: // high surrogate: a low one must follow
					lo, ok := rune(0), false
					if i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
						lo, ok = Hex4(raw, i+8)
					}
					if !ok || lo < 0xDC00 || lo >= 0xE000 {
						return &InvalidError{Reason: ReasonInvalidUTF8, Detail: fmt.Sprintf("payload has a lone UTF-16 surrogate \\u%04x at offset %d", r, i)}
					}
					i += 11
					continue
				case r >= 0xDC00 && r < 0xE000:
					return &InvalidError{Reason: ReasonInvalidUTF8, Detail: fmt.Sprintf("payload has a lone UTF-16 surrogate \\u%04x at offset %d", r, i)}
				}
			}
			i++ // skip the escaped character
		}
	}
	return nil
}

// Hex4 reads the four hex digits of a JSON \u escape at b[at:], the one
// reading of them for CheckJSONText and the events package's envelope scanner.
func Hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
