package faults

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Hodei's own events drive the daemon process and real Docker workers,
// and survive kill -9. A real NATS server holds HODEI_EVENTS as the Hodei
// server creates it (interest retention, hodei.events.>, nats.rs
// ensure_stream at a86d5c4) with a durable consumer like Hodei's; the test
// plays Hodei: jobs queued, assigned to the daemon's workers (Hodei's
// workers take their id from HODEI_WORKER_ID, as the daemon sets it),
// running, one succeeded. Hodei then acknowledges everything, so
// HODEI_EVENTS keeps nothing; the daemon is killed with SIGKILL and
// started again: its ledger equals the truth, from its own stream, and it
// makes no new container; the jobs' end then lets the pool scale down.
func TestSIGKILLWithHodeiInput(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	owner := dockertest.UniqueName("faults-hodei")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	srv := bustest.StartServer(t)
	_, js := bustest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "HODEI_EVENTS", Subjects: []string{"hodei.events.>"}, Retention: jetstream.InterestPolicy,
		MaxAge: 24 * time.Hour, MaxBytes: 1 << 30, MaxMsgs: 1_000_000, Storage: jetstream.FileStorage, Replicas: 1, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		t.Fatal(err)
	}
	hodei, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "HODEI_EVENTS-hodei-events-jobs-coordinator",
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: 5, MaxAckPending: 1000, FilterSubject: "hodei.events.jobs.>"})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(variant string, fields map[string]any) {
		t.Helper()
		body, err := hodeijobs.Encode(variant, fields, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, hodeijobs.Subject("jobs", variant), body); err != nil {
			t.Fatal(err)
		}
	}
	job := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

	const pool = "hodei"
	cfg := baseConfig(t, owner)
	cfg.NATS.URL = srv.ClientURL()
	p := dockerPool(pool, sleeperImage(t))
	p.IdleTimeout = config.Fixed(2 * time.Second)
	cfg.Pools = []config.Pool{p}
	cfg.Inputs = []config.Input{{Format: config.FormatHodeiJobs, Name: "hodei", DefaultPool: pool}}

	d1 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "first daemon ready", d1.ready)
	for i := range 4 {
		publish("JobQueued", map[string]any{"job_id": job(i), "job_requirements": map[string]any{"resources": map[string]any{"cpu_cores": 0.1, "memory_mb": 32}}, "queued_at": time.Now()})
	}
	var workers []string
	bustest.Eventually(t, 90*time.Second, "4 worker containers running", func() bool {
		cs := owned(t, cli, owner)
		workers = workers[:0]
		for _, c := range cs {
			if c.State == "running" {
				workers = append(workers, c.Labels[domain.LabelWorkerID])
			}
		}
		return len(cs) == 4 && len(workers) == 4
	})
	for i := range 3 {
		publish("JobAssigned", map[string]any{"job_id": job(i), "worker_id": workers[i]})
		publish("JobStatusChanged", map[string]any{"job_id": job(i), "old_state": "Assigned", "new_state": "Running"})
	}
	publish("JobStatusChanged", map[string]any{"job_id": job(2), "old_state": "Running", "new_state": "Succeeded"})
	// Truth: job 3 pending, jobs 0 and 1 running.
	truth := func(d *daemonProc) bool {
		s, ok := pools(d.url("/v1/pools"))
		return ok && s[pool].Pending == 1 && s[pool].Running == 2 && s[pool].Workers[string(domain.StateBusy)] == 2
	}
	bustest.Eventually(t, 30*time.Second, "ledger follows Hodei", func() bool { return truth(d1) })

	// Hodei takes and acknowledges everything: on an interest stream the
	// messages are then gone.
	for {
		batch, err := hodei.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n == 0 {
			break
		}
	}
	bustest.Eventually(t, 10*time.Second, "HODEI_EVENTS empty", func() bool {
		s, err := js.Stream(ctx, "HODEI_EVENTS")
		return err == nil && s.CachedInfo().State.Msgs == 0
	})

	// Every container before the kill (the policy's warm buffer may have
	// added one to the four).
	ids := map[string]bool{}
	for _, c := range owned(t, cli, owner) {
		ids[c.Labels[domain.LabelWorkerID]] = true
	}
	if code, _ := d1.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("daemon exit code %d after SIGKILL", code)
	}
	d2 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "restarted daemon ready", d2.ready)
	bustest.Eventually(t, 30*time.Second, "the ledger equals the truth after kill -9", func() bool { return truth(d2) })
	// Idle workers may go after idle_timeout, but no new one comes.
	holds(t, 3*time.Second, "no new worker container after the restart", func() bool {
		for _, c := range owned(t, cli, owner) {
			if !ids[c.Labels[domain.LabelWorkerID]] {
				return false
			}
		}
		return true
	})
	// Hodei finishes the jobs: the pool scales to nothing.
	publish("JobAssigned", map[string]any{"job_id": job(3), "worker_id": workers[3]})
	for _, i := range []int{0, 1, 3} {
		publish("JobStatusChanged", map[string]any{"job_id": job(i), "old_state": "Running", "new_state": "Succeeded"})
	}
	bustest.Eventually(t, 60*time.Second, "no containers left", func() bool { return len(owned(t, cli, owner)) == 0 })
	m := scrape(t, d2.url("/metrics"))
	if v := m.get("hodei_autoscaler_events_total", "type", "hodei-jobs.JobQueued", "result", "applied"); v != 4 {
		t.Errorf("restarted daemon applied %v JobQueued, want 4", v)
	}
}
