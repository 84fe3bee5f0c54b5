package faults

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// Issue 10: a started published on pool a for pool b's job, naming a's
// live worker, through a real daemon and its embedded NATS. It is refused
// as job_pool_mismatch, so the worker is not made busy with a job it does
// not run: once its own job's finished arrives it is idle and goes at its
// idle_timeout, instead of being held until max_job_age. The events are
// ordered on the one job stream (the misrouted started comes before the
// worker's own finished), so the outcome does not depend on timing. The
// providers are fakes: what is under test is the bus path and the ledger,
// not a provider.
func TestMisroutedStartedDoesNotHoldAWorker(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, "faults-misrouted")
	fakes := map[string]*fakeprovider.Provider{"a": fakeprovider.New("a"), "b": fakeprovider.New("b")}
	for _, name := range []string{"a", "b"} {
		p := config.PoolDefaults()
		p.Name = name
		p.Docker.Image = "unused"
		p.MaxWorkers = 1
		p.IdleWorkers = config.IdleWorkers{Count: 0}
		p.IdleTimeout = config.Fixed(time.Second)
		cfg.Pools = append(cfg.Pools, p)
	}
	d := startInProc(t, cfg, app.Options{Providers: func(_ string, p config.Pool, _ zerolog.Logger) (providers.Provider, error) {
		return fakes[p.Name], nil
	}})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)

	jobs.Queued("a", "ja", nil)
	bustest.Eventually(t, 10*time.Second, "pool a's worker ready", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return len(fakes["a"].Workers()) == 1 && st["a"].Workers[string(domain.StateIdle)] == 1
	})
	wa := fakes["a"].Workers()[0]
	jobs.Started("a", "ja", wa)
	jobs.Queued("b", "jb", nil)
	jobs.Started("a", "jb", wa) // misrouted: b's job on a's subject, naming a's worker
	jobs.Finished("a", "ja", wa)

	bustest.Eventually(t, 20*time.Second, "pool a's worker stopped once its own job finished", func() bool {
		return slices.ContainsFunc(fakes["a"].Calls(), func(c fakeprovider.Call) bool {
			return c.Worker == wa && (c.Op == "stop" || c.Op == "delete")
		})
	})
	m := scrape(t, d.url("/metrics"))
	if got := m.get("hodei_autoscaler_events_dropped_total", "reason", string(domain.ReasonJobPoolMismatch)); got != 1 {
		t.Errorf("events_dropped_total{job_pool_mismatch} = %v, want 1", got)
	}
	if got := m.get("hodei_autoscaler_busy_workers_killed_total", "pool", "a"); got != 0 {
		t.Errorf("busy_workers_killed_total{a} = %v, want 0", got)
	}
	if st, _ := pools(d.url("/v1/pools")); st["b"].Pending != 1 {
		t.Errorf("pool b: %d pending, want its job jb still pending (the misrouted started must not start it)", st["b"].Pending)
	}
}
