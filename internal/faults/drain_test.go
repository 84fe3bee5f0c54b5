package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Issue 10: a job whose run outlasts stop_grace_period, on a worker the
// daemon believes idle because its finished was forged, on the real
// Docker engine with the example worker: the worker reports the job in
// its heartbeats, so it stays busy and is not stopped; the job runs to its
// end and its worker's own finished is published; no busy worker is
// killed. Then a forged finished naming another pool's worker is refused.
func TestForgedFinishedDoesNotKillBusyWorker(t *testing.T) {
	t.Parallel()
	cli := dockertest.Client(t)
	owner := dockertest.UniqueName("faults-forged")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	cfg := baseConfig(t, owner)
	url := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	p := workerPool(t, "forged", url)
	p.MaxWorkers = 2
	p.IdleTimeout = config.Fixed(time.Second)
	p.IdleWorkers = config.IdleWorkers{Count: 0} // no warm buffer: an idle worker goes
	p.StopGracePeriod = config.Duration(2 * time.Second)
	p.HeartbeatTimeout = config.Duration(10 * time.Second)
	p.DrainTimeout = config.Duration(2 * time.Minute)
	p.Env["HODEI_HEARTBEAT_INTERVAL"] = "1s"
	other := dockerPool("other", "unused-image")
	other.MaxWorkers = 1
	cfg.Pools = []config.Pool{p, other}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := connectJS(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)

	const jobLen = 25 * time.Second // past the scale-down of an idle worker plus stop_grace_period
	jobs.Queued("forged", "long", map[string]string{"duration": jobLen.String()})
	var worker domain.WorkerID
	bustest.Eventually(t, 90*time.Second, "the long job started", func() bool {
		for _, e := range readJobEvents(t, js, "forged") {
			if e.kind == "started" && e.data.JobID == "long" {
				worker = domain.WorkerID(e.data.WorkerID)
				return true
			}
		}
		return false
	})
	bustest.Eventually(t, 10*time.Second, "the worker busy", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["forged"].Workers["busy"] == 1
	})
	forgedAt := time.Now()
	jobs.Finished("forged", "long", "") // forged: the ledger closes the job's run
	jobs.Finished("other", "long", worker)

	drainedEarly := false
	bustest.Eventually(t, jobLen+30*time.Second, "the worker's own finished", func() bool {
		for _, e := range d.logs.Entries("worker draining") {
			if e.str("worker_id") == string(worker) {
				drainedEarly = true
			}
		}
		for _, e := range readJobEvents(t, js, "forged") {
			if e.kind == "finished" && e.data.JobID == "long" && e.data.WorkerID == string(worker) {
				return true
			}
		}
		return false
	})
	ranFor := time.Since(forgedAt)
	m := scrape(t, d.url("/metrics"))
	if got := m.get("hodei_autoscaler_busy_workers_killed_total", "pool", "forged"); got != 0 {
		t.Errorf("busy_workers_killed_total = %v, want 0", got)
	}
	if got := m.get("hodei_autoscaler_events_dropped_total", "reason", "worker_pool_mismatch"); got != 1 {
		t.Errorf("events_dropped_total{worker_pool_mismatch} = %v, want 1", got)
	}
	if drainedEarly {
		t.Errorf("worker %s was chosen for scale-down while it reported its job", worker)
	}
	t.Logf("job ran %s past the forged finished (stop_grace_period 2s); worker %s", ranFor.Round(100*time.Millisecond), worker)
	_ = cli
}
