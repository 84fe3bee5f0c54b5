package engine

import (
	"slices"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// A configuration reload changes the engine's pools through three narrow
// calls, made by the goroutine that owns the engine: UpdatePool (new
// settings for a pool), AddPool and RemovePool. None of them stops a
// worker by itself: a removed pool's workers go through the normal plan,
// which never stops a busy one.

// AddPool adds a pool. It takes the retained stream's messages again (see
// Replayed) and decides nothing until the driver, having read that stream
// again, calls CaughtUp. A pool of that name still being removed is kept,
// with the new settings (UpdatePool).
func (e *Engine) AddPool(c PoolConfig) {
	if e.UpdatePool(c) {
		return
	}
	p := newPool(c)
	e.pools[c.Name] = p
	e.order = append(e.order, p)
	e.folding++
}

// UpdatePool gives a pool new settings, in force from its next reconcile;
// a pool being removed is kept (the removal is cancelled). It reports
// whether the pool exists.
func (e *Engine) UpdatePool(c PoolConfig) bool {
	p := e.pools[c.Name]
	if p == nil {
		return false
	}
	p.update(c)
	return true
}

// RemovePool starts removing a pool: it wants no worker any more, so its
// idle workers are stopped at once and each busy one as soon as its jobs
// are done; it still folds its job events meanwhile (that is how it sees
// them end). Once it has no worker left it goes (Effects.Removed). It
// reports whether the pool exists.
func (e *Engine) RemovePool(name domain.PoolName) bool {
	p := e.pools[name]
	if p == nil {
		return false
	}
	if !p.removing {
		p.removing = true
		p.cfg.Settings = drainSettings(p.cfg.Settings)
		p.dirty = true
	}
	return true
}

// forget drops a removed pool with no worker left.
func (e *Engine) forget(p *Pool) {
	delete(e.pools, p.cfg.Name)
	e.order = slices.DeleteFunc(e.order, func(q *Pool) bool { return q == p })
	if !p.folded && e.folding > 0 {
		e.folding--
	}
	e.fx.Removed = append(e.fx.Removed, p.cfg.Name)
}

// update replaces the pool's configuration. The backoff restarts from the
// new retry settings when they changed; a pending backoff still holds.
func (p *Pool) update(c PoolConfig) {
	if c.RetryInitial != p.cfg.RetryInitial || c.RetryMax != p.cfg.RetryMax || c.RetryJitter != p.cfg.RetryJitter {
		p.bo = newBackoff(c)
	}
	p.cfg = c
	p.initTiers()
	p.removing = false
	p.dirty = true
}

// Removing reports whether a reload removed the pool and it is stopping
// its workers.
func (p *Pool) Removing() bool { return p.removing }

// drained reports whether a removed pool can be forgotten: it has no worker
// left (a dry-run pool never stops any, so it goes at once).
func (p *Pool) drained() bool {
	return p.removing && (p.cfg.DryRun || len(p.workers) == 0)
}

// removedReason is the decision reason of a pool being removed.
const removedReason = "pool removed from the configuration: desired 0; idle workers stop now, busy ones when their jobs are done"

// drainSettings are the settings of a pool being removed: no worker
// wanted, idle ones stopped at once, nothing holding the scale-down back.
func drainSettings(s policy.Settings) policy.Settings {
	s.MinWorkers, s.MaxWorkers = 0, 0
	s.IdleWorkers, s.IdleAuto, s.MaxIdleWorkers = 0, false, 0
	s.Schedules = nil
	s.ScaleUp, s.ScaleDown = policy.Behavior{}, policy.Behavior{}
	s.StabilizationWindow = 0
	s.TargetWaitP95, s.TargetWaitP99, s.TargetWaitAuto = 0, 0, false
	s.IdleTimeoutAuto, s.IdleTimeoutMin, s.IdleTimeoutMax = false, 0, 0
	s.IdleTimeout = 0
	return s
}
