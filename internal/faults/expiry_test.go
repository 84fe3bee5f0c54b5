package faults

import (
	"slices"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Fault 6: jobs whose finished event never comes (one pending, one
// running) stop counting as demand after max_job_age: they are counted in
// expired_jobs_total and logged, the pool scales back down, a late
// finished changes nothing, and a restarted daemon does not bring them
// back from the stream (their events are older than max_job_age).
func TestLostFinishedExpires(t *testing.T) {
	t.Parallel()
	cli := dockertest.Client(t)
	image := sleeperImage(t)
	owner := dockertest.UniqueName("faults-expiry")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	const maxJobAge = 4 * time.Second
	cfg := baseConfig(t, owner)
	cfg.Reconcile.MaxJobAge = config.Duration(maxJobAge)
	cfg.Reconcile.Interval = config.Duration(100 * time.Millisecond)
	p := dockerPool("expiry", image)
	p.ProvisionTimeout = config.Duration(3 * time.Second)
	p.IdleTimeout = config.Fixed(500 * time.Millisecond)
	cfg.Pools = []config.Pool{p}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	// A job that ends normally, for contrast.
	jobs.Queued("expiry", "normal", nil)
	jobs.Finished("expiry", "normal", "")
	queuedAt := time.Now()
	jobs.Queued("expiry", "lost-pending", nil)
	jobs.Queued("expiry", "lost-running", nil)
	var w domain.WorkerID
	bustest.Eventually(t, 20*time.Second, "a ready worker", func() bool {
		for _, e := range out.OfType(bustest.Lifecycle(domain.LifecycleReady)) {
			w = domain.WorkerID(e.Worker.WorkerID)
			return true
		}
		return false
	})
	jobs.Started("expiry", "lost-running", w)
	bustest.Eventually(t, 5*time.Second, "1 pending and 1 running", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["expiry"].Pending == 1 && st["expiry"].Running == 1
	})
	bustest.Eventually(t, 20*time.Second, "2 running workers", func() bool {
		return countState(owned(t, cli, owner), "running") == 2
	})

	// No finished ever comes.
	bustest.Eventually(t, maxJobAge+10*time.Second, "both jobs expired", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["expiry"].Pending == 0 && st["expiry"].Running == 0
	})
	expiredAfter := time.Since(queuedAt)
	t.Logf("jobs expired %v after they were queued (max_job_age %v)", expiredAfter.Round(10*time.Millisecond), maxJobAge)
	if expiredAfter < maxJobAge {
		t.Errorf("jobs expired after %v, before max_job_age %v", expiredAfter, maxJobAge)
	}
	m := scrape(t, d.url("/metrics"))
	if v := m.get("hodei_autoscaler_expired_jobs_total", "pool", "expiry"); v != 2 {
		t.Errorf("expired_jobs_total{pool=expiry} = %v, want 2", v)
	}
	var logged []string
	for _, e := range d.logs.Entries("job expired after max_job_age without a finished event; it no longer counts as demand") {
		logged = append(logged, e.str("job_id"))
	}
	slices.Sort(logged)
	if !slices.Equal(logged, []string{"lost-pending", "lost-running"}) {
		t.Errorf("expiry logged for %q, want lost-pending and lost-running", logged)
	}
	bustest.Eventually(t, 20*time.Second, "the pool scaled back to 0", func() bool { return len(owned(t, cli, owner)) == 0 })

	// A late finished for an expired job changes nothing.
	jobs.Finished("expiry", "lost-running", w)
	jobs.Queued("expiry", "fresh", nil)
	bustest.Eventually(t, 5*time.Second, "only the fresh job pending", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["expiry"].Pending == 1 && st["expiry"].Running == 0
	})
	jobs.Finished("expiry", "fresh", "")

	// A restart folds the stream again: the lost jobs stay gone.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d2 := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "restarted daemon ready", d2.app.Ready)
	st, _ := pools(d2.url("/v1/pools"))
	if st["expiry"].Pending != 0 || st["expiry"].Running != 0 {
		t.Errorf("after a restart: pending %d running %d, want the expired jobs gone", st["expiry"].Pending, st["expiry"].Running)
	}
	m = scrape(t, d2.url("/metrics"))
	if v := m.get("hodei_autoscaler_events_dropped_total", "reason", "stale"); v < 3 {
		t.Errorf("events_dropped_total{reason=stale} = %v after the restart, want the 3 old queued/started events", v)
	}
}
