package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

func binHeader(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Binary mode: attributes in ce- headers, the data as the body; the same
// validation as structured mode, reasons that name the problem, and
// extensions kept.
func TestDecodeBinary(t *testing.T) {
	base := []string{"ce-specversion", "1.0", "ce-id", "b1", "ce-source", "sdk", "ce-type", domain.TypeJobQueued, "ce-time", decTime}
	with := func(kv ...string) nats.Header { return binHeader(append(append([]string(nil), base...), kv...)...) }
	t.Run("accepted with extensions", func(t *testing.T) {
		ev, err := decoderUnderTest.DecodeMsg("hodei.jobs.p1.queued", with("ce-traceparent", "00-abc-def-01", "Content-Type", "application/json; charset=utf-8", "ce-BadName!", "x"),
			[]byte(`{"job_id":"j1","resources":{"cpu_millis":500}}`))
		if err != nil {
			t.Fatal(err)
		}
		if ev.JobID != "j1" || ev.Pool != "p1" || ev.ID != "b1" || ev.Kind != domain.JobQueued || ev.Resources.CPUMillis != 500 || ev.Time.IsZero() {
			t.Errorf("event %+v", ev)
		}
		if ev.Extensions["traceparent"] != "00-abc-def-01" {
			t.Errorf("extensions %v", ev.Extensions)
		}
	})
	t.Run("structured keeps traceparent", func(t *testing.T) {
		ev, err := decoderUnderTest.DecodeMsg("hodei.jobs.p1.queued", nil,
			[]byte(`{"specversion":"1.0","id":"e","source":"s","type":"hodei.job.queued","traceparent":"00-x-y-01","data":{"job_id":"j"}}`))
		if err != nil || ev.Extensions["traceparent"] != "00-x-y-01" {
			t.Fatalf("%+v %v", ev, err)
		}
	})
	for _, c := range []struct {
		name, subject string
		h             nats.Header
		body          string
		reason        string
	}{
		{"no specversion header", "hodei.jobs.p1.queued", binHeader("ce-id", "x", "ce-source", "s", "ce-type", domain.TypeJobQueued), `{"job_id":"j"}`, domain.ReasonBadEnvelope},
		{"specversion 0.3", "hodei.jobs.p1.queued", with("ce-specversion", "0.3"), `{"job_id":"j"}`, domain.ReasonUnsupportedSpec},
		{"no id", "hodei.jobs.p1.queued", with("ce-id", ""), `{"job_id":"j"}`, domain.ReasonBadEnvelope},
		{"bad time", "hodei.jobs.p1.queued", with("ce-time", "yesterday"), `{"job_id":"j"}`, domain.ReasonBadEnvelope},
		{"xml content", "hodei.jobs.p1.queued", with("ce-datacontenttype", "application/xml"), `<job/>`, domain.ReasonBadEnvelope},
		{"body not JSON", "hodei.jobs.p1.queued", with(), `{"job_id":`, domain.ReasonNotJSON},
		{"empty body", "hodei.jobs.p1.queued", with(), ``, domain.ReasonMissingJobID},
		{"wrong type", "hodei.jobs.p1.started", with(), `{"job_id":"j"}`, domain.ReasonWrongType},
		{"bad subject", "hodei.jobs.p1", with(), `{"job_id":"j"}`, domain.ReasonBadSubject},
		{"pool mismatch", "hodei.jobs.p1.queued", with(), `{"job_id":"j","pool":"p2"}`, domain.ReasonPoolMismatch},
		{"wrong field type", "hodei.jobs.p1.queued", with(), `{"job_id":7}`, domain.ReasonBadEnvelope},
		{"too large", "hodei.jobs.p1.queued", with(), `{"job_id":"` + strings.Repeat("x", 70<<10) + `"}`, domain.ReasonTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decoderUnderTest.DecodeMsg(c.subject, c.h, []byte(c.body))
			if got := domain.ReasonOf(err); got != c.reason {
				t.Errorf("reason %q (%v), want %q", got, err, c.reason)
			}
		})
	}
	t.Run("no headers is structured", func(t *testing.T) {
		if events.IsBinary(nats.Header{"Nats-Msg-Id": {"x"}}) {
			t.Error("a header set without ce- is not binary")
		}
	})
}

// EncodeExt writes the extensions at the top level, sorted, and leaves
// out names that are not extension names.
func TestEncodeExt(t *testing.T) {
	b, err := events.EncodeExt("i", "s", "t", decTimeParsed(t), map[string]int{"a": 1}, map[string]string{"traceparent": "tp", "b": "x", "Bad": "y", "id": "z"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasSuffix(s, `,"b":"x","traceparent":"tp"}`) || strings.Contains(s, "Bad") || strings.Count(s, `"id"`) != 1 {
		t.Errorf("encoded %s", s)
	}
}

func decTimeParsed(t *testing.T) time.Time {
	t.Helper()
	when, err := time.Parse(time.RFC3339Nano, decTime)
	if err != nil {
		t.Fatal(err)
	}
	return when
}

// BenchmarkDecodeModes: one started event decoded from each CloudEvents
// mode (the per-event decode cost of the ingest path).
func BenchmarkDecodeModes(b *testing.B) {
	data := domain.JobData{JobID: "job-000123456", WorkerID: "5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"}
	structured, err := events.Encode("ev-1", "sched", domain.TypeJobStarted, time.Now(), data)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"job_id":"job-000123456","worker_id":"5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"}`)
	h := binHeader("ce-specversion", "1.0", "ce-id", "ev-1", "ce-source", "sched", "ce-type", domain.TypeJobStarted,
		"ce-time", "2026-11-27T09:00:00Z", "ce-datacontenttype", "application/json", "ce-traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for _, c := range []struct {
		name string
		h    nats.Header
		p    []byte
	}{{"structured", nil, structured}, {"binary", h, body}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decoderUnderTest.DecodeMsg("hodei.jobs.pool-007.started", c.h, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecodeBinary: a binary-mode message (any ce- header values, any
// body) never panics and gives a known reason or an event that keeps the
// contract; an accepted one decodes the same when sent structured
// (time aside). Seeds in testdata/fuzz/FuzzDecodeBinary.
func FuzzDecodeBinary(f *testing.F) {
	f.Add("hodei.jobs.a.queued", "1.0", "e", domain.TypeJobQueued, "2026-11-27T09:00:00Z", "application/json", "00-x-y-01", []byte(`{"job_id":"j"}`))
	f.Add("hodei.jobs.a.started", "1.0", "e", domain.TypeJobStarted, "", "", "", []byte(`{"job_id":"j","worker_id":"5d0c4bd8-55d4-4a71-8c3e-0b6c0a4cbb7e"}`))
	d := events.Decoder{Subjects: events.Subjects{Prefix: "hodei"}, MaxBytes: 4096}
	f.Fuzz(func(t *testing.T, subject, spec, id, typ, at, ct, trace string, body []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{"ce-specversion": spec, "ce-id": id, "ce-source": "fuzz", "ce-type": typ, "ce-time": at, "ce-datacontenttype": ct, "ce-traceparent": trace} {
			if v != "" {
				h.Set(k, v)
			}
		}
		ev, err := d.DecodeMsg(subject, h, body)
		if err != nil {
			if r := domain.ReasonOf(err); !knownReasons[r] {
				t.Fatalf("error %v: unknown reason %q", err, r)
			}
			return
		}
		pool, kind, ok := d.Subjects.ParseJob(subject)
		if !ok || ev.Pool != pool || ev.Kind != kind || ev.JobID == "" || ev.ID == "" {
			t.Fatalf("event %+v from %q", ev, subject)
		}
		if trace != "" && len(ev.Extensions["traceparent"]) > 512 {
			t.Fatalf("extension of %d bytes", len(ev.Extensions["traceparent"]))
		}
	})
}
