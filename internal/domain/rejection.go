package domain

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Reasons an incoming event is refused or ignored. They label the
// events_dropped_total metric, so they are stable identifiers. The
// decoders (internal/events) give the first ones, the engine the last
// three (ReasonUnknownPool, ReasonStale, ReasonUnknownWorker).
const (
	ReasonTooLarge        = "too_large"
	ReasonBadSubject      = "bad_subject"
	ReasonNotJSON         = "not_json"
	ReasonBadEnvelope     = "bad_envelope"
	ReasonWrongType       = "wrong_type"
	ReasonMissingJobID    = "missing_job_id"
	ReasonPoolMismatch    = "pool_mismatch"
	ReasonBadWorkerID     = "bad_worker_id"
	ReasonBadOutcome      = "bad_outcome"
	ReasonBadResources    = "bad_resources"
	ReasonUnsupportedSpec = "unsupported_specversion"
	// The hodei-jobs input's (internal/inputs/hodeijobs) and the routing
	// rules' (internal/routing) own reasons.
	ReasonBadPayload     = "bad_payload"
	ReasonUnknownVariant = "unknown_variant"
	ReasonUnknownState   = "unknown_state"
	ReasonNoRoute        = "no_route"

	ReasonUnknownPool   = "unknown_pool"
	ReasonStale         = "stale"
	ReasonUnknownWorker = "unknown_worker"
	// ReasonInvalidUTF8: a string of the payload is not valid UTF-8
	// (refused, never rewritten to U+FFFD). ReasonBadJobID: the job id
	// has a control character. ReasonFutureTime: the event's time lies
	// further in the future than nats.max_clock_skew.
	ReasonInvalidUTF8 = "invalid_utf8"
	ReasonBadJobID    = "bad_job_id"
	ReasonFutureTime  = "future_time"
	// ReasonWorkerPoolMismatch: the event names a worker of another pool;
	// ReasonJobPoolMismatch: the job runs in another pool.
	ReasonWorkerPoolMismatch = "worker_pool_mismatch"
	ReasonJobPoolMismatch    = "job_pool_mismatch"
)

// InvalidError says why an event was rejected.
type InvalidError struct {
	Reason string // one of the Reason* constants
	Detail string
}

func (e *InvalidError) Error() string { return e.Reason + ": " + e.Detail }

// Invalidf makes an *InvalidError whose detail is cut to at most max
// bytes (on a rune boundary): details quote fields of the payload, which
// may be large, and they are logged.
func Invalidf(max int, reason, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	if len(detail) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(detail[cut]) {
			cut--
		}
		detail = detail[:cut] + "... (truncated)"
	}
	return &InvalidError{Reason: reason, Detail: detail}
}

// ReasonOf returns the rejection reason of err, or "" if err is not an
// *InvalidError.
func ReasonOf(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

// Delivery is one message of the job stream, decoded: what an input hands
// to the scaling loop. Exactly one of Event (when Err is nil) and Err is
// meaningful, except for a marker delivery, which only says that the
// retained stream has been read.
type Delivery struct {
	Event JobEvent
	Err   error  // an *InvalidError
	Type  string // the kind's CloudEvents type, or "unknown"
	// CaughtUp is set on the delivery after which no retained message
	// remains: the ledger now reflects the whole log.
	CaughtUp bool
	Marker   bool // no message: only CaughtUp
	// Ignored is set when the message is of a kind its input does not
	// use (a Hodei event about providers, say): counted as ignored, not
	// invalid.
	Ignored bool
	// Seq is the message's stream sequence (0 for a marker), valid or
	// not: the engine knows from it which messages it has already read.
	Seq uint64
	// Heartbeat, when set, is a worker's report read from an input's
	// stream (Hodei's WorkerHeartbeat) rather than a job event: it goes
	// where the workers' own heartbeats go (docs/events.md).
	Heartbeat *WorkerReport
}

// WorkerReport is a worker's word on the jobs it runs, at a time.
type WorkerReport struct {
	Pool   PoolName
	Worker WorkerID
	Jobs   []JobID
	Time   time.Time
}
