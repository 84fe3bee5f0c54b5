package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Standby is a pool another replica acts on (high availability: this
// replica does not hold the pool's lease). A standby pool folds its job
// events and follows its provider's workers like any other, so that a
// takeover starts from a caught-up ledger and the current worker list, but
// it decides nothing, publishes no decision and asks for no provider call:
// a stop or delete its observations call for is kept for when it becomes
// active again (the holder may well make it meanwhile, which then finds
// nothing to do). Pools are active unless the driver says otherwise.

// SetActive makes a pool active or standby. A pool becoming active
// reconciles at once and carries out what it kept: the deletes of
// workers that ended, the stops of workers left draining, and creating
// again the workers found created but not ready (idempotent: the holder
// that created them may have died between create and start). It reports
// whether the pool changed.
func (e *Engine) SetActive(name domain.PoolName, active bool, now time.Time) bool {
	p := e.pools[name]
	if p == nil || p.standby == !active {
		return false
	}
	p.standby = !active
	if active {
		p.resume(now, &e.fx)
	}
	return true
}

// Standby reports whether the pool is standby (see SetActive).
func (p *Pool) Standby() bool { return p.standby }

// resume issues what a standby pool kept for when it is active.
func (p *Pool) resume(now time.Time, fx *Effects) {
	p.dirty = true
	for _, w := range p.workers {
		if w.op != OpNone {
			continue
		}
		switch {
		case w.state == domain.StateProvisioning && w.adopted && p.folded:
			p.issue(w, OpCreate, now, fx)
		case w.state == domain.StateFailed || w.state == domain.StateDraining:
			p.retries[w.id] = struct{}{}
			w.retryAt = time.Time{}
		}
	}
}

// keep records, on a standby pool, a call that waits for it to be active.
func (p *Pool) keep(w *worker, k OpKind) {
	if k != OpCreate {
		p.retries[w.id] = struct{}{}
		w.retryAt = time.Time{}
	}
}
