package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/inputs"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/routing"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// hodeiBus is a real NATS server with the stream the Hodei server creates
// (crates/server/infrastructure/src/messaging/nats.rs, ensure_stream, at
// a86d5c4) and one of Hodei's durable consumers on it (get_consumer).
type hodeiBus struct {
	url  string
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func startHodeiBus(t *testing.T, retention jetstream.RetentionPolicy) *hodeiBus {
	t.Helper()
	srv := bustest.StartServer(t)
	_, js := bustest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "HODEI_EVENTS", Subjects: []string{"hodei.events.>"}, Retention: retention,
		MaxAge: 24 * time.Hour, MaxBytes: 1 << 30, MaxMsgs: 1_000_000, Storage: jetstream.FileStorage,
		Replicas: 1, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		t.Fatalf("creating HODEI_EVENTS: %v", err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "HODEI_EVENTS-hodei-events-jobs-job-coordinator", DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000,
		FilterSubject: "hodei.events.jobs.>",
	})
	if err != nil {
		t.Fatalf("creating Hodei's consumer: %v", err)
	}
	return &hodeiBus{url: srv.ClientURL(), js: js, cons: cons}
}

// publish sends one Hodei event as the Hodei server does.
func (h *hodeiBus) publish(t *testing.T, variant string, fields map[string]any) {
	t.Helper()
	body, err := hodeijobs.Encode(variant, fields, "corr-"+variant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.raw(t, hodeijobs.Subject("jobs", variant), body)
}

func (h *hodeiBus) raw(t *testing.T, subject string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.Publish(ctx, subject, body); err != nil {
		t.Fatalf("publishing %s: %v", subject, err)
	}
}

// ackAll is Hodei's consumer taking and acknowledging what it has: on an
// interest stream the message is then gone once every consumer has.
func (h *hodeiBus) ackAll(t *testing.T) int {
	t.Helper()
	n := 0
	for {
		batch, err := h.cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			if err := m.DoubleAck(context.Background()); err != nil {
				t.Fatal(err)
			}
			got++
		}
		n += got
		if got == 0 {
			return n
		}
	}
}

func hodeiConfig(t *testing.T, url string) config.Config {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.NATS.URL = url
	p2 := cfg.Pools[0]
	p2.Name = "big"
	cfg.Pools = append(cfg.Pools, p2)
	cfg.Inputs = []config.Input{
		{Format: config.FormatCloudEvents},
		{Format: config.FormatHodeiJobs, Name: "hodei", DefaultPool: "p1",
			Routes: []routing.Rule{{Pool: "big", Match: routing.Match{MinMemoryMB: 8192}}}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func spec(memMB int) map[string]any {
	return map[string]any{"resources": map[string]any{"cpu_cores": 1.0, "memory_mb": memMB, "storage_mb": 1024, "gpu_required": false, "architecture": "x86_64"},
		"image": "docker.io/library/alpine:3", "preferences": map[string]any{"required_labels": map[string]any{}}}
}

func jobUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// Hodei's own events, published into a real HODEI_EVENTS created with
// Hodei's settings and read by Hodei's own durable consumer, drive the
// daemon beside its own contract: demand from JobQueued (routed by
// memory to two pools), started from JobAssigned on the daemon's
// workers, finished from status changes and JobCancelled; other variants
// ignored; hostile messages counted by reason with the good ones around
// them applied. After Hodei has acknowledged everything (so HODEI_EVENTS
// is empty) a restarted daemon folds the same ledger from its own stream
// and adopts the workers without a provider call.
func TestHodeiEventsDriveTheDaemon(t *testing.T) {
	hb := startHodeiBus(t, jetstream.InterestPolicy)
	cfg := hodeiConfig(t, hb.url)
	fakes := map[string]providers.Provider{"p1": fakeprovider.New("p1"), "big": fakeprovider.New("big")}
	d := startApp(t, cfg, fakes, zerolog.New(io.Discard))
	a := d.app
	bustest.Eventually(t, 10*time.Second, "readyz", a.Ready)
	p1, big := fakes["p1"].(*fakeprovider.Provider), fakes["big"].(*fakeprovider.Provider)

	for i := range 4 {
		hb.publish(t, "JobQueued", map[string]any{"job_id": jobUUID(i), "preferred_provider": nil, "job_requirements": spec(512), "queued_at": time.Now()})
	}
	hb.publish(t, "JobCreated", map[string]any{"job_id": jobUUID(9), "spec": spec(16384), "occurred_at": time.Now()})
	hb.publish(t, "JobQueued", map[string]any{"job_id": jobUUID(9), "job_requirements": spec(16384), "queued_at": time.Now()})
	// Hostile input between the good events, through the real bus.
	hb.raw(t, "hodei.events.jobs.jobqueued", []byte("not json"))
	hb.raw(t, "hodei.events.jobs.jobqueued", []byte(`{"payload":"{JobQueued","event_type":"JobQueued"}`))
	hb.publish(t, "JobTeleported", map[string]any{"job_id": jobUUID(1)})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(1), "old_state": "Pending", "new_state": "Levitating"})
	hb.publish(t, "JobQueued", map[string]any{"queued_at": time.Now()})
	hb.publish(t, "JobRetried", map[string]any{"job_id": jobUUID(2), "attempt": 1, "max_attempts": 3})
	// The own contract at the same time.
	_, js := bustest.Connect(t, a.BusURL())
	bustest.NewJobs(t, js).Queued("p1", "own-0", nil)

	bustest.Eventually(t, 10*time.Second, "5 workers in p1 and 1 in big", func() bool { return len(p1.Workers()) == 5 && len(big.Workers()) == 1 })
	ws := p1.Workers()
	hb.publish(t, "JobAssigned", map[string]any{"job_id": jobUUID(0), "worker_id": string(ws[0])})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(0), "old_state": "Pending", "new_state": "Assigned"})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(0), "old_state": "Assigned", "new_state": "Running"})
	hb.publish(t, "JobAssigned", map[string]any{"job_id": jobUUID(1), "worker_id": string(ws[1])})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(1), "old_state": "Assigned", "new_state": "Running"})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(1), "old_state": "Running", "new_state": "Succeeded"})
	hb.publish(t, "JobCancelled", map[string]any{"job_id": jobUUID(2), "reason": "user"})
	hb.publish(t, "JobStatusChanged", map[string]any{"job_id": jobUUID(3), "old_state": "Pending", "new_state": "Timeout"})

	// Truth: p1 has own-0 pending and job 0 running on ws[0]; big has job 9 pending.
	truth := func(a *App) bool {
		s, b := pool(t, a, "p1"), pool(t, a, "big")
		return s.Pending == 1 && s.Running == 1 && s.Workers["busy"] == 1 && b.Pending == 1 && b.Running == 0
	}
	bustest.Eventually(t, 10*time.Second, "the ledger follows Hodei's events", func() bool { return truth(a) })
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{"hodei-jobs.JobQueued", "applied", 4},
		{"hodei-jobs.JobQueued", "duplicate", 1}, // job 9, after its JobCreated
		{"hodei-jobs.JobCreated", "applied", 1},
		{"hodei-jobs.JobAssigned", "applied", 2},
		{"hodei-jobs.JobStatusChanged", "ignored", 1}, // Pending -> Assigned
		{"hodei-jobs.JobStatusChanged", "duplicate", 2},
		{"hodei-jobs.JobStatusChanged", "applied", 2},
		{"hodei-jobs.JobCancelled", "applied", 1},
		{"hodei-jobs.JobRetried", "ignored", 1},
		{"hodei-jobs.JobStatusChanged", "invalid", 1},
		{"hodei-jobs.JobQueued", "invalid", 1},
		{"unknown", "invalid", 3},
		{"hodei.job.queued", "applied", 1},
	} {
		if got := testutil.ToFloat64(a.m.Events.WithLabelValues(c.typ, c.result)); got != c.want {
			t.Errorf("events_total{type=%s,result=%s} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	for reason, want := range map[string]float64{domain.ReasonNotJSON: 1, domain.ReasonBadPayload: 1, domain.ReasonUnknownVariant: 1,
		domain.ReasonUnknownState: 1, domain.ReasonMissingJobID: 1} {
		if got := testutil.ToFloat64(a.m.EventsDropped.WithLabelValues(reason)); got != want {
			t.Errorf("events_dropped_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}

	// Hodei acknowledges everything: HODEI_EVENTS keeps nothing.
	if n := hb.ackAll(t); n < 20 {
		t.Fatalf("Hodei's consumer acknowledged %d messages", n)
	}
	bustest.Eventually(t, 10*time.Second, "HODEI_EVENTS empty (interest retention)", func() bool {
		st, err := hb.js.Stream(context.Background(), "HODEI_EVENTS")
		return err == nil && st.CachedInfo().State.Msgs == 0
	})
	d.stop()
	calls := len(p1.Calls()) + len(big.Calls())
	d2 := startApp(t, cfg, fakes, zerolog.New(io.Discard))
	bustest.Eventually(t, 10*time.Second, "restarted daemon ready", d2.app.Ready)
	bustest.Eventually(t, 10*time.Second, "the same ledger after the restart", func() bool { return truth(d2.app) })
	if got := len(p1.Calls()) + len(big.Calls()); got != calls {
		t.Errorf("the restart made %d provider calls, want none", got-calls)
	}
	if len(p1.Workers()) != 5 || len(big.Workers()) != 1 {
		t.Errorf("workers %d + %d after the restart, want 5 + 1", len(p1.Workers()), len(big.Workers()))
	}
}

// A HODEI_EVENTS with work-queue retention (Hodei before d190b31) is
// refused with what to do, and nothing is read from it.
func TestHodeiWorkQueueStreamRefused(t *testing.T) {
	hb := startHodeiBus(t, jetstream.WorkQueuePolicy)
	cfg := hodeiConfig(t, hb.url)
	hb.publish(t, "JobQueued", map[string]any{"job_id": jobUUID(1)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := New(ctx, cfg, Options{Logger: zerolog.New(io.Discard), Providers: func(string, config.Pool, zerolog.Logger) (providers.Provider, error) {
		return fakeprovider.New("x"), nil
	}})
	if !errors.Is(err, inputs.ErrWorkQueue) || !strings.Contains(err.Error(), "interest retention") {
		t.Fatalf("New = %v, want ErrWorkQueue saying what to do", err)
	}
	st, err := hb.js.Stream(ctx, "HODEI_EVENTS")
	if err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("HODEI_EVENTS lost its message: %v", err)
	}
	names := hb.js.StreamNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	if slices.Contains(all, inputs.OwnStream(cfg.InputList()[1])) {
		t.Errorf("the daemon made its stream anyway: %v", all)
	}
}

// The fixtures written from Hodei's Rust definitions, published as Hodei
// would, are applied through the real bus like the unit test decodes them.
func TestHodeiFixturesThroughTheBus(t *testing.T) {
	hb := startHodeiBus(t, jetstream.InterestPolicy)
	cfg := hodeiConfig(t, hb.url)
	cfg.Reconcile.MaxJobAge = 0 // the fixtures' times are of January 2026
	fakes := map[string]providers.Provider{"p1": fakeprovider.New("p1"), "big": fakeprovider.New("big")}
	d := startApp(t, cfg, fakes, zerolog.New(io.Discard))
	paths, err := filepath.Glob("../inputs/hodeijobs/testdata/fixtures/*.json")
	if err != nil || len(paths) < 10 {
		t.Fatalf("fixtures: %v %d", err, len(paths))
	}
	slices.Sort(paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		subject := "hodei.events.jobs.x"
		if i := strings.Index(string(b), `"_subject": "`); i >= 0 {
			rest := string(b)[i+len(`"_subject": "`):]
			subject = rest[:strings.IndexByte(rest, '"')]
		}
		hb.raw(t, subject, b)
	}
	// All three jobs are finished: nothing pending or running; the
	// fixtures' worker is not one of the daemon's (unknown_worker).
	bustest.Eventually(t, 10*time.Second, "fixtures applied", func() bool {
		s := pool(t, d.app, "p1")
		return testutil.ToFloat64(d.app.m.Events.WithLabelValues("hodei-jobs.JobStatusChanged", "applied")) == 3 && s.Pending == 0 && s.Running == 0
	})
	if got := testutil.ToFloat64(d.app.m.Events.WithLabelValues("hodei-jobs.JobCancelled", "applied")); got != 1 {
		t.Errorf("JobCancelled applied %v", got)
	}
}

// A reload that adds a pool reads every input again: the own contract's
// jobs queued for the new pool before it existed become its demand, and
// the Hodei input's messages, read again too, are not applied twice to
// the pools that had them (the input set numbers messages across the two
// streams).
func TestHodeiInputAcrossAReload(t *testing.T) {
	hb := startHodeiBus(t, jetstream.InterestPolicy)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := testConfig(t, filepath.Join(dir, "nats"))
	cfg.NATS.URL = hb.url
	cfg.Inputs = []config.Input{{Format: config.FormatCloudEvents}, {Format: config.FormatHodeiJobs, Name: "hodei", DefaultPool: "p1"}}
	writeConfigFile(t, path, cfg)
	loaded, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakes{byKey: map[string][]*fakeprovider.Provider{}}
	a := runApp(t, loaded, Options{Logger: zerolog.New(io.Discard), Providers: f.build, ConfigFile: path,
		WatchSettle: 20 * time.Millisecond, WatchPoll: time.Hour})
	for i := range 3 {
		hb.publish(t, "JobQueued", map[string]any{"job_id": jobUUID(i), "queued_at": time.Now()})
	}
	_, js := bustest.Connect(t, a.BusURL())
	jobs := bustest.NewJobs(t, js)
	jobs.Queued("p1", "own-1", nil)
	jobs.Queued("p2", "early-1", nil)
	jobs.Queued("p2", "early-2", nil)
	bustest.Eventually(t, 10*time.Second, "p1 has 4 jobs", func() bool { return pool(t, a, "p1").Pending == 4 })

	next := cfg
	q := cfg.Pools[0]
	q.Name = "p2"
	next.Pools = []config.Pool{cfg.Pools[0], q}
	writeConfigFile(t, path, next)
	bustest.Eventually(t, 10*time.Second, "pool p2 added with its 2 early jobs", func() bool {
		ps := f.of("p2")
		return len(ps) == 1 && len(ps[0].Workers()) == 2 && pool(t, a, "p2").Pending == 2
	})
	if s := pool(t, a, "p1"); s.Pending != 4 {
		t.Errorf("p1 pending %d after both streams were read again, want 4", s.Pending)
	}
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{"hodei-jobs.JobQueued", "applied", 3},
		{"hodei-jobs.JobQueued", "duplicate", 0},
		{domain.TypeJobQueued, "duplicate", 0},
	} {
		if got := testutil.ToFloat64(a.m.Events.WithLabelValues(c.typ, c.result)); got != c.want {
			t.Errorf("events_total{type=%s,result=%s} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	// Live events after the reload still apply.
	hb.publish(t, "JobCancelled", map[string]any{"job_id": jobUUID(0)})
	bustest.Eventually(t, 10*time.Second, "a Hodei event after the reload", func() bool { return pool(t, a, "p1").Pending == 3 })
}
