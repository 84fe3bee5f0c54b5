package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// maxDetail bounds a domain.InvalidError's Detail: it quotes fields of the
// payload, which may be as long as nats.max_event_bytes, and it is logged.
const maxDetail = 512

func invalid(reason, format string, args ...any) error {
	return domain.Invalidf(maxDetail, reason, format, args...)
}

// Decoder turns a job message into a validated domain.JobEvent.
type Decoder struct {
	Subjects Subjects
	MaxBytes int
	// MaxClockSkew is how far in the future of the stream's clock an
	// event's time may lie (nats.max_clock_skew); 0: no check.
	MaxClockSkew time.Duration
	// Workers, when set, shares the string of a worker id among the
	// events that carry it (structured mode's fast path; see Interner).
	// The Consumer of an input sets one (internal/inputs).
	Workers *Interner
}

// envelope decodes the CloudEvent and the job data in one pass.
type envelope struct {
	SpecVersion string         `json:"specversion"`
	ID          string         `json:"id"`
	Source      string         `json:"source"`
	Type        string         `json:"type"`
	Time        *time.Time     `json:"time"`
	Data        domain.JobData `json:"data"`
	// The distributed tracing extension, kept in structured mode too
	// (binary mode keeps every extension: binary.go).
	TraceParent string `json:"traceparent"`
	TraceState  string `json:"tracestate"`
	// at is the time scanEnvelope decoded when hasAt (Time stays nil
	// then): the pointer json.Unmarshal wants would be an allocation per
	// event.
	at    time.Time
	hasAt bool
}

// eventTime is the envelope's time, from either decoder (zero: none).
func (env *envelope) eventTime() time.Time {
	switch {
	case env.Time != nil:
		return *env.Time
	case env.hasAt:
		return env.at
	}
	return time.Time{}
}

// check applies the size limit and parses the subject, for both modes.
func (d Decoder) check(subject string, payload []byte) (domain.PoolName, domain.JobKind, error) {
	if d.MaxBytes > 0 && len(payload) > d.MaxBytes {
		return "", 0, invalid(domain.ReasonTooLarge, "payload of %d bytes exceeds nats.max_event_bytes %d", len(payload), d.MaxBytes)
	}
	pool, kind, ok := d.Subjects.ParseJob(subject)
	if !ok {
		return "", 0, invalid(domain.ReasonBadSubject, "subject %q is not %s.jobs.<pool>.<queued|started|finished>", subject, d.Subjects.Prefix)
	}
	return pool, kind, nil
}

// Decode validates the subject and the payload. The error, if any, is an
// *domain.InvalidError naming the reason.
func (d Decoder) Decode(subject string, payload []byte) (domain.JobEvent, error) {
	return d.decode(subject, payload, true)
}

// decode is Decode, with the fast path (scanEnvelope) or, for the tests
// that compare the two, without it.
func (d Decoder) decode(subject string, payload []byte, fast bool) (domain.JobEvent, error) {
	pool, kind, err := d.check(subject, payload)
	if err != nil {
		return domain.JobEvent{}, err
	}
	if fast {
		// Its own envelope, which stays on the stack: the full decoder's
		// (decodeFull) escapes through json.Unmarshal's argument, and
		// declared here it would be allocated for every event.
		var env envelope
		if scanEnvelope(payload, &env, string(pool), d.Workers) {
			return d.finish(pool, kind, &env)
		}
	}
	return d.decodeFull(pool, kind, payload)
}

// decodeFull is decode's full decoder: goccy/go-json, encoding/json on
// error (naming the refusal), then domain.CheckJSONText.
func (d Decoder) decodeFull(pool domain.PoolName, kind domain.JobKind, payload []byte) (domain.JobEvent, error) {
	var env envelope
	if err := unmarshalEnvelope(payload, &env); err != nil {
		var se *json.SyntaxError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "field %q has the wrong type: %v", ute.Field, err)
		case errors.As(err, &se), !json.Valid(payload):
			return domain.JobEvent{}, invalid(domain.ReasonNotJSON, "payload is not JSON: %v", err)
		default:
			return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "%v", err)
		}
	}
	if err := domain.CheckJSONText(payload); err != nil {
		return domain.JobEvent{}, err
	}
	return d.finish(pool, kind, &env)
}

// finish checks a decoded structured-mode envelope and builds the event.
func (d Decoder) finish(pool domain.PoolName, kind domain.JobKind, env *envelope) (domain.JobEvent, error) {
	if env.SpecVersion == "" {
		return domain.JobEvent{}, invalid(domain.ReasonUnsupportedSpec, "no specversion: not a structured-mode CloudEvent, and no ce-specversion header for binary mode")
	}
	if env.SpecVersion != "1.0" {
		return domain.JobEvent{}, invalid(domain.ReasonUnsupportedSpec, "specversion %q is not 1.0", env.SpecVersion)
	}
	ev, err := d.validate(pool, kind, env)
	if err != nil {
		return domain.JobEvent{}, err
	}
	if env.TraceParent != "" || env.TraceState != "" {
		ev.Extensions = map[string]string{}
		if env.TraceParent != "" {
			ev.Extensions["traceparent"] = bounded(env.TraceParent)
		}
		if env.TraceState != "" {
			ev.Extensions["tracestate"] = bounded(env.TraceState)
		}
	}
	return ev, nil
}

// validate checks the attributes and the data of a CloudEvent, decoded
// from either mode, against the subject's pool and kind.
func (d Decoder) validate(pool domain.PoolName, kind domain.JobKind, env *envelope) (domain.JobEvent, error) {
	if env.ID == "" || env.Source == "" {
		return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "a CloudEvent needs id and source")
	}
	if env.Type != kind.Type() {
		return domain.JobEvent{}, invalid(domain.ReasonWrongType, "type %q does not match subject kind %q (want %q)", env.Type, kind, kind.Type())
	}
	data := env.Data
	if err := domain.ValidateJobID(data.JobID); err != nil {
		return domain.JobEvent{}, err
	}
	if data.Pool != "" && data.Pool != string(pool) {
		return domain.JobEvent{}, invalid(domain.ReasonPoolMismatch, "data.pool %q contradicts subject pool %q", data.Pool, pool)
	}
	ev := domain.JobEvent{
		Kind:   kind,
		ID:     env.ID,
		Pool:   pool,
		JobID:  domain.JobID(data.JobID),
		Labels: data.Labels,
	}
	ev.Time = env.eventTime()
	if data.WorkerID != "" {
		w, err := domain.ParseWorkerID(data.WorkerID)
		if err != nil {
			return domain.JobEvent{}, invalid(domain.ReasonBadWorkerID, "data.worker_id: %v", err)
		}
		ev.WorkerID = w
	}
	switch kind {
	case domain.JobQueued:
		if r := data.Resources; r != nil {
			if r.CPUMillis < 0 || r.MemoryMB < 0 {
				return domain.JobEvent{}, invalid(domain.ReasonBadResources, "data.resources must not be negative")
			}
			ev.Resources = *r
		}
	case domain.JobStarted:
		if ev.WorkerID == "" {
			return domain.JobEvent{}, invalid(domain.ReasonBadWorkerID, "data.worker_id is required in a started event")
		}
	case domain.JobFinished:
		switch domain.Outcome(data.Outcome) {
		case domain.OutcomeSucceeded, domain.OutcomeFailed, domain.OutcomeCancelled:
			ev.Outcome = domain.Outcome(data.Outcome)
		default:
			return domain.JobEvent{}, invalid(domain.ReasonBadOutcome, "data.outcome %q is not succeeded, failed or cancelled", data.Outcome)
		}
	}
	return ev, nil
}

// EncodeExt is Encode with extension attributes, written at the top level
// as structured mode wants them, sorted by name. Names that are not valid
// extension names (lower-case letters and digits) or that are context
// attributes are left out.
func EncodeExt(id, source, typ string, t time.Time, data any, ext map[string]string) ([]byte, error) {
	out, err := Encode(id, source, typ, t, data)
	if err != nil || len(ext) == 0 {
		return out, err
	}
	names := make([]string, 0, len(ext))
	for k := range ext {
		if extensionName(k) && !binaryAttrs[k] && k != "data" && k != "data_base64" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out = out[:len(out)-1] // the closing brace
	for _, k := range names {
		v, err := json.Marshal(ext[k])
		if err != nil {
			return nil, fmt.Errorf("encoding extension %s: %w", k, err)
		}
		out = append(out, ',', '"')
		out = append(out, k...)
		out = append(out, '"', ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}

// extensionName: CloudEvents 1.0 attribute names are lower-case ASCII
// letters and digits, at most 20 of them.
func extensionName(k string) bool {
	if k == "" || len(k) > 20 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Encode builds a CloudEvent in structured JSON mode. It is used for the
// events this daemon publishes, by the queue command and by tests.
func Encode(id, source, typ string, t time.Time, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding event data: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) + 192)
	err = json.NewEncoder(&buf).Encode(domain.CloudEvent{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          source,
		Type:            typ,
		Time:            t.UTC(),
		DataContentType: "application/json",
		Data:            raw,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
