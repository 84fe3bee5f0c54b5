package hodeijobs_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// Fixture is one message of testdata/fixtures: the body Hodei publishes,
// with _fixture (what it follows, file and commit) and _subject.
type Fixture struct {
	Name    string
	Subject string
	Body    []byte
}

// LoadFixtures reads the fixtures in name order.
func LoadFixtures(t *testing.T) []Fixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("fixtures: %v (%d)", err, len(paths))
	}
	slices.Sort(paths)
	var out []Fixture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Fixture string `json:"_fixture"`
			Subject string `json:"_subject"`
		}
		if err := json.Unmarshal(b, &meta); err != nil || !strings.Contains(meta.Fixture, "a86d5c4") || meta.Subject == "" {
			t.Fatalf("%s: a fixture says what it follows (file and commit) and its subject: %v", p, err)
		}
		out = append(out, Fixture{Name: filepath.Base(p), Subject: meta.Subject, Body: b})
	}
	return out
}

const (
	jobA   = "0b6e2f4a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
	jobB   = "1c7f3a5b-2d4e-4f60-9bac-1d2e3f4a5b6c"
	jobC   = "2d803b6c-3e5f-4071-acbd-2e3f4a5b6c7d"
	worker = "3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b"
)

var fixtureRouter = routing.Router{
	Rules:   []routing.Rule{{Pool: "rust", Match: routing.Match{Image: "docker.io/library/rust:*", MinCPUMillis: 2000}}},
	Default: "small",
}

// The fixtures, in order, decode to the lifecycle they describe.
func TestFixtures(t *testing.T) {
	d := hodeijobs.New(fixtureRouter, 64<<10)
	type want struct {
		kind    domain.JobKind // 0: ignored
		job     string
		pool    domain.PoolName
		worker  string
		outcome domain.Outcome
		// heartbeat: a WorkerHeartbeat, mapped onto the worker's report
		// (its pool from the job, or from the worker's last assignment).
		heartbeat *domain.WorkerReport
	}
	wants := []want{
		{domain.JobQueued, jobA, "rust", "", "", nil},
		{domain.JobQueued, jobA, "rust", "", "", nil},
		{domain.JobQueued, jobB, "small", "", "", nil},
		{domain.JobQueued, jobC, "small", "", "", nil},
		{domain.JobStarted, jobA, "rust", worker, "", nil},
		{},
		{domain.JobStarted, jobA, "rust", worker, "", nil},
		{domain.JobStarted, jobA, "rust", worker, "", nil},
		{},
		{domain.JobFinished, jobA, "rust", worker, domain.OutcomeSucceeded, nil},
		{domain.JobFinished, jobB, "small", "", domain.OutcomeCancelled, nil},
		{domain.JobFinished, jobC, "small", "", domain.OutcomeFailed, nil},
		{heartbeat: &domain.WorkerReport{Pool: "rust", Worker: worker, Jobs: []domain.JobID{jobA}, Time: time.Date(2026, 1, 19, 10, 0, 0, 123456789, time.UTC)}},
		{heartbeat: &domain.WorkerReport{Pool: "rust", Worker: worker, Time: time.Date(2026, 1, 19, 10, 0, 5, 500_000_000, time.UTC)}},
	}
	fx := LoadFixtures(t)
	if len(fx) != len(wants) {
		t.Fatalf("%d fixtures, %d expectations", len(fx), len(wants))
	}
	for i, f := range fx {
		t.Run(f.Name, func(t *testing.T) {
			r := d.Decode(f.Body)
			w := wants[i]
			if r.Err != nil {
				t.Fatalf("error %v", r.Err)
			}
			if w.heartbeat != nil {
				if r.Ignored || r.Heartbeat == nil || !reflect.DeepEqual(*r.Heartbeat, *w.heartbeat) || r.Type != hodeijobs.TypePrefix+"WorkerHeartbeat" {
					t.Fatalf("got %+v (heartbeat %+v), want heartbeat %+v", r, r.Heartbeat, w.heartbeat)
				}
				return
			}
			if r.Heartbeat != nil {
				t.Fatalf("got a heartbeat %+v, want %+v", r.Heartbeat, w)
			}
			if w.kind == 0 {
				if !r.Ignored || !strings.HasPrefix(r.Type, hodeijobs.TypePrefix) {
					t.Fatalf("want ignored, got %+v", r)
				}
				return
			}
			ev := r.Event
			if r.Ignored || ev.Kind != w.kind || string(ev.JobID) != w.job || ev.Pool != w.pool || string(ev.WorkerID) != w.worker || ev.Outcome != w.outcome {
				t.Fatalf("got %+v (ignored %v), want %+v", ev, r.Ignored, w)
			}
			if ev.Time.IsZero() || ev.ID == "" || ev.Extensions["correlationid"] == "" {
				t.Errorf("time, id or correlation id missing: %+v", ev)
			}
			if i == 1 && (ev.Resources != domain.Resources{CPUMillis: 2000, MemoryMB: 4096} || ev.Labels["arch"] != "amd64") {
				t.Errorf("resources %+v labels %v", ev.Resources, ev.Labels)
			}
		})
	}
}

// Bad input: each problem has its reason, and the decoder goes on.
func TestHostile(t *testing.T) {
	at := time.Date(2026, 1, 19, 10, 0, 0, 0, time.UTC)
	enc := func(variant string, fields any) []byte {
		b, err := hodeijobs.Encode(variant, fields, "", at)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withPayload := func(p string) []byte {
		b, _ := json.Marshal(map[string]any{"payload": p, "event_type": "x", "created_at": at})
		return b
	}
	for _, c := range []struct {
		name   string
		body   []byte
		reason string
	}{
		{"envelope not JSON", []byte("not json"), domain.ReasonNotJSON},
		{"envelope truncated", []byte(`{"payload":`), domain.ReasonNotJSON},
		{"envelope wrong type", []byte(`{"payload":7}`), domain.ReasonBadEnvelope},
		{"no payload", []byte(`{"event_type":"JobQueued"}`), domain.ReasonBadEnvelope},
		{"payload not JSON", withPayload("{JobQueued"), domain.ReasonBadPayload},
		{"payload a number", withPayload("12"), domain.ReasonBadPayload},
		{"payload two variants", withPayload(`{"JobQueued":{},"JobCreated":{}}`), domain.ReasonBadPayload},
		{"unit variant", withPayload(`"JobQueued"`), domain.ReasonUnknownVariant},
		{"unknown variant", enc("JobTeleported", map[string]any{"job_id": jobA}), domain.ReasonUnknownVariant},
		{"unknown new state", enc("JobStatusChanged", map[string]any{"job_id": jobA, "old_state": "Pending", "new_state": "Levitating"}), domain.ReasonUnknownState},
		{"unknown old state", enc("JobStatusChanged", map[string]any{"job_id": jobA, "old_state": "Levitating", "new_state": "Running"}), domain.ReasonUnknownState},
		{"missing state", enc("JobStatusChanged", map[string]any{"job_id": jobA}), domain.ReasonUnknownState},
		{"missing job id", enc("JobQueued", map[string]any{"queued_at": at}), domain.ReasonMissingJobID},
		{"empty job id", enc("JobCancelled", map[string]any{"job_id": ""}), domain.ReasonMissingJobID},
		{"job id wrong type", enc("JobQueued", map[string]any{"job_id": 12}), domain.ReasonBadPayload},
		{"assigned without worker", enc("JobAssigned", map[string]any{"job_id": jobA}), domain.ReasonBadWorkerID},
		{"assigned bad worker", enc("JobAssigned", map[string]any{"job_id": jobA, "worker_id": "../x"}), domain.ReasonBadWorkerID},
		{"negative memory", enc("JobQueued", map[string]any{"job_id": jobB, "job_requirements": map[string]any{"resources": map[string]any{"memory_mb": -1}}}), domain.ReasonBadResources},
		{"too large", enc("JobQueued", map[string]any{"job_id": strings.Repeat("x", 70<<10)}), domain.ReasonTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := hodeijobs.New(fixtureRouter, 64<<10)
			r := d.Decode(c.body)
			var ie *domain.InvalidError
			if !errors.As(r.Err, &ie) || ie.Reason != c.reason || r.Ignored {
				t.Fatalf("got %+v, want reason %s", r, c.reason)
			}
			// The decoder goes on.
			if r := d.Decode(enc("JobQueued", map[string]any{"job_id": jobC})); r.Err != nil || r.Event.Pool != "small" {
				t.Fatalf("after bad input: %+v", r)
			}
		})
	}
}

// WorkerHeartbeat: a worker no job was ever assigned to has no pool and
// is ignored; its current job's pool wins over its last assignment's; a
// bad worker or job id has its reason.
func TestWorkerHeartbeat(t *testing.T) {
	at := time.Date(2026, 1, 19, 10, 0, 0, 0, time.UTC)
	enc := func(variant string, fields map[string]any) []byte {
		b, err := hodeijobs.Encode(variant, fields, "", at)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hb := func(w string, job any) []byte {
		return enc("WorkerHeartbeat", map[string]any{"worker_id": w, "state": "Busy", "current_job_id": job, "occurred_at": at})
	}
	d := hodeijobs.New(fixtureRouter, 64<<10)
	if r := d.Decode(hb(worker, jobB)); !r.Ignored || r.Heartbeat != nil || r.Err != nil {
		t.Fatalf("heartbeat of a worker never assigned a job, of an unknown job: %+v", r)
	}
	rust := enc("JobQueued", map[string]any{"job_id": jobA, "job_requirements": map[string]any{"image": "docker.io/library/rust:1", "resources": map[string]any{"cpu_cores": 4}}})
	for _, b := range [][]byte{rust, enc("JobQueued", map[string]any{"job_id": jobB}), enc("JobAssigned", map[string]any{"job_id": jobA, "worker_id": worker})} {
		if r := d.Decode(b); r.Err != nil || r.Ignored {
			t.Fatalf("setting up: %+v", r)
		}
	}
	if r := d.Decode(hb(worker, jobB)); r.Heartbeat == nil || r.Heartbeat.Pool != "small" || !slices.Equal(r.Heartbeat.Jobs, []domain.JobID{jobB}) {
		t.Fatalf("heartbeat naming a job of pool small: %+v", r.Heartbeat)
	}
	if r := d.Decode(hb(worker, nil)); r.Heartbeat == nil || r.Heartbeat.Pool != "rust" || len(r.Heartbeat.Jobs) != 0 || !r.Heartbeat.Time.Equal(at) {
		t.Fatalf("heartbeat naming no job: %+v", r.Heartbeat)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		reason string
	}{
		{"no worker", enc("WorkerHeartbeat", map[string]any{"current_job_id": jobA}), domain.ReasonBadWorkerID},
		{"bad worker", hb("../x", jobA), domain.ReasonBadWorkerID},
		{"job id too long", hb(worker, strings.Repeat("j", 300)), domain.ReasonMissingJobID}, // the job events' reason for it (domain.ValidateJobID)
		{"job id not text", hb(worker, "j\x01"), domain.ReasonBadJobID},
		{"worker id wrong type", enc("WorkerHeartbeat", map[string]any{"worker_id": 7}), domain.ReasonBadPayload},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := d.Decode(c.body); domain.ReasonOf(r.Err) != c.reason || r.Heartbeat != nil {
				t.Fatalf("got %+v, want reason %s", r, c.reason)
			}
		})
	}
}

// A job no rule matches is counted once (no_route); its later events are
// ignored, not counted again.
func TestNoRoute(t *testing.T) {
	d := hodeijobs.New(routing.Router{Rules: fixtureRouter.Rules}, 0)
	at := time.Now()
	q, _ := hodeijobs.Encode("JobQueued", map[string]any{"job_id": jobB}, "", at)
	r := d.Decode(q)
	if domain.ReasonOf(r.Err) != domain.ReasonNoRoute || !strings.Contains(r.Err.Error(), "no default_pool") {
		t.Fatalf("got %+v", r)
	}
	for _, v := range []struct {
		variant string
		fields  map[string]any
	}{
		{"JobQueued", map[string]any{"job_id": jobB}},
		{"JobStatusChanged", map[string]any{"job_id": jobB, "old_state": "Pending", "new_state": "Running"}},
		{"JobCancelled", map[string]any{"job_id": jobB}},
	} {
		b, _ := hodeijobs.Encode(v.variant, v.fields, "", at)
		if r := d.Decode(b); !r.Ignored {
			t.Errorf("%s after no route: %+v", v.variant, r)
		}
	}
}

// Decoding is deterministic from a fresh decoder: a second read of the
// same stream gives the same events (the fold after a restart).
func TestDeterministic(t *testing.T) {
	fx := LoadFixtures(t)
	read := func() []hodeijobs.Result {
		d := hodeijobs.New(fixtureRouter, 0)
		var out []hodeijobs.Result
		for _, f := range fx {
			out = append(out, d.Decode(f.Body))
		}
		return out
	}
	if a, b := read(), read(); !reflect.DeepEqual(a, b) {
		t.Fatal("two reads differ")
	}
}

// BenchmarkDecodeHodei: one Hodei JobQueued (the fixture's, with its whole
// JobSpec) and one JobStatusChanged, decoded and routed.
func BenchmarkDecodeHodei(b *testing.B) {
	queued, err := os.ReadFile("testdata/fixtures/02-job-queued.json")
	if err != nil {
		b.Fatal(err)
	}
	status, err := os.ReadFile("testdata/fixtures/10-job-status-succeeded.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		body []byte
	}{{"JobQueued", queued}, {"JobStatusChanged", status}} {
		b.Run(c.name, func(b *testing.B) {
			d := hodeijobs.New(fixtureRouter, 64<<10)
			b.ReportAllocs()
			for b.Loop() {
				if r := d.Decode(c.body); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
