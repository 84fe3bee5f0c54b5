package reconciler

import (
	"context"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// ApplyWithBudgets is Apply with the budgets a reload wants, set in the
// same turn of the loop as the pools, so no reconcile sees new pools with
// old budgets or the reverse. A budget lowered below what its pools hold
// takes effect as Allocate's shares always do: no create until the pools
// are under it, and only idle workers are stopped to get there; busy ones
// finish their jobs first (docs/policy.md).
func (r *Reconciler) ApplyWithBudgets(ctx context.Context, specs []PoolSpec, budgets []policy.Budget) (Changes, error) {
	bs := slices.Clone(budgets)
	return r.sendUpdate(ctx, update{specs: specs, budgets: &bs, done: make(chan Changes, 1)})
}

// setBudgets gives the engine new budgets, if any, and refreshes their
// gauges (those of removed budgets are deleted). It returns the names of
// the budgets added, changed or removed.
func (r *Reconciler) setBudgets(next *[]policy.Budget) []string {
	if next == nil {
		return nil
	}
	old := r.eng.Budgets()
	var changed []string
	for _, b := range *next {
		i := slices.IndexFunc(old, func(o policy.Budget) bool { return o.Name == b.Name })
		if i < 0 || old[i] != b {
			changed = append(changed, b.Name)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(*next, func(b policy.Budget) bool { return b.Name == o.Name }) {
			changed = append(changed, o.Name)
			r.m.BudgetLimit.DeletePartialMatch(prometheus.Labels{"budget": o.Name})
			r.m.BudgetWorkers.DeleteLabelValues(o.Name)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	r.eng.SetBudgets(*next)
	initBudgets(r.m, r.eng)
	return changed
}
