package app

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// A reload applies budget changes live (docs/policy.md): raised, the
// pools grow into it; lowered, idle workers go down to it; removed (and
// no pool naming it), the pool scales alone again; the budget gauges
// follow, and no restart is asked for.
func TestReloadAppliesBudgets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := testConfig(t, filepath.Join(dir, "nats"))
	cfg.Pools[0].MaxWorkers = 10
	cfg.Pools[0].Budget = "shared"
	cfg.Budgets = map[string]config.Budget{"shared": {Workers: 2}}
	r := runReloadable(t, path, cfg)
	a, f, logs, jobs := r.app, r.fakes, r.logs, r.jobs
	for i := range 6 {
		jobs.Queued("p1", fmt.Sprint("j", i), nil)
	}
	p1 := f.of("p1")[0]
	limit := func() float64 { return testutil.ToFloat64(a.m.BudgetLimit.WithLabelValues("shared", "workers")) }
	bustest.Eventually(t, 10*time.Second, "2 workers under the budget of 2", func() bool { return len(p1.Workers()) == 2 })

	for i, step := range []struct {
		name    string
		budget  int // 0: no budget
		workers int
	}{
		{"raised to 4: the pool grows into it", 4, 4},
		{"lowered to 1: idle workers stop down to it", 1, 1},
		{"removed: the pool scales alone, to its 6 jobs", 0, 6},
	} {
		t.Run(step.name, func(t *testing.T) {
			applied := testutil.ToFloat64(a.m.ConfigReloads.WithLabelValues(metrics.ReloadApplied))
			if step.budget > 0 {
				cfg.Budgets = map[string]config.Budget{"shared": {Workers: step.budget}}
			} else {
				cfg.Budgets, cfg.Pools[0].Budget = nil, ""
			}
			writeConfigFile(t, path, cfg)
			bustest.Eventually(t, 10*time.Second, "the reload applied", func() bool {
				return testutil.ToFloat64(a.m.ConfigReloads.WithLabelValues(metrics.ReloadApplied)) == applied+1
			})
			bustest.Eventually(t, 10*time.Second, fmt.Sprint(step.workers, " workers"), func() bool { return len(p1.Workers()) == step.workers })
			if step.budget > 0 && limit() != float64(step.budget) {
				t.Errorf("budget_limit{shared,workers} %v, want %d", limit(), step.budget)
			}
			if step.budget == 0 {
				if n, _ := testutil.GatherAndCount(a.reg, "hodei_autoscaler_budget_limit", "hodei_autoscaler_budget_workers"); n != 0 {
					t.Errorf("%d budget series after the budget went, want 0", n)
				}
			}
			if n := strings.Count(logs.String(), `"budgets":["shared"]`); n != i+1 {
				t.Errorf("%d reloads logged budgets [shared], want %d", n, i+1)
			}
		})
	}
	if strings.Contains(logs.String(), `"key":"budgets`) {
		t.Errorf("a budget change was reported as needing a restart:\n%s", logs.String())
	}
}
