package faults

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/inputs"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// Hodei's own WorkerHeartbeat (current_job_id) is the worker's word in
// the Hodei input, through a real NATS server holding HODEI_EVENTS as the
// Hodei server creates it and the daemon's default subjects: a worker
// whose job Hodei reports Succeeded while the worker still reports it
// stays busy as long as its heartbeats come, and turns idle no sooner
// than heartbeat_timeout after its last one; a heartbeat made longer ago
// than heartbeat_timeout (a fold meets many) is ignored, not believed.
func TestHodeiWorkerHeartbeat(t *testing.T) {
	t.Parallel()
	srv := bustest.StartServer(t)
	_, hjs := bustest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := hjs.CreateStream(ctx, jetstream.StreamConfig{
		Name: "HODEI_EVENTS", Subjects: []string{"hodei.events.>"}, Retention: jetstream.InterestPolicy,
		MaxAge: 24 * time.Hour, MaxBytes: 1 << 30, MaxMsgs: 1_000_000, Storage: jetstream.FileStorage, Replicas: 1, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Hodei's own consumer: on an interest stream a message nobody has an
	// interest in is not kept.
	if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "HODEI_EVENTS-hodei-events-coordinator",
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: 5, MaxAckPending: 1000, FilterSubject: "hodei.events.>"}); err != nil {
		t.Fatal(err)
	}
	publish := func(entity, variant string, fields map[string]any) {
		t.Helper()
		body, err := hodeijobs.Encode(variant, fields, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hjs.Publish(ctx, hodeijobs.Subject(entity, variant), body); err != nil {
			t.Fatal(err)
		}
	}
	const timeout = 3 * time.Second
	cfg := baseConfig(t, "faults-hodei-heartbeat")
	cfg.NATS.URL = srv.ClientURL()
	cfg.Inputs = []config.Input{{Format: config.FormatHodeiJobs, Name: "hodei", DefaultPool: "p1"}}
	d, fake, _, _ := startFakePool(t, cfg, func(p *config.Pool) {
		p.HeartbeatTimeout = config.Duration(timeout)
		p.IdleWorkers = config.IdleWorkers{Count: 0}
	})
	bustest.Eventually(t, 20*time.Second, "the daemon's stream sourcing HODEI_EVENTS", func() bool {
		own, err := hjs.Stream(ctx, inputs.OwnStream(cfg.InputList()[0]))
		if err != nil {
			return false
		}
		info, err := own.Info(ctx)
		// Active is -1 until the server has attached the source.
		return err == nil && len(info.Sources) == 1 && info.Sources[0].Error == nil && info.Sources[0].Active >= 0
	})
	status := func() poolStatus {
		st, _ := pools(d.url("/v1/pools"))
		return st["p1"]
	}

	const job = "0b6e2f4a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
	publish("jobs", "JobQueued", map[string]any{"job_id": job, "queued_at": time.Now()})
	bustest.Eventually(t, 30*time.Second, "a worker for the job", func() bool { return len(fake.Workers()) == 1 })
	w := fake.Workers()[0]
	beat := func(at time.Time, current any) {
		t.Helper()
		publish("workers", "WorkerHeartbeat", map[string]any{"worker_id": string(w), "state": "Busy", "load_average": 0.5,
			"memory_usage_mb": 128, "current_job_id": current, "occurred_at": at})
	}
	publish("jobs", "JobAssigned", map[string]any{"job_id": job, "worker_id": string(w)})
	bustest.Eventually(t, 10*time.Second, "the worker busy with its job", func() bool {
		s := status()
		return s.Running == 1 && s.Workers["busy"] == 1
	})

	// The worker reports its job; then Hodei says it succeeded (one
	// stream: the daemon reads them in this order).
	beat(time.Now(), job)
	publish("jobs", "JobStatusChanged", map[string]any{"job_id": job, "old_state": "Running", "new_state": "Succeeded"})
	bustest.Eventually(t, 10*time.Second, "the job's end applied", func() bool { return status().Running == 0 })
	if v := scrape(t, d.url("/metrics")).get("hodei_autoscaler_events_total", "type", "hodei-jobs.WorkerHeartbeat", "result", "applied"); v != 1 {
		t.Fatalf("events_total{hodei-jobs.WorkerHeartbeat, applied} = %v, want 1", v)
	}
	// Heartbeats every 300 ms for twice the timeout: busy throughout.
	var last time.Time
	for end := time.Now().Add(2 * timeout); time.Now().Before(end); {
		if s := status(); s.Workers["busy"] != 1 {
			t.Fatalf("worker %s not busy (%v) while it reports its job; the ledger has %d running", w, s.Workers, s.Running)
		}
		last = time.Now()
		beat(last, job)
		time.Sleep(300 * time.Millisecond) // the heartbeat's pace, not a wait for a result
	}
	// Silence: idle, but not before the last word has timed out.
	bustest.Eventually(t, 10*time.Second, "the worker idle once its heartbeats stop", func() bool { return status().Workers["idle"] == 1 })
	if idleAt := time.Now(); idleAt.Before(last.Add(timeout)) {
		t.Errorf("worker idle %s after its last heartbeat, before heartbeat_timeout %s", idleAt.Sub(last).Round(time.Millisecond), timeout)
	}

	// A heartbeat made a minute ago is old news: ignored, the worker stays idle.
	ignored := scrape(t, d.url("/metrics")).get("hodei_autoscaler_events_total", "type", "hodei-jobs.WorkerHeartbeat", "result", "ignored")
	beat(time.Now().Add(-time.Minute), job)
	bustest.Eventually(t, 10*time.Second, "the old heartbeat ignored", func() bool {
		return scrape(t, d.url("/metrics")).get("hodei_autoscaler_events_total", "type", "hodei-jobs.WorkerHeartbeat", "result", "ignored") == ignored+1
	})
	if s := status(); s.Workers["idle"] != 1 {
		t.Errorf("an old heartbeat made worker %s %v", w, s.Workers)
	}
}
