package events

import (
	"time"
	"unsafe"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/jsonscan"
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
// workers, when not nil, gives data.worker_id's string (Interner).
func scanEnvelope(p []byte, env *envelope, pool string, workers *Interner) bool {
	*env = envelope{}
	s := scanner{Cursor: jsonscan.Cursor{Text: p}, pool: pool, workers: workers}
	s.WS()
	if !s.Eat('{') {
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
	var seen jsonscan.Seen
	ok := s.Members(func(key []byte) bool {
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
			if s.Null() {
				return true
			}
			return s.data(&env.Data)
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
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
	s.WS()
	return s.Pos == len(s.Text)
}

// scanner walks a JSON text; every method reports false to decline.
type scanner struct {
	jsonscan.Cursor
	pool    string
	workers *Interner
}

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
	worker                        // the scanner's Interner's string (a copy without one)
)

// stringOrNull decodes a string into dst; null leaves dst as it is (as
// json.Unmarshal does).
func (s *scanner) stringOrNull(dst *string, mode stringMode) bool {
	if s.Null() {
		return true
	}
	b, ok := s.PlainString()
	if !ok {
		return false
	}
	switch mode {
	case common:
		*dst = intern(b)
	case worker:
		*dst = s.workers.String(b)
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
	if s.Null() {
		return true
	}
	start := s.Pos
	if _, ok := s.PlainString(); !ok {
		return false
	}
	if raw := s.Text[start+1 : s.Pos-1]; !jsonscan.UTCTime(raw, at) && at.UnmarshalJSON(s.Text[start:s.Pos]) != nil {
		return false
	}
	*set = true
	return true
}

// data decodes the job data object.
func (s *scanner) data(d *domain.JobData) bool {
	if !s.Eat('{') {
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
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
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
			if s.Null() {
				return true
			}
			b, ok := s.PlainString()
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
			if s.Null() {
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
			if s.Null() {
				d.Labels = nil
				return true
			}
			return s.StringMap(&d.Labels, jsonscan.Copy)
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		mode := copied
		switch bit {
		case fOutcome:
			mode = common
		case fWorker:
			mode = worker
		}
		return s.stringOrNull(str, mode)
	})
}

func (s *scanner) resources(r *domain.Resources) bool {
	if !s.Eat('{') {
		return false
	}
	var seen jsonscan.Seen
	return s.Members(func(key []byte) bool {
		var dst *int64
		var bit uint
		switch string(key) {
		case "cpu_millis":
			dst, bit = &r.CPUMillis, 1
		case "memory_mb":
			dst, bit = &r.MemoryMB, 2
		default:
			return s.Skip(0)
		}
		if !seen.First(bit) {
			return false
		}
		if s.Null() {
			return true
		}
		return s.Int64(dst)
	})
}
