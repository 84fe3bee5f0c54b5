package faults

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// Issue 10, item 5, through a real daemon and its embedded NATS: a job id
// over 256 bytes, invalid UTF-8 (two ids that encoding/json would both
// read as "bad-\ufffd"), a lone surrogate escape, a control character and
// an event time ten years ahead are each refused with their own reason,
// logged, and the valid events around them apply; reaction_seconds stays
// non-negative.
func TestInputRulesThroughTheBus(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, "faults-inputrules")
	d, fake, _, jobs := startFakePool(t, cfg)

	const q = "hodei.jobs.p1.queued"
	refused := []struct {
		name    string
		payload []byte
		reason  string
	}{
		{"job_id over 256 bytes", event("hodei.job.queued", `{"job_id":"`+strings.Repeat("j", 257)+`","pool":"p1"}`), "missing_job_id"},
		{"job_id with byte 0xff", event("hodei.job.queued", "{\"job_id\":\"bad-\xff\",\"pool\":\"p1\"}"), "invalid_utf8"},
		{"job_id with byte 0xfe", event("hodei.job.queued", "{\"job_id\":\"bad-\xfe\",\"pool\":\"p1\"}"), "invalid_utf8"},
		{"job_id with a lone surrogate", event("hodei.job.queued", `{"job_id":"bad-\udcff","pool":"p1"}`), "invalid_utf8"},
		{"job_id with a control character", event("hodei.job.queued", `{"job_id":"bad-\u0007","pool":"p1"}`), "bad_job_id"},
		{"time ten years ahead", []byte(`{"specversion":"1.0","id":"future-1","source":"s","type":"hodei.job.queued","time":"` +
			time.Now().AddDate(10, 0, 0).UTC().Format(time.RFC3339Nano) + `","data":{"job_id":"future","pool":"p1"}}`), "future_time"},
	}
	jobs.Queued("p1", "before", nil)
	for _, r := range refused {
		jobs.Raw(q, r.payload, "")
	}
	jobs.Queued("p1", "after", nil)
	jobs.Queued("p1", strings.Repeat("j", 256), nil) // at the limit: counted

	bustest.Eventually(t, 10*time.Second, "the three valid jobs pending", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["p1"].Pending == 3
	})
	bustest.Eventually(t, 10*time.Second, "3 workers for 3 jobs", func() bool { return len(fake.Workers()) >= 3 })
	m := scrape(t, d.url("/metrics"))
	want := map[string]float64{}
	for _, r := range refused {
		want[r.reason]++
	}
	for reason, n := range want {
		if got := m.get("hodei_autoscaler_events_dropped_total", "reason", reason); got != n {
			t.Errorf("events_dropped_total{reason=%s} = %v, want %v", reason, got, n)
		}
	}
	if got := m.get("hodei_autoscaler_events_total", "type", "hodei.job.queued", "result", "applied"); got != 3 {
		t.Errorf("queued applied = %v, want 3", got)
	}
	if got := m.get("hodei_autoscaler_reaction_seconds_sum", "pool", "p1"); got < 0 {
		t.Errorf("reaction_seconds_sum = %v, negative", got)
	}
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
	if code, body := httpGet(d.url("/readyz")); code != http.StatusOK {
		t.Errorf("daemon not ready after refused input: %d %s", code, body)
	}
}
