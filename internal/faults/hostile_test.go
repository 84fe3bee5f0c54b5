package faults

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// event builds a CloudEvent payload by hand: the hostile cases need shapes
// events.Encode would never produce.
func event(typ, data string) []byte {
	return []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"hostile","type":%q,"time":%q,"data":%s}`,
		uuid.NewString(), typ, time.Now().UTC().Format(time.RFC3339Nano), data))
}

// Hostile and broken input, end to end through a real daemon and its
// embedded NATS: each kind is counted by reason in events_dropped_total
// (or, for duplicates, dropped by JetStream or counted as a duplicate),
// logged, and dropped; every valid event around them applies; the daemon
// stays ready.
func TestHostileEvents(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, "faults-hostile")
	cfg.Reconcile.MaxJobAge = config.Duration(time.Hour)
	d, fake, js, jobs := startFakePool(t, cfg)

	const q, s, f = "hodei.jobs.p1.queued", "hodei.jobs.p1.started", "hodei.jobs.p1.finished"
	big := strings.Repeat("x", 1_000_000)
	old := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339Nano)
	hostile := []struct {
		name, subject string
		payload       []byte
		reason        string
	}{
		{"not JSON", q, []byte("this is not json {"), "not_json"},
		{"empty payload", q, []byte{}, "not_json"},
		{"JSON but not an object", q, []byte(`[1,2,3]`), "bad_envelope"},
		{"wrong type for job_id", q, event("hodei.job.queued", `{"job_id":123,"pool":"p1"}`), "bad_envelope"},
		{"wrong type for data", q, event("hodei.job.queued", `"a string"`), "bad_envelope"},
		{"missing job_id", q, event("hodei.job.queued", `{"pool":"p1"}`), "missing_job_id"},
		{"unknown type", q, event("hodei.job.exploded", `{"job_id":"h1","pool":"p1"}`), "wrong_type"},
		{"type of another kind", q, event("hodei.job.finished", `{"job_id":"h1","pool":"p1","outcome":"succeeded"}`), "wrong_type"},
		{"unknown kind in the subject", "hodei.jobs.p1.exploded", event("hodei.job.queued", `{"job_id":"h1","pool":"p1"}`), "bad_subject"},
		{"pool contradicting the subject", q, event("hodei.job.queued", `{"job_id":"h1","pool":"p2"}`), "pool_mismatch"},
		{"1 MB payload", q, event("hodei.job.queued", `{"job_id":"h1","pool":"p1","labels":{"big":"`+big+`"}}`), "too_large"},
		{"specversion 0.3", q, []byte(`{"specversion":"0.3","id":"x","source":"s","type":"hodei.job.queued","data":{"job_id":"h1"}}`), "unsupported_specversion"},
		{"worker_id not a uuid", s, event("hodei.job.started", `{"job_id":"j1","pool":"p1","worker_id":"../../etc"}`), "bad_worker_id"},
		{"bad outcome", f, event("hodei.job.finished", `{"job_id":"j1","pool":"p1","outcome":"exploded"}`), "bad_outcome"},
		{"negative resources", q, event("hodei.job.queued", `{"job_id":"h1","pool":"p1","resources":{"cpu_millis":-5}}`), "bad_resources"},
		{"unknown pool", "hodei.jobs.nope.queued", event("hodei.job.queued", `{"job_id":"h1","pool":"nope"}`), "unknown_pool"},
		{"replay of an old event", q, []byte(`{"specversion":"1.0","id":"old-1","source":"s","type":"hodei.job.queued","time":"` + old + `","data":{"job_id":"replayed","pool":"p1"}}`), "stale"},
	}

	// Valid events around the hostile ones.
	jobs.Queued("p1", "j1", nil)
	jobs.Queued("p1", "j2", nil)
	j3 := jobs.Queued("p1", "j3", nil)
	for _, h := range hostile {
		jobs.Raw(h.subject, h.payload, "")
	}
	bustest.Eventually(t, 10*time.Second, "3 workers", func() bool { return len(fake.Workers()) >= 3 })
	ws := fake.Workers()
	jobs.Started("p1", "j1", ws[0])
	jobs.Started("p1", "j2", domain.NewWorkerID()) // a worker this daemon does not know: unknown_worker

	// Duplicates: the same Nats-Msg-Id is dropped by JetStream; the same
	// job under a new event id reaches the ledger, which ignores it.
	payload, err := events.Encode(j3, "test-scheduler", domain.TypeJobQueued, time.Now(), domain.JobData{JobID: "j3", Pool: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, q, payload, jetstream.WithMsgID(j3))
	if err != nil || !ack.Duplicate {
		t.Errorf("republishing j3's queued under its Nats-Msg-Id: ack %+v, err %v; want a duplicate", ack, err)
	}
	jobs.Queued("p1", "j1", nil) // new event id, same job
	jobs.Finished("p1", "j3", "")
	jobs.Queued("p1", "j4", nil)

	// j1 runs on a worker of ours; j2 runs on an unknown worker, so it is
	// still demand; j3 finished; j4 waits.
	bustest.Eventually(t, 10*time.Second, "the valid events applied", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		// Pending 2 and running 1 also hold before j3's finished and j4's
		// queued apply: wait for the last event too.
		last := scrape(t, d.url("/metrics")).get("hodei_autoscaler_events_total", "type", domain.TypeJobQueued, "result", "applied") == 4
		return st["p1"].Pending == 2 && st["p1"].Running == 1 && last
	})
	m := scrape(t, d.url("/metrics"))
	want := map[string]float64{}
	for _, h := range hostile {
		want[h.reason]++
	}
	want["unknown_worker"]++
	for reason, n := range want {
		if got := m.get("hodei_autoscaler_events_dropped_total", "reason", reason); got != n {
			t.Errorf("events_dropped_total{reason=%s} = %v, want %v", reason, got, n)
		}
	}
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{domain.TypeJobQueued, "applied", 4},
		{domain.TypeJobQueued, "duplicate", 1},
		{domain.TypeJobStarted, "applied", 1},
		{domain.TypeJobFinished, "applied", 1},
	} {
		if got := m.get("hodei_autoscaler_events_total", "type", c.typ, "result", c.result); got != c.want {
			t.Errorf("events_total{type=%s,result=%s} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	// Each rejection is logged with its reason, and no payload is echoed.
	logged := map[string]int{}
	for _, e := range d.logs.Entries("") {
		if r := e.str("reason"); r != "" && strings.Contains(e.str("message"), "job event") {
			logged[r]++
		}
	}
	for reason := range want {
		if logged[reason] == 0 {
			t.Errorf("no log line for the %s rejection", reason)
		}
	}
	if strings.Contains(d.logs.String(), big[:1000]) {
		t.Errorf("the 1 MB payload was echoed into the log")
	}
	if code, body := httpGet(d.url("/readyz")); code != http.StatusOK {
		t.Errorf("daemon not ready after hostile input: %d %s", code, body)
	}
}
