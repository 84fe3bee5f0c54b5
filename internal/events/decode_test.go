package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

const (
	decWorker = "3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b"
	decTime   = "2026-11-27T09:00:00.123456789Z"
)

// decoderUnderTest decodes with the default prefix and limit.
var decoderUnderTest = events.Decoder{Subjects: events.Subjects{Prefix: "hodei"}, MaxBytes: 64 << 10}

// decEvent is a CloudEvent as a map, so tests can drop or retype any field.
func decEvent(typ string, data any) map[string]any {
	return map[string]any{
		"specversion":     "1.0",
		"id":              "ev-1",
		"source":          "hodei-scheduler",
		"type":            typ,
		"time":            decTime,
		"datacontenttype": "application/json",
		"data":            data,
	}
}

// decWith returns a copy of ev with key set to v (or removed when v is
// decDelete).
func decWith(ev map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(ev))
	for k, x := range ev {
		out[k] = x
	}
	if v == decDelete {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

var decDelete = new(int)

func decJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeValid(t *testing.T) {
	when, _ := time.Parse(time.RFC3339Nano, decTime)
	cases := []struct {
		name    string
		subject string
		event   map[string]any
		want    domain.JobEvent
	}{
		{"queued with every field", "hodei.jobs.linux-small.queued",
			decEvent("hodei.job.queued", map[string]any{
				"job_id": "build-4711", "pool": "linux-small",
				"resources": map[string]any{"cpu_millis": 500, "memory_mb": 256},
				"labels":    map[string]any{"duration": "30s", "repo": "hodei"},
			}),
			domain.JobEvent{Kind: domain.JobQueued, ID: "ev-1", Time: when, Pool: "linux-small", JobID: "build-4711",
				Resources: domain.Resources{CPUMillis: 500, MemoryMB: 256}, Labels: map[string]string{"duration": "30s", "repo": "hodei"}}},
		{"queued with only job_id", "hodei.jobs.a.queued",
			decEvent("hodei.job.queued", map[string]any{"job_id": "j"}),
			domain.JobEvent{Kind: domain.JobQueued, ID: "ev-1", Time: when, Pool: "a", JobID: "j"}},
		{"queued without time", "hodei.jobs.a.queued",
			decWith(decEvent("hodei.job.queued", map[string]any{"job_id": "j"}), "time", decDelete),
			domain.JobEvent{Kind: domain.JobQueued, ID: "ev-1", Pool: "a", JobID: "j"}},
		{"started", "hodei.jobs.a.started",
			decEvent("hodei.job.started", map[string]any{"job_id": "j", "pool": "a", "worker_id": decWorker}),
			domain.JobEvent{Kind: domain.JobStarted, ID: "ev-1", Time: when, Pool: "a", JobID: "j", WorkerID: decWorker}},
		{"finished succeeded", "hodei.jobs.a.finished",
			decEvent("hodei.job.finished", map[string]any{"job_id": "j", "pool": "a", "worker_id": decWorker, "outcome": "succeeded"}),
			domain.JobEvent{Kind: domain.JobFinished, ID: "ev-1", Time: when, Pool: "a", JobID: "j", WorkerID: decWorker, Outcome: domain.OutcomeSucceeded}},
		{"finished failed without worker", "hodei.jobs.a.finished",
			decEvent("hodei.job.finished", map[string]any{"job_id": "j", "outcome": "failed"}),
			domain.JobEvent{Kind: domain.JobFinished, ID: "ev-1", Time: when, Pool: "a", JobID: "j", Outcome: domain.OutcomeFailed}},
		{"finished cancelled", "hodei.jobs.a.finished",
			decEvent("hodei.job.finished", map[string]any{"job_id": "j", "outcome": "cancelled"}),
			domain.JobEvent{Kind: domain.JobFinished, ID: "ev-1", Time: when, Pool: "a", JobID: "j", Outcome: domain.OutcomeCancelled}},
		{"unknown fields are ignored", "hodei.jobs.a.queued",
			decWith(decEvent("hodei.job.queued", map[string]any{"job_id": "j", "priority": 3}), "subject", "extension"),
			domain.JobEvent{Kind: domain.JobQueued, ID: "ev-1", Time: when, Pool: "a", JobID: "j"}},
		{"job_id of 256 bytes", "hodei.jobs.a.queued",
			decEvent("hodei.job.queued", map[string]any{"job_id": strings.Repeat("j", 256)}),
			domain.JobEvent{Kind: domain.JobQueued, ID: "ev-1", Time: when, Pool: "a", JobID: domain.JobID(strings.Repeat("j", 256))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decoderUnderTest.Decode(c.subject, decJSON(t, c.event))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !got.Time.Equal(c.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, c.want.Time)
			}
			got.Time, c.want.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Decode =\n %+v\nwant\n %+v", got, c.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	q := func(data map[string]any) map[string]any { return decEvent("hodei.job.queued", data) }
	s := func(data map[string]any) map[string]any { return decEvent("hodei.job.started", data) }
	f := func(data map[string]any) map[string]any { return decEvent("hodei.job.finished", data) }
	job := map[string]any{"job_id": "j"}
	const qs, ss, fs = "hodei.jobs.a.queued", "hodei.jobs.a.started", "hodei.jobs.a.finished"
	cases := []struct {
		name    string
		subject string
		payload any // []byte / string as is, anything else as JSON
		reason  string
	}{
		{"not JSON", qs, "not json", domain.ReasonNotJSON},
		{"truncated JSON", qs, `{"specversion":"1.0"`, domain.ReasonNotJSON},
		{"empty payload", qs, "", domain.ReasonNotJSON},
		{"two JSON values", qs, `{}{}`, domain.ReasonNotJSON},
		{"invalid UTF-8 outside strings", qs, []byte{'{', 0xff, '}'}, domain.ReasonNotJSON},
		{"data a string", qs, decEvent("hodei.job.queued", "j"), domain.ReasonBadEnvelope},
		{"data a list", qs, decEvent("hodei.job.queued", []string{"j"}), domain.ReasonBadEnvelope},
		{"job_id a number", qs, q(map[string]any{"job_id": 42}), domain.ReasonBadEnvelope},
		{"labels not strings", qs, q(map[string]any{"job_id": "j", "labels": map[string]any{"n": 1}}), domain.ReasonBadEnvelope},
		{"resources fractional", qs, q(map[string]any{"job_id": "j", "resources": map[string]any{"cpu_millis": 0.5}}), domain.ReasonBadEnvelope},
		{"time not a time", qs, decWith(q(job), "time", "yesterday"), domain.ReasonBadEnvelope},
		{"id a number", qs, decWith(q(job), "id", 7), domain.ReasonBadEnvelope},
		{"top-level list", qs, `[1,2]`, domain.ReasonBadEnvelope},
		{"top-level string", qs, `"x"`, domain.ReasonBadEnvelope},
		{"no id", qs, decWith(q(job), "id", decDelete), domain.ReasonBadEnvelope},
		{"no source", qs, decWith(q(job), "source", ""), domain.ReasonBadEnvelope},
		{"specversion 0.3", qs, decWith(q(job), "specversion", "0.3"), domain.ReasonUnsupportedSpec},
		{"specversion missing", qs, decWith(q(job), "specversion", decDelete), domain.ReasonUnsupportedSpec},
		{"top-level null", qs, `null`, domain.ReasonUnsupportedSpec},
		{"wrong type for the subject", qs, decEvent("hodei.job.started", map[string]any{"job_id": "j", "worker_id": decWorker}), domain.ReasonWrongType},
		{"finished type on started subject", ss, f(map[string]any{"job_id": "j", "outcome": "failed"}), domain.ReasonWrongType},
		{"no type", qs, decWith(q(job), "type", decDelete), domain.ReasonWrongType},
		{"worker type", qs, decEvent("hodei.worker.ready", job), domain.ReasonWrongType},
		{"unknown kind subject", "hodei.jobs.a.cancelled", q(job), domain.ReasonBadSubject},
		{"wrong prefix", "other.jobs.a.queued", q(job), domain.ReasonBadSubject},
		{"worker subject", "hodei.workers.a.ready", q(job), domain.ReasonBadSubject},
		{"pool with a dot", "hodei.jobs.a.b.queued", q(job), domain.ReasonBadSubject},
		{"missing job_id", qs, q(map[string]any{"pool": "a"}), domain.ReasonMissingJobID},
		{"empty job_id", qs, q(map[string]any{"job_id": ""}), domain.ReasonMissingJobID},
		{"null data", qs, decEvent("hodei.job.queued", nil), domain.ReasonMissingJobID},
		{"no data", qs, decWith(q(job), "data", decDelete), domain.ReasonMissingJobID},
		{"job_id over 256 bytes", qs, q(map[string]any{"job_id": strings.Repeat("j", 257)}), domain.ReasonMissingJobID},
		{"data.pool contradicts the subject", qs, q(map[string]any{"job_id": "j", "pool": "b"}), domain.ReasonPoolMismatch},
		{"data.pool differs in case", qs, q(map[string]any{"job_id": "j", "pool": "A"}), domain.ReasonPoolMismatch},
		{"worker_id not a UUID", ss, s(map[string]any{"job_id": "j", "worker_id": "worker-1"}), domain.ReasonBadWorkerID},
		{"worker_id in upper case", ss, s(map[string]any{"job_id": "j", "worker_id": strings.ToUpper(decWorker)}), domain.ReasonBadWorkerID},
		{"worker_id in braces", ss, s(map[string]any{"job_id": "j", "worker_id": "{" + decWorker + "}"}), domain.ReasonBadWorkerID},
		{"worker_id as URN", ss, s(map[string]any{"job_id": "j", "worker_id": "urn:uuid:" + decWorker}), domain.ReasonBadWorkerID},
		{"worker_id without hyphens", ss, s(map[string]any{"job_id": "j", "worker_id": strings.ReplaceAll(decWorker, "-", "")}), domain.ReasonBadWorkerID},
		{"worker_id not canonical in finished", fs, f(map[string]any{"job_id": "j", "worker_id": "nope", "outcome": "failed"}), domain.ReasonBadWorkerID},
		{"started without worker_id", ss, s(map[string]any{"job_id": "j"}), domain.ReasonBadWorkerID},
		{"bad outcome", fs, f(map[string]any{"job_id": "j", "outcome": "success"}), domain.ReasonBadOutcome},
		{"outcome in upper case", fs, f(map[string]any{"job_id": "j", "outcome": "FAILED"}), domain.ReasonBadOutcome},
		{"no outcome", fs, f(map[string]any{"job_id": "j"}), domain.ReasonBadOutcome},
		{"negative cpu", qs, q(map[string]any{"job_id": "j", "resources": map[string]any{"cpu_millis": -1}}), domain.ReasonBadResources},
		{"negative memory", qs, q(map[string]any{"job_id": "j", "resources": map[string]any{"memory_mb": -256}}), domain.ReasonBadResources},
		{"huge pool echoed", qs, q(map[string]any{"job_id": "j", "pool": strings.Repeat("p", 60000)}), domain.ReasonPoolMismatch},
		{"huge time echoed", qs, decWith(q(job), "time", strings.Repeat("é", 30000)), domain.ReasonBadEnvelope},
		{"huge type echoed", qs, decWith(q(job), "type", strings.Repeat("t", 60000)), domain.ReasonWrongType},
		{"huge outcome echoed", fs, f(map[string]any{"job_id": "j", "outcome": strings.Repeat("o", 60000)}), domain.ReasonBadOutcome},
		{"1 MB payload", qs, q(map[string]any{"job_id": "j", "labels": map[string]any{"pad": strings.Repeat("x", 1<<20)}}), domain.ReasonTooLarge},
		{"1 MB of garbage on a bad subject", "nope", strings.Repeat("x", 1<<20), domain.ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var payload []byte
			switch p := c.payload.(type) {
			case []byte:
				payload = p
			case string:
				payload = []byte(p)
			default:
				payload = decJSON(t, p)
			}
			ev, err := decoderUnderTest.Decode(c.subject, payload)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", ev)
			}
			var ie *domain.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an *domain.InvalidError", err, err)
			}
			if ie.Reason != c.reason || domain.ReasonOf(err) != c.reason {
				t.Errorf("reason %q (%v), want %q", ie.Reason, err, c.reason)
			}
			if ie.Detail == "" || err.Error() != ie.Reason+": "+ie.Detail || (!utf8.ValidString(ie.Detail) && utf8.Valid(payload)) {
				t.Errorf("error text %q", err.Error())
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error text of %d bytes: it must not carry the payload", len(err.Error()))
			}
			if !reflect.ValueOf(ev).IsZero() {
				t.Errorf("rejected event is not the zero value: %+v", ev)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	payload := []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j"}}`)
	cases := []struct {
		name   string
		max    int
		reason string
	}{
		{"exactly the limit", len(payload), ""},
		{"one byte over", len(payload) - 1, domain.ReasonTooLarge},
		{"no limit", 0, ""},
		{"negative limit", -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := events.Decoder{Subjects: events.Subjects{Prefix: "hodei"}, MaxBytes: c.max}
			_, err := d.Decode("hodei.jobs.a.queued", payload)
			if got := domain.ReasonOf(err); got != c.reason {
				t.Errorf("reason %q (%v), want %q", got, err, c.reason)
			}
		})
	}
	t.Run("1 MB valid event without a limit", func(t *testing.T) {
		d := events.Decoder{Subjects: events.Subjects{Prefix: "hodei"}}
		big := decJSON(t, decEvent("hodei.job.queued", map[string]any{"job_id": "j", "labels": map[string]any{"pad": strings.Repeat("x", 1<<20)}}))
		if _, err := d.Decode("hodei.jobs.a.queued", big); err != nil {
			t.Errorf("Decode: %v", err)
		}
	})
}

func TestReasonOf(t *testing.T) {
	ie := &domain.InvalidError{Reason: domain.ReasonPoolMismatch, Detail: "x"}
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{ie, domain.ReasonPoolMismatch},
		{fmt.Errorf("wrapped: %w", ie), domain.ReasonPoolMismatch},
	}
	for _, c := range cases {
		if got := domain.ReasonOf(c.err); got != c.want {
			t.Errorf("domain.ReasonOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	when := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	cases := []struct {
		kind domain.JobKind
		data domain.JobData
	}{
		{domain.JobQueued, domain.JobData{JobID: "build-1", Pool: "linux-small", Resources: &domain.Resources{CPUMillis: 250, MemoryMB: 512}, Labels: map[string]string{"k": "v"}}},
		{domain.JobQueued, domain.JobData{JobID: "build-2"}},
		{domain.JobStarted, domain.JobData{JobID: "build-1", Pool: "linux-small", WorkerID: decWorker}},
		{domain.JobFinished, domain.JobData{JobID: "build-1", Pool: "linux-small", WorkerID: decWorker, Outcome: "succeeded"}},
		{domain.JobFinished, domain.JobData{JobID: "build-1", Outcome: "cancelled"}},
	}
	s := events.Subjects{Prefix: "acme.ci"}
	d := events.Decoder{Subjects: s, MaxBytes: 4096}
	for _, c := range cases {
		t.Run(c.kind.String()+" "+c.data.JobID, func(t *testing.T) {
			payload, err := events.Encode("id-"+c.data.JobID, "test", c.kind.Type(), when, c.data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(payload), "\n") {
				t.Errorf("Encode output spans lines: %s", payload)
			}
			var env domain.CloudEvent
			if err := json.Unmarshal(payload, &env); err != nil {
				t.Fatal(err)
			}
			if env.SpecVersion != "1.0" || env.DataContentType != "application/json" || env.Source != "test" || env.Time.Location() != time.UTC {
				t.Errorf("envelope %+v", env)
			}
			ev, err := d.Decode(s.Job("linux-small", c.kind), payload)
			if err != nil {
				t.Fatalf("Decode(Encode(...)): %v\n%s", err, payload)
			}
			want := domain.JobEvent{
				Kind: c.kind, ID: "id-" + c.data.JobID, Pool: "linux-small", JobID: domain.JobID(c.data.JobID),
				WorkerID: domain.WorkerID(c.data.WorkerID), Outcome: domain.Outcome(c.data.Outcome), Labels: c.data.Labels,
			}
			if c.data.Resources != nil {
				want.Resources = *c.data.Resources
			}
			if !ev.Time.Equal(when) {
				t.Errorf("Time = %v, want %v", ev.Time, when)
			}
			ev.Time = time.Time{}
			if !reflect.DeepEqual(ev, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", ev, want)
			}
		})
	}
}

func TestEncodeOtherEvents(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	worker := domain.WorkerEventData{WorkerID: decWorker, Pool: "a", Provider: "docker", Reason: "decision"}
	decision := domain.DecisionData{Pool: "a", Current: 1, Desired: 3, Pending: 2, Reason: "desired 3"}
	for name, data := range map[string]any{"worker": worker, "decision": decision} {
		t.Run(name, func(t *testing.T) {
			payload, err := events.Encode("e", "s", "t", when, data)
			if err != nil {
				t.Fatal(err)
			}
			var env domain.CloudEvent
			if err := json.Unmarshal(payload, &env); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(data)
			if string(env.Data) != string(want) || !env.Time.Equal(when) {
				t.Errorf("data %s, want %s; time %v", env.Data, want, env.Time)
			}
		})
	}
	t.Run("unencodable data", func(t *testing.T) {
		if _, err := events.Encode("e", "s", "t", when, make(chan int)); err == nil {
			t.Error("want an error")
		}
	})
}

// knownReasons are the reasons Decode may give.
var knownReasons = map[string]bool{
	domain.ReasonTooLarge: true, domain.ReasonBadSubject: true, domain.ReasonNotJSON: true,
	domain.ReasonBadEnvelope: true, domain.ReasonWrongType: true, domain.ReasonMissingJobID: true,
	domain.ReasonPoolMismatch: true, domain.ReasonBadWorkerID: true, domain.ReasonBadOutcome: true,
	domain.ReasonBadResources: true, domain.ReasonUnsupportedSpec: true,
	domain.ReasonInvalidUTF8: true, domain.ReasonBadJobID: true,
}

// FuzzDecode: Decode never panics; it returns either an *domain.InvalidError with
// a known reason, a bounded detail and the zero event, or an event that
// keeps the contract (non-empty JobID, the subject's pool and kind, a
// canonical worker id where one is required, a known outcome, no negative
// resources) and that survives Encode -> Decode unchanged. The seed corpus
// is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add("hodei.jobs.a.queued", []byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","data":{"job_id":"j"}}`))
	d := events.Decoder{Subjects: events.Subjects{Prefix: "hodei"}, MaxBytes: 4096}
	f.Fuzz(func(t *testing.T, subject string, payload []byte) {
		ev, err := d.Decode(subject, payload)
		if err != nil {
			var ie *domain.InvalidError
			if !errors.As(err, &ie) || !knownReasons[ie.Reason] {
				t.Fatalf("error %T %v: want an *domain.InvalidError with a known reason", err, err)
			}
			if ie.Detail == "" || len(ie.Detail) > 600 {
				t.Fatalf("detail of %d bytes: %q", len(ie.Detail), ie.Detail)
			}
			if !reflect.ValueOf(ev).IsZero() {
				t.Fatalf("an error with a non-zero event: %+v", ev)
			}
			return
		}
		pool, kind, ok := d.Subjects.ParseJob(subject)
		switch {
		case !ok:
			t.Fatalf("accepted subject %q that ParseJob rejects", subject)
		case ev.JobID == "" || len(ev.JobID) > 256:
			t.Fatalf("JobID %q", ev.JobID)
		case ev.Pool != pool || ev.Pool == "":
			t.Fatalf("Pool %q, subject pool %q", ev.Pool, pool)
		case ev.Kind != kind:
			t.Fatalf("Kind %v, subject kind %v", ev.Kind, kind)
		case ev.ID == "":
			t.Fatal("empty CloudEvent id")
		case ev.Kind == domain.JobStarted && ev.WorkerID == "":
			t.Fatal("started without a worker")
		case ev.Resources.CPUMillis < 0 || ev.Resources.MemoryMB < 0:
			t.Fatalf("negative resources %+v", ev.Resources)
		}
		if ev.WorkerID != "" {
			if _, err := domain.ParseWorkerID(string(ev.WorkerID)); err != nil {
				t.Fatalf("worker id %q: %v", ev.WorkerID, err)
			}
		}
		switch ev.Outcome {
		case "":
			if ev.Kind == domain.JobFinished {
				t.Fatal("finished without an outcome")
			}
		case domain.OutcomeSucceeded, domain.OutcomeFailed, domain.OutcomeCancelled:
			if ev.Kind != domain.JobFinished {
				t.Fatalf("outcome %q on a %v event", ev.Outcome, ev.Kind)
			}
		default:
			t.Fatalf("outcome %q", ev.Outcome)
		}
		// Decoding is deterministic, and what Decode accepts, Encode writes
		// back to an event that decodes the same (time aside: any offset is
		// accepted, but only years 0-9999 in UTC can be written).
		again, err := d.Decode(subject, payload)
		if err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("second Decode differs: %+v, %v", again, err)
		}
		data := domain.JobData{JobID: string(ev.JobID), Pool: string(ev.Pool), WorkerID: string(ev.WorkerID), Outcome: string(ev.Outcome), Labels: ev.Labels}
		if ev.Resources != (domain.Resources{}) {
			data.Resources = &ev.Resources
		}
		enc, err := events.EncodeExt(ev.ID, "fuzz", ev.Kind.Type(), time.Unix(0, 0), data, ev.Extensions)
		if err != nil {
			t.Fatalf("Encode of a decoded event: %v", err)
		}
		back, err := (events.Decoder{Subjects: d.Subjects}).Decode(subject, enc)
		if err != nil {
			t.Fatalf("Decode(Encode(event)): %v\n%s", err, enc)
		}
		back.Time, ev.Time = time.Time{}, time.Time{}
		if len(ev.Labels) == 0 && len(back.Labels) == 0 {
			back.Labels, ev.Labels = nil, nil
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("Encode -> Decode changed the event:\n got %+v\nwant %+v", back, ev)
		}
	})
}
