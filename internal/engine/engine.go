package engine

import (
	"slices"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Engine is the scaler's synchronous core: the ledgers, the workers, the
// policy and the plan, for every pool. It does no I/O, starts no
// goroutines and reads no clock; each call takes now. Calls describe what
// happened (an event, a provider observation, an operation's result) and
// Reconcile returns what to do. The daemon's Reconciler and the simulator
// both drive it, so they share every decision.
//
// The Engine only routes: each call goes to its pool, whose worker state
// machine (pool.go, workers.go) and reconcile steps (reconcile.go) do the
// work. An Engine is not safe for concurrent use: one goroutine owns it.
type Engine struct {
	pools     map[domain.PoolName]*Pool
	order     []*Pool
	maxJobAge time.Duration
	caughtUp  bool
	fx        Effects
	// applied is the highest stream sequence read, and folding counts
	// the pools added by a reload whose fold of the retained stream is
	// not done yet (see AddPool).
	applied uint64
	folding int
	// budgets are shared by the pools that name them (budget.go).
	budgets []policy.Budget
}

// NewEngine builds an engine for the pools. maxJobAge is how long a job
// may count as demand without its finished event.
func NewEngine(pools []PoolConfig, maxJobAge time.Duration) *Engine {
	e := &Engine{pools: make(map[domain.PoolName]*Pool, len(pools)), maxJobAge: maxJobAge}
	for _, c := range pools {
		p := newPool(c)
		e.pools[c.Name] = p
		e.order = append(e.order, p)
	}
	return e
}

// Pools returns the pools in configuration order.
func (e *Engine) Pools() []*Pool { return e.order }

// Pool returns one pool, or nil.
func (e *Engine) Pool(name domain.PoolName) *Pool { return e.pools[name] }

// Take returns and clears the accumulated effects.
func (e *Engine) Take() Effects {
	fx := e.fx
	e.fx = Effects{}
	return fx
}

// CaughtUp records that the retained job stream has been folded; before
// that the engine decides nothing, so a restart never acts on half a log.
// Pools added by a reload are folded by the same call, after the driver
// has read the retained stream again for them. It reports whether any pool
// became folded.
func (e *Engine) CaughtUp(now time.Time) bool {
	if e.caughtUp && e.folding == 0 {
		return false
	}
	e.caughtUp = true
	e.folding = 0
	for _, p := range e.order {
		if !p.folded {
			p.streamFolded(now, &e.fx)
		}
	}
	return true
}

// Replayed reports whether the stream message seq has been read before,
// and remembers it otherwise. After a reload adds a pool the driver reads
// the retained stream again; only the new pools take those messages
// (ApplyJob returns Replayed to the others), and the driver does not
// count an invalid message twice.
func (e *Engine) Replayed(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq <= e.applied {
		return true
	}
	e.applied = seq
	return false
}

// IsCaughtUp reports whether CaughtUp was called.
func (e *Engine) IsCaughtUp() bool { return e.caughtUp }

// ApplyJob folds one job event. The returned reason is set when the
// result is Ignored.
func (e *Engine) ApplyJob(ev domain.JobEvent, now time.Time) (Result, string) {
	replay := e.Replayed(ev.Seq)
	p := e.pools[ev.Pool]
	switch {
	case p == nil && replay:
		return Replayed, ""
	case p == nil:
		return Ignored, domain.ReasonUnknownPool
	case replay && p.folded:
		return Replayed, ""
	}
	if reason := e.crossPool(p, ev); reason != "" {
		return Ignored, reason
	}
	at := ev.Stored
	if at.IsZero() {
		at = now
	}
	if e.maxJobAge > 0 && ev.Kind != domain.JobFinished {
		cutoff := now.Add(-e.maxJobAge)
		if at.Before(cutoff) || (!ev.Time.IsZero() && ev.Time.Before(cutoff)) {
			return Ignored, domain.ReasonStale
		}
	}
	return p.applyJob(ev, at, now, &e.fx)
}

// Tick expires jobs older than max_job_age. Call it periodically.
func (e *Engine) Tick(now time.Time) {
	for _, p := range e.order {
		p.expireHeartbeats(now)
		p.forgetRemoved(now)
		if e.maxJobAge > 0 {
			p.expire(now.Add(-e.maxJobAge), now, &e.fx)
		}
	}
}

// ObserveList reconciles a pool's workers with a full provider listing
// taken at listedAt (when the List call started). Workers missing from it
// are gone, unless the engine learned of them after listedAt.
func (e *Engine) ObserveList(pool domain.PoolName, ws []domain.Worker, listedAt, now time.Time) {
	if p := e.pools[pool]; p != nil {
		p.observeList(ws, listedAt, now, &e.fx)
	}
}

// ObserveChange applies one pushed provider change.
func (e *Engine) ObserveChange(pool domain.PoolName, c domain.WorkerChange, now time.Time) {
	if p := e.pools[pool]; p != nil {
		p.observeChange(c, now, &e.fx)
	}
}

// OpDone applies the result of a provider call. For a create, got is the
// worker as the provider saw it after creating.
func (e *Engine) OpDone(pool domain.PoolName, op OpKind, id domain.WorkerID, got domain.Worker, err error, now time.Time) {
	if p := e.pools[pool]; p != nil {
		p.opDone(op, id, got, err, now, &e.fx)
	}
}

// SetProviderUp records the provider's health (from the circuit breaker).
// While it is down the pool makes no provider calls.
func (e *Engine) SetProviderUp(pool domain.PoolName, up bool, reason string) {
	if p := e.pools[pool]; p != nil {
		p.setProviderUp(up, reason)
	}
}

// StopIdle drains every idle worker of every pool (shutdown.stop_workers).
func (e *Engine) StopIdle(now time.Time) {
	for _, p := range e.order {
		p.drainAllIdle(now, &e.fx)
	}
}

// Reconcile decides and plans for every pool that changed or whose next
// wake-up time has come; an unchanged pool costs O(1).
func (e *Engine) Reconcile(now time.Time) {
	if !e.caughtUp {
		return
	}
	var shared map[*Pool]bool
	if len(e.budgets) > 0 {
		shared = e.reconcileBudgets(now)
	}
	for _, p := range slices.Clone(e.order) {
		if p.drained() {
			e.forget(p)
			continue
		}
		if shared[p] {
			continue
		}
		if !p.folded || !p.due(now) {
			continue
		}
		if p.standby { // another replica decides: only the status changed
			p.dirty, p.nextWake = false, time.Time{}
			e.fx.Touched = append(e.fx.Touched, p)
			continue
		}
		p.reconcile(now, &e.fx)
		if p.dirty { // timeouts changed the pool: plan again at once
			p.reconcile(now, &e.fx)
		}
		e.fx.Touched = append(e.fx.Touched, p)
	}
}
