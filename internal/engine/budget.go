package engine

import (
	"strconv"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Budgets: pools that name a budget share it (policy.Allocate). When one
// of them is due, the engine reconciles all of them together: it asks each
// pool's policy what it wants, shares the budget, and caps each pool's
// decision by its share. Creates are further held to the room the budget
// has left at that instant, counted from every worker the pools hold
// (draining and failed ones too, as they still run until gone), so the
// budget is never exceeded even while a pool over its share waits for
// its busy workers to finish.

// BoundBudget is the Decision.Bound of a decision the budget capped.
const BoundBudget = "budget"

// SetBudgets sets the budgets the pools draw from (by PoolConfig.Budget).
// A pool naming a budget not given scales alone.
func (e *Engine) SetBudgets(bs []policy.Budget) {
	e.budgets = bs
	for _, p := range e.order {
		p.dirty = true
	}
}

// Budgets returns the budgets set.
func (e *Engine) Budgets() []policy.Budget { return e.budgets }

// budgetOf returns the budget a pool draws from.
func (e *Engine) budgetOf(p *Pool) (policy.Budget, bool) {
	if p.cfg.Budget == "" {
		return policy.Budget{}, false
	}
	for _, b := range e.budgets {
		if b.Name == p.cfg.Budget && b.Limits() {
			return b, true
		}
	}
	return policy.Budget{}, false
}

// BudgetUse is what a budget's pools hold now: every worker they have,
// whatever its state.
func (e *Engine) BudgetUse(name string) policy.Budget {
	use := policy.Budget{Name: name}
	for _, p := range e.order {
		if p.cfg.Budget != name {
			continue
		}
		n := len(p.workers)
		use.Workers += n
		use.CPUMillis += int64(n) * p.cfg.Cost.CPUMillis
		use.MemoryMB += int64(n) * p.cfg.Cost.MemoryMB
	}
	return use
}

// budgetRound is one pool's share during a budget's reconcile, with the
// room the budget has left, shared by the round's pools.
type budgetRound struct {
	budget policy.Budget
	share  policy.Share
	room   *policy.Budget
}

// reconcileBudgets reconciles the pools of every budget of which one pool
// is due, all together; it reports the pools it reconciled.
func (e *Engine) reconcileBudgets(now time.Time) map[*Pool]bool {
	done := map[*Pool]bool{}
	for _, b := range e.budgets {
		if !b.Limits() {
			continue
		}
		var members []*Pool
		due := false
		for _, p := range e.order {
			if bb, ok := e.budgetOf(p); ok && bb.Name == b.Name {
				done[p] = true
				if p.folded && !p.drained() {
					members = append(members, p)
					due = due || p.due(now)
				}
			}
		}
		if !due {
			continue
		}
		claims := make([]policy.Claim, len(members))
		use := e.BudgetUse(b.Name)
		for i, p := range members {
			st := p.State()
			want := policy.Decide(st, p.cfg.Settings, now).Desired
			if p.removing {
				want = 0
			}
			held := len(p.workers)
			claims[i] = policy.Claim{
				Want:     want + (held - st.Current()),
				Floor:    held - st.Idle,
				Priority: p.cfg.Priority, Weight: p.cfg.Weight, Guaranteed: p.cfg.Guaranteed,
				CPUMillis: p.cfg.Cost.CPUMillis, MemoryMB: p.cfg.Cost.MemoryMB,
			}
		}
		shares := policy.Allocate(b, claims)
		room := policy.Budget{Workers: b.Workers - use.Workers, CPUMillis: b.CPUMillis - use.CPUMillis, MemoryMB: b.MemoryMB - use.MemoryMB}
		for i, p := range members {
			p.budget = &budgetRound{budget: b, share: shares[i], room: &room}
			p.reconcile(now, &e.fx)
			if p.dirty {
				p.reconcile(now, &e.fx)
			}
			p.budget = nil
			e.fx.Touched = append(e.fx.Touched, p)
		}
	}
	return done
}

// capDecision bounds a decision by the pool's share and by the room the
// budget has left. A pool over its share gives its idle workers back at
// once (no idle hold): capacity is only ever taken from idle workers.
func (r *budgetRound) capDecision(p *Pool, st policy.State, d policy.Decision) policy.Decision {
	if r == nil {
		return d
	}
	current := st.Current()
	limit := r.share.Workers - (len(p.workers) - current) // draining and failed still hold room
	if fit := r.fits(p.cfg.Cost); current+fit < limit {
		limit = current + fit
	}
	limit = max(limit, st.Busy+st.Provisioning)
	if d.Desired <= limit {
		return d
	}
	d.Desired = limit
	d.Bound = BoundBudget
	d.Reason += "; capped at " + itoa(limit) + " by " + r.share.Reason
	if current > limit {
		// No hold: the excess idle workers stop now (a negative hold, as
		// a zero one means idle_timeout), so the pools waiting for the
		// room get it.
		d.Hold = policy.IdleHold{Fixed: -time.Nanosecond}
	}
	return d
}

// fits is how many more workers of cost the budget's room takes.
func (r *budgetRound) fits(cost domain.Resources) int {
	n := r.room.Workers
	if r.budget.Workers <= 0 {
		n = 1 << 30
	}
	if r.budget.CPUMillis > 0 && cost.CPUMillis > 0 {
		n = min(n, int(r.room.CPUMillis/cost.CPUMillis))
	}
	if r.budget.MemoryMB > 0 && cost.MemoryMB > 0 {
		n = min(n, int(r.room.MemoryMB/cost.MemoryMB))
	}
	return max(n, 0)
}

// took records n workers created from the room.
func (r *budgetRound) took(cost domain.Resources, n int) {
	if r == nil {
		return
	}
	r.room.Workers -= n
	r.room.CPUMillis -= int64(n) * cost.CPUMillis
	r.room.MemoryMB -= int64(n) * cost.MemoryMB
}

func itoa(n int) string { return strconv.Itoa(n) }
