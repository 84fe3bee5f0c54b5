package reconciler

import (
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// tierRun is one of a pool's providers: the pool's only one, or one tier's
// (a pool with tiers has one per tier, each with its own breaker, so a
// tier whose provider is down is skipped while the others go on).
type tierRun struct {
	index    int
	name     string // the tier's label value; "" for a pool without tiers
	provider string
	prov     *liveProvider
	breaker  *Breaker
}

// setTiers gives the pool its tiers' providers (prov: the factory's
// result, a providers.Tiered for a pool with tiers).
func (r *Reconciler) setTiers(run *poolRun, p *engine.Pool, prov providers.Provider) {
	provs := providers.TiersOf(prov)
	cfg := p.Config()
	run.tiers = make([]*tierRun, len(provs))
	for i, tp := range provs {
		tr := &tierRun{index: i, provider: cfg.Provider, prov: newLiveProvider(tp),
			breaker: &Breaker{Threshold: max(r.opt.BreakerFailures, 1), Cooldown: r.opt.BreakerCooldown}}
		if i < len(cfg.Tiers) {
			tr.name, tr.provider = cfg.Tiers[i].Name, cfg.Tiers[i].Provider
		}
		name, tier := run.name, i
		tr.breaker.onChange = func(open bool, reason string) {
			up := !open
			r.send(observation{pool: name, tier: tier, health: &up, reason: reason})
		}
		run.tiers[i] = tr
	}
}

// tier returns the tier of index i (the first when out of range).
func (run *poolRun) tier(i int) *tierRun {
	if i < 0 || i >= len(run.tiers) {
		return run.tiers[0]
	}
	return run.tiers[i]
}

// retire retires every tier's provider.
func (run *poolRun) retire() {
	for _, tr := range run.tiers {
		tr.prov.retire()
	}
}

// setUp records a tier's health in the gauges: the pool's provider_up
// and breaker_open say whether any of its tiers is down.
func (run *poolRun) setUp(tier int, up bool) {
	if tier >= 0 && tier < len(run.tiers) && run.tiers[tier].name != "" {
		tr := run.tiers[tier]
		metrics.SetBool(run.gauges.m.TierUp.WithLabelValues(string(run.name), tr.name, tr.provider), up)
	}
	all := up
	for i, tr := range run.tiers {
		if i != tier {
			open, _ := tr.breaker.Open()
			all = all && !open
		}
	}
	run.gauges.setUp(all)
}

// publishBudgets refreshes the budgets' gauges.
func (r *Reconciler) publishBudgets() {
	for _, b := range r.eng.Budgets() {
		r.m.BudgetWorkers.WithLabelValues(b.Name).Set(float64(r.eng.BudgetUse(b.Name).Workers))
	}
}

// initBudgets publishes the budgets' limits.
func initBudgets(m *metrics.Metrics, eng *engine.Engine) {
	for _, b := range eng.Budgets() {
		m.BudgetLimit.WithLabelValues(b.Name, "workers").Set(float64(b.Workers))
		m.BudgetLimit.WithLabelValues(b.Name, "cpu_millis").Set(float64(b.CPUMillis))
		m.BudgetLimit.WithLabelValues(b.Name, "memory_mb").Set(float64(b.MemoryMB))
		m.BudgetWorkers.WithLabelValues(b.Name).Set(float64(eng.BudgetUse(b.Name).Workers))
	}
}
