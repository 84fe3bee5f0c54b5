package hodeijobs

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/jsonscan"
)

// scratch holds what scanMessage fills, reused from message to message
// (a Decoder is used from one goroutine): the payload unescaped, the
// parsed message, and the values its pointer fields point to, so that a
// message the scanner takes costs no allocation beyond the strings and
// the label map the event keeps.
type scratch struct {
	buf []byte
	m   parsed

	correlationID, jobID, workerID, oldState, newState, provider string
	occurredAt, queuedAt                                         time.Time
	spec, requirements                                           specScratch
	hbWorker, hbJob                                              string
	hbOccurredAt                                                 time.Time

	// interned are the strings that repeat from job to job (images,
	// labels, workers, providers), kept once; cleared when full.
	interned map[string]string
}

const maxInterned = 4096

// intern is b as a string, the same one for the same bytes while they
// are in the table.
func (sc *scratch) intern(b []byte) string {
	if v, ok := sc.interned[string(b)]; ok {
		return v
	}
	if sc.interned == nil || len(sc.interned) >= maxInterned {
		sc.interned = make(map[string]string, 64)
	}
	v := string(b)
	sc.interned[v] = v
	return v
}

type specScratch struct {
	spec            jobSpec
	image, provider string
}

// scanMessage is the fast path of Decode for a message in the shape
// Hodei's server writes (NatsMessageEnvelope with the DomainEvent
// serialized in its payload string): it reads the envelope, unescapes the
// payload into the scratch buffer, and reads the one variant and, for
// the variants the decoder maps, their fields, straight from the bytes.
// It fills d.scratch.m as parse would and reports true, or declines
// (false) on anything unusual: an escape in a string it keeps, a member
// name that is not plain lower-case ASCII (encoding/json and goccy/go-json
// match struct fields case-insensitively, with Unicode folding), a
// repeated member it reads, a value of the wrong type, a number it cannot
// convert exactly as strconv does, invalid UTF-8, a UTF-16 surrogate
// escape, deep nesting, a variant DomainEvent does not have, anything
// that is not JSON. Then Decode takes the full decoder (parse), which
// decides and names the refusal. When it accepts, the envelope and the
// payload are valid JSON, valid UTF-8 and free of surrogate escapes, so
// domain.CheckJSONText would accept both. TestScanAgrees and
// FuzzScanAgrees hold it to that: the same parsed message as parse, the
// same Result as Decode without the fast path.
func (d *Decoder) scanMessage(data []byte) bool {
	sc := &d.scratch
	m := &sc.m
	*m = parsed{}
	s := scanner{Cursor: jsonscan.Cursor{Text: data}}
	s.WS()
	if !s.Eat('{') {
		return false
	}
	const (
		fPayload = 1 << iota
		fType
		fCorrelation
		fCreated
	)
	var seen jsonscan.Seen
	payload := false
	ok := s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "payload":
			bit = fPayload
		case "event_type":
			bit = fType
		case "correlation_id":
			bit = fCorrelation
		case "created_at":
			bit = fCreated
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		switch bit {
		case fPayload:
			var ok bool
			sc.buf, ok = s.unescape(sc.buf[:0])
			payload = ok
			return ok
		case fType: // read by nobody; a string or null all the same
			if s.Null() {
				return true
			}
			return s.Pos < len(s.Text) && s.Text[s.Pos] == '"' && s.SkipString()
		case fCorrelation:
			return s.stringPtr(&m.correlationID, &sc.correlationID, jsonscan.Copy)
		}
		if s.Null() {
			return true // a time.Time stays as it is
		}
		return s.time(&m.createdAt)
	})
	if !ok || !payload {
		return false
	}
	s.WS()
	if s.Pos != len(s.Text) {
		return false
	}
	return d.scanPayload(sc.buf)
}

// scanPayload reads the payload: an object of exactly one member, the
// variant.
func (d *Decoder) scanPayload(p []byte) bool {
	sc := &d.scratch
	m := &sc.m
	s := scanner{Cursor: jsonscan.Cursor{Text: p}, sc: sc}
	s.WS()
	if !s.Eat('{') {
		return false
	}
	s.WS()
	name, ok := s.PlainString() // a map key: matched exactly
	if !ok {
		return false
	}
	variant, known := variantNames[string(name)]
	if !known {
		return false
	}
	m.variant = variant
	s.WS()
	if !s.Eat(':') {
		return false
	}
	s.WS()
	switch variantKind(variant) {
	case kindJob:
		ok = s.jobFields(sc)
	case kindHeartbeat:
		ok = s.heartbeatFields(sc)
	default:
		ok = s.Skip(0)
	}
	if !ok {
		return false
	}
	s.WS()
	if !s.Eat('}') {
		return false
	}
	s.WS()
	return s.Pos == len(s.Text)
}

// variantNames maps each variant to its one string (no allocation per
// message).
var variantNames = func() map[string]string {
	m := map[string]string{}
	for _, v := range variantList {
		m[v] = v
	}
	return m
}()

// stateNames are JobState's names, kept without an allocation.
var stateNames = [...]string{"Pending", "Assigned", "Scheduled", "Running", "Succeeded", "Failed", "Cancelled", "Timeout", "ManualInterventionRequired"}

func stateName(b []byte) string {
	for _, v := range stateNames {
		if string(b) == v {
			return v
		}
	}
	return string(b)
}

func (s *scanner) jobFields(sc *scratch) bool {
	if !s.Eat('{') {
		return false
	}
	f := &sc.m.job
	const (
		fJob = 1 << iota
		fWorker
		fOld
		fNew
		fOccurred
		fQueued
		fSpec
		fRequirements
		fProvider
	)
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "job_id":
			bit = fJob
		case "worker_id":
			bit = fWorker
		case "old_state":
			bit = fOld
		case "new_state":
			bit = fNew
		case "occurred_at":
			bit = fOccurred
		case "queued_at":
			bit = fQueued
		case "spec":
			bit = fSpec
		case "job_requirements":
			bit = fRequirements
		case "preferred_provider":
			bit = fProvider
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		switch bit {
		case fJob:
			return s.stringPtr(&f.JobID, &sc.jobID, jsonscan.Copy)
		case fWorker:
			return s.stringPtr(&f.WorkerID, &sc.workerID, s.sc.intern)
		case fProvider:
			return s.stringPtr(&f.PreferredProvi, &sc.provider, s.sc.intern)
		case fOld:
			return s.stringPtr(&f.OldState, &sc.oldState, stateName)
		case fNew:
			return s.stringPtr(&f.NewState, &sc.newState, stateName)
		case fOccurred:
			return s.timePtr(&f.OccurredAt, &sc.occurredAt)
		case fQueued:
			return s.timePtr(&f.QueuedAt, &sc.queuedAt)
		case fSpec:
			return s.specPtr(&f.Spec, &sc.spec)
		}
		return s.specPtr(&f.Requirements, &sc.requirements)
	})
}

func (s *scanner) heartbeatFields(sc *scratch) bool {
	if !s.Eat('{') {
		return false
	}
	f := &sc.m.hb
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "worker_id":
			bit = 1
		case "current_job_id":
			bit = 2
		case "occurred_at":
			bit = 4
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		switch bit {
		case 1:
			return s.stringPtr(&f.WorkerID, &sc.hbWorker, s.sc.intern)
		case 2:
			return s.stringPtr(&f.CurrentJobID, &sc.hbJob, jsonscan.Copy)
		}
		return s.timePtr(&f.OccurredAt, &sc.hbOccurredAt)
	})
}

// specPtr reads a *jobSpec: null sets nil.
func (s *scanner) specPtr(dst **jobSpec, to *specScratch) bool {
	if s.Null() {
		*dst = nil
		return true
	}
	if !s.Eat('{') {
		return false
	}
	*to = specScratch{}
	spec := &to.spec
	*dst = spec
	const (
		fResources = 1 << iota
		fImage
		fPreferences
	)
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "resources":
			bit = fResources
		case "image":
			bit = fImage
		case "preferences":
			bit = fPreferences
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		switch bit {
		case fImage:
			return s.stringPtr(&spec.Image, &to.image, s.sc.intern)
		case fResources:
			if s.Null() {
				return true // a struct stays as it is
			}
			return s.resources(spec)
		}
		if s.Null() {
			return true
		}
		return s.preferences(spec, to)
	})
}

func (s *scanner) resources(spec *jobSpec) bool {
	if !s.Eat('{') {
		return false
	}
	r := &spec.Resources
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "cpu_cores":
			bit = 1
		case "memory_mb":
			bit = 2
		case "gpu_required":
			bit = 4
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		if s.Null() {
			return true
		}
		switch bit {
		case 1:
			return s.float64(&r.CPUCores)
		case 2:
			return s.Int64(&r.MemoryMB)
		}
		switch {
		case s.Literal("true"):
			r.GPURequired = true
		case s.Literal("false"):
			r.GPURequired = false
		default:
			return false
		}
		return true
	})
}

func (s *scanner) preferences(spec *jobSpec, to *specScratch) bool {
	if !s.Eat('{') {
		return false
	}
	p := &spec.Preferences
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "preferred_provider":
			bit = 1
		case "required_labels":
			bit = 2
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		if bit == 1 {
			return s.stringPtr(&p.PreferredProvider, &to.provider, s.sc.intern)
		}
		if s.Null() {
			p.RequiredLabels = nil
			return true
		}
		return s.StringMap(&p.RequiredLabels, s.sc.intern)
	})
}

// scanner walks a JSON text; every method reports false to decline. Its
// primitives are those of internal/events/scan.go (the own contract's
// envelope scanner).
type scanner struct {
	jsonscan.Cursor
	sc *scratch // for interning; nil: none
}

// unescape reads a string (the envelope's payload) and appends its
// value to dst: the escapes decoded as encoding/json decodes them,
// declining a UTF-16 surrogate escape (paired or not), a control
// character and invalid UTF-8. Hodei's payload has an escaped quote every
// few bytes, so it copies byte by byte into room made once (a value is
// never longer than its escaped form).
func (s *scanner) unescape(dst []byte) ([]byte, bool) {
	if !s.Eat('"') {
		return dst, false
	}
	p, i := s.Text, s.Pos
	start, high := i, false
	base := len(dst)
	dst = slices.Grow(dst, len(p)-i)
	out := dst[base : base+len(p)-i]
	j := 0
	for i < len(p) {
		c := p[i]
		if jsonscan.PlainByte(c) {
			out[j] = c
			i++
			j++
			continue
		}
		switch {
		case c == '"':
			s.Pos = i + 1
			return dst[:base+j], !high || utf8.Valid(p[start:i])
		case c < 0x20:
			return dst, false
		case c >= 0x80:
			high = true
			out[j] = c
			i++
			j++
			continue
		}
		// '\'
		if i+1 >= len(p) {
			return dst, false
		}
		e := p[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
		case 'b':
			e = '\b'
		case 'f':
			e = '\f'
		case 'n':
			e = '\n'
		case 'r':
			e = '\r'
		case 't':
			e = '\t'
		case 'u':
			r, ok := domain.Hex4(p, i)
			if !ok || (r >= 0xD800 && r < 0xE000) {
				return dst, false
			}
			j += utf8.EncodeRune(out[j:], r) // 6 escaped bytes, at most 3 encoded
			i += 4
			continue
		default:
			return dst, false
		}
		out[j] = e
		j++
	}
	return dst, false
}

// stringPtr reads a *string: null sets nil, a plain string sets *dst to
// to, holding str of its bytes.
func (s *scanner) stringPtr(dst **string, to *string, str func([]byte) string) bool {
	if s.Null() {
		*dst = nil
		return true
	}
	b, ok := s.PlainString()
	if !ok {
		return false
	}
	*to = str(b)
	*dst = to
	return true
}

// timePtr reads a *time.Time: null sets nil.
func (s *scanner) timePtr(dst **time.Time, to *time.Time) bool {
	if s.Null() {
		*dst = nil
		return true
	}
	*to = time.Time{}
	if !s.time(to) {
		return false
	}
	*dst = to
	return true
}

// time reads a string into a time.Time as its UnmarshalJSON does.
func (s *scanner) time(t *time.Time) bool {
	start := s.Pos
	if _, ok := s.PlainString(); !ok {
		return false
	}
	if raw := s.Text[start+1 : s.Pos-1]; jsonscan.UTCTime(raw, t) {
		return true
	}
	var v time.Time
	if v.UnmarshalJSON(s.Text[start:s.Pos]) != nil {
		return false
	}
	*t = v
	return true
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float64 reads a decimal number without exponent of at most 15 digits,
// whose value is then exact as strconv.ParseFloat computes it (its exact
// fast path: an integer below 2^53 divided by an exact power of ten, one
// correctly rounded operation); anything else is the full decoder's.
func (s *scanner) float64(dst *float64) bool {
	neg := s.Eat('-')
	start := s.Pos
	mant := s.Digits(0)
	n := s.Pos - start
	if n == 0 || (n > 1 && s.Text[start] == '0') {
		return false
	}
	digits, frac := n, 0
	if s.Eat('.') {
		fs := s.Pos
		mant = s.Digits(mant)
		frac = s.Pos - fs
		if frac == 0 {
			return false
		}
		digits += frac
	}
	if digits > 15 {
		return false
	}
	if s.Pos < len(s.Text) && (s.Text[s.Pos] == 'e' || s.Text[s.Pos] == 'E') {
		return false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	*dst = f
	return true
}
