package hodeijobs

import (
	"encoding/binary"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/hodei/hodei-autoscaler/internal/domain"
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
	s := scanner{p: data}
	s.ws()
	if !s.eat('{') {
		return false
	}
	const (
		fPayload = 1 << iota
		fType
		fCorrelation
		fCreated
	)
	var seen uint
	payload := false
	ok := s.members(func(key []byte) bool {
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
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case fPayload:
			var ok bool
			sc.buf, ok = s.unescape(sc.buf[:0])
			payload = ok
			return ok
		case fType: // read by nobody; a string or null all the same
			if s.null() {
				return true
			}
			return s.i < len(s.p) && s.p[s.i] == '"' && s.skipString()
		case fCorrelation:
			return s.stringPtr(&m.correlationID, &sc.correlationID)
		}
		if s.null() {
			return true // a time.Time stays as it is
		}
		return s.time(&m.createdAt)
	})
	if !ok || !payload {
		return false
	}
	s.ws()
	if s.i != len(s.p) {
		return false
	}
	return d.scanPayload(sc.buf)
}

// scanPayload reads the payload: an object of exactly one member, the
// variant.
func (d *Decoder) scanPayload(p []byte) bool {
	sc := &d.scratch
	m := &sc.m
	s := scanner{p: p, sc: sc}
	s.ws()
	if !s.eat('{') {
		return false
	}
	s.ws()
	name, ok := s.plainString() // a map key: matched exactly
	if !ok {
		return false
	}
	variant, known := variantNames[string(name)]
	if !known {
		return false
	}
	m.variant = variant
	s.ws()
	if !s.eat(':') {
		return false
	}
	s.ws()
	switch variantKind(variant) {
	case kindJob:
		ok = s.jobFields(sc)
	case kindHeartbeat:
		ok = s.heartbeatFields(sc)
	default:
		ok = s.skip(0)
	}
	if !ok {
		return false
	}
	s.ws()
	if !s.eat('}') {
		return false
	}
	s.ws()
	return s.i == len(s.p)
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
	if !s.eat('{') {
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
	var seen uint
	return s.members(func(key []byte) bool {
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
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case fJob:
			return s.stringPtr(&f.JobID, &sc.jobID)
		case fWorker:
			return s.commonPtr(&f.WorkerID, &sc.workerID)
		case fProvider:
			return s.commonPtr(&f.PreferredProvi, &sc.provider)
		case fOld:
			return s.statePtr(&f.OldState, &sc.oldState)
		case fNew:
			return s.statePtr(&f.NewState, &sc.newState)
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
	if !s.eat('{') {
		return false
	}
	f := &sc.m.hb
	var seen uint
	return s.members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "worker_id":
			bit = 1
		case "current_job_id":
			bit = 2
		case "occurred_at":
			bit = 4
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case 1:
			return s.commonPtr(&f.WorkerID, &sc.hbWorker)
		case 2:
			return s.stringPtr(&f.CurrentJobID, &sc.hbJob)
		}
		return s.timePtr(&f.OccurredAt, &sc.hbOccurredAt)
	})
}

// specPtr reads a *jobSpec: null sets nil.
func (s *scanner) specPtr(dst **jobSpec, to *specScratch) bool {
	if s.null() {
		*dst = nil
		return true
	}
	if !s.eat('{') {
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
	var seen uint
	return s.members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "resources":
			bit = fResources
		case "image":
			bit = fImage
		case "preferences":
			bit = fPreferences
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case fImage:
			return s.commonPtr(&spec.Image, &to.image)
		case fResources:
			if s.null() {
				return true // a struct stays as it is
			}
			return s.resources(spec)
		}
		if s.null() {
			return true
		}
		return s.preferences(spec, to)
	})
}

func (s *scanner) resources(spec *jobSpec) bool {
	if !s.eat('{') {
		return false
	}
	r := &spec.Resources
	var seen uint
	return s.members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "cpu_cores":
			bit = 1
		case "memory_mb":
			bit = 2
		case "gpu_required":
			bit = 4
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
		switch bit {
		case 1:
			return s.float64(&r.CPUCores)
		case 2:
			return s.int64(&r.MemoryMB)
		}
		switch {
		case s.literal("true"):
			r.GPURequired = true
		case s.literal("false"):
			r.GPURequired = false
		default:
			return false
		}
		return true
	})
}

func (s *scanner) preferences(spec *jobSpec, to *specScratch) bool {
	if !s.eat('{') {
		return false
	}
	p := &spec.Preferences
	var seen uint
	return s.members(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "preferred_provider":
			bit = 1
		case "required_labels":
			bit = 2
		default:
			return s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if bit == 1 {
			return s.commonPtr(&p.PreferredProvider, &to.provider)
		}
		if s.null() {
			p.RequiredLabels = nil
			return true
		}
		return s.labels(&p.RequiredLabels)
	})
}

// scanner walks a JSON text; every method reports false to decline. Its
// primitives are those of internal/events/scan.go (the own contract's
// envelope scanner).
type scanner struct {
	p  []byte
	i  int
	sc *scratch // for interning; nil: none
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

func (s *scanner) null() bool { return s.literal("null") }

// members walks the members of an object whose '{' is consumed, calling
// member with each name (plain lower-case ASCII only) positioned at the
// value.
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

var stringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape reads a string (the envelope's payload) and appends its
// value to dst: the escapes decoded as encoding/json decodes them,
// declining a UTF-16 surrogate escape (paired or not), a control
// character and invalid UTF-8. Hodei's payload has an escaped quote every
// few bytes, so it copies byte by byte into room made once (a value is
// never longer than its escaped form).
func (s *scanner) unescape(dst []byte) ([]byte, bool) {
	if !s.eat('"') {
		return dst, false
	}
	p, i := s.p, s.i
	start, high := i, false
	base := len(dst)
	dst = slices.Grow(dst, len(p)-i)
	out := dst[base : base+len(p)-i]
	j := 0
	for i < len(p) {
		c := p[i]
		if stringByte[c] {
			out[j] = c
			i++
			j++
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
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
// to, holding its value.
func (s *scanner) stringPtr(dst **string, to *string) bool {
	if s.null() {
		*dst = nil
		return true
	}
	b, ok := s.plainString()
	if !ok {
		return false
	}
	*to = string(b)
	*dst = to
	return true
}

// commonPtr is stringPtr for a value that repeats from job to job,
// interned.
func (s *scanner) commonPtr(dst **string, to *string) bool {
	if s.null() {
		*dst = nil
		return true
	}
	b, ok := s.plainString()
	if !ok {
		return false
	}
	*to = s.sc.intern(b)
	*dst = to
	return true
}

// statePtr is stringPtr for a JobState, its names without an allocation.
func (s *scanner) statePtr(dst **string, to *string) bool {
	if s.null() {
		*dst = nil
		return true
	}
	b, ok := s.plainString()
	if !ok {
		return false
	}
	*to = stateName(b)
	*dst = to
	return true
}

// timePtr reads a *time.Time: null sets nil.
func (s *scanner) timePtr(dst **time.Time, to *time.Time) bool {
	if s.null() {
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
	start := s.i
	if _, ok := s.plainString(); !ok {
		return false
	}
	if raw := s.p[start+1 : s.i-1]; utcTime(raw, t) {
		return true
	}
	var v time.Time
	if v.UnmarshalJSON(s.p[start:s.i]) != nil {
		return false
	}
	*t = v
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
		for range 30 - n {
			nsec *= 10
		}
	}
	v := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if v.Day() != day {
		return false
	}
	*t = v
	return true
}

// int64 reads an integer literal of at most 18 digits (a fraction or an
// exponent is refused for an int64 field; longer ones may overflow: the
// full decoder decides).
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

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float64 reads a decimal number without exponent of at most 15 digits,
// whose value is then exact as strconv.ParseFloat computes it (its exact
// fast path: an integer below 2^53 divided by an exact power of ten, one
// correctly rounded operation); anything else is the full decoder's.
func (s *scanner) float64(dst *float64) bool {
	neg := s.eat('-')
	start := s.i
	var mant uint64
	for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
		mant = mant*10 + uint64(s.p[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || (n > 1 && s.p[start] == '0') {
		return false
	}
	digits, frac := n, 0
	if s.eat('.') {
		fs := s.i
		for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
			mant = mant*10 + uint64(s.p[s.i]-'0')
			s.i++
		}
		frac = s.i - fs
		if frac == 0 {
			return false
		}
		digits += frac
	}
	if digits > 15 {
		return false
	}
	if s.i < len(s.p) && (s.p[s.i] == 'e' || s.p[s.i] == 'E') {
		return false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	*dst = f
	return true
}

// labels decodes an object of strings into a new map, as encoding/json
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
		m[s.sc.intern(k)] = s.sc.intern(v)
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
