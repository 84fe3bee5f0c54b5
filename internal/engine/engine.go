package engine

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// stableAfter is how long a worker must have been ready for its failure
// not to count as a crash loop (which backs the pool off).
const stableAfter = 30 * time.Second

// PoolConfig is what the engine needs to know about a pool.
type PoolConfig struct {
	Name      domain.PoolName
	Provider  string
	Settings  policy.Settings
	DryRun    bool
	StopGrace time.Duration
	// RetryInitial and RetryMax bound the exponential backoff after
	// provider failures (randomised by RetryJitter, 0 to 1).
	RetryInitial time.Duration
	RetryMax     time.Duration
	RetryJitter  float64
}

// Engine is the scaler's synchronous core: the ledgers, the workers, the
// policy and the plan, for every pool. It does no I/O, starts no
// goroutines and reads no clock; each call takes now. Calls describe what
// happened (an event, a provider observation, an operation's result) and
// Reconcile returns what to do. The daemon's Reconciler and the simulator
// both drive it, so they share every decision.
//
// An Engine is not safe for concurrent use: one goroutine owns it.
type Engine struct {
	pools     map[domain.PoolName]*Pool
	order     []*Pool
	maxJobAge time.Duration
	caughtUp  bool
	fx        Effects
}

// Effects are what the engine asks its driver to do, accumulated since the
// last Take.
type Effects struct {
	Ops       []Op
	Lifecycle []Lifecycle
	Decisions []Decision
	// Ready lists provisioning durations (create issued to ready).
	Ready   []Observation
	Expired []ExpiredJob
	// Touched are the pools reconciled, whose gauges and status changed.
	Touched []*Pool
}

// Op is a provider call to make.
type Op struct {
	Kind   OpKind
	Pool   domain.PoolName
	Worker domain.WorkerID
	Grace  time.Duration // for OpStop
	// Covers are the event times of the queued jobs this create serves,
	// for the reaction_seconds metric.
	Covers []time.Time
}

// Lifecycle is a worker lifecycle event to publish.
type Lifecycle struct {
	Pool     domain.PoolName
	Worker   domain.WorkerID
	Provider string
	State    domain.Lifecycle
	Reason   string
}

// Decision is a decision event to publish, with its direction.
type Decision struct {
	Data      domain.DecisionData
	Direction string // up, down or none
}

// Observation is a duration measured for a pool.
type Observation struct {
	Pool     domain.PoolName
	Provider string
	Value    time.Duration
}

// ExpiredJob is a job dropped after max_job_age.
type ExpiredJob struct {
	Pool   domain.PoolName
	Job    domain.JobID
	Worker domain.WorkerID
	Age    time.Duration
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
func (e *Engine) CaughtUp(now time.Time) {
	if e.caughtUp {
		return
	}
	e.caughtUp = true
	for _, p := range e.order {
		p.dirty = true
		// Workers found created but not ready may never have been
		// started (a crash between the two): create again, which is
		// idempotent and starts them.
		for w := p.provisioning.head; w != nil; w = w.next {
			if w.adopted {
				p.issue(w, OpCreate, now, &e.fx)
			}
		}
	}
}

// IsCaughtUp reports whether CaughtUp was called.
func (e *Engine) IsCaughtUp() bool { return e.caughtUp }

// ApplyJob folds one job event. The returned reason is set when the
// result is Ignored.
func (e *Engine) ApplyJob(ev domain.JobEvent, now time.Time) (Result, string) {
	p := e.pools[ev.Pool]
	if p == nil {
		return Ignored, domain.ReasonUnknownPool
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
	var ch Change
	switch ev.Kind {
	case domain.JobQueued:
		ch = p.ledger.Queued(ev.JobID, at)
		if ch.Result == Applied {
			p.hist.Queued(at, p.cfg.Settings)
			t := ev.Time
			if t.IsZero() {
				t = at
			}
			p.uncovered = append(p.uncovered, t)
		}
	case domain.JobStarted:
		ch = p.ledger.Started(ev.JobID, ev.WorkerID, at)
	case domain.JobFinished:
		ch = p.ledger.Finished(ev.JobID, at)
	}
	if ch.Result != Applied {
		return ch.Result, ""
	}
	p.dirty = true
	if ch.From != "" {
		p.jobLeft(ch.From, now, &e.fx)
	}
	reason := ""
	if ch.To != "" {
		if !p.jobArrived(ch.To, now, &e.fx) {
			reason = domain.ReasonUnknownWorker
		}
	}
	if ch.WasPending || ev.Kind == domain.JobFinished {
		p.trimUncovered()
	}
	if reason != "" {
		return Ignored, reason
	}
	return Applied, ""
}

// Tick expires jobs older than max_job_age. Call it periodically.
func (e *Engine) Tick(now time.Time) {
	for _, p := range e.order {
		p.forgetRemoved(now)
	}
	if e.maxJobAge <= 0 {
		return
	}
	cutoff := now.Add(-e.maxJobAge)
	for _, p := range e.order {
		for _, x := range p.ledger.Expire(cutoff) {
			if x.Worker != "" {
				p.jobLeft(x.Worker, now, &e.fx)
			}
			p.dirty = true
			e.fx.Expired = append(e.fx.Expired, ExpiredJob{Pool: p.cfg.Name, Job: x.ID, Worker: x.Worker, Age: now.Sub(x.Since)})
		}
		p.trimUncovered()
	}
}

// ObserveList reconciles a pool's workers with a full provider listing
// taken at listedAt (when the List call started). Workers missing from it
// are gone, unless the engine learned of them after listedAt.
func (e *Engine) ObserveList(pool domain.PoolName, ws []domain.Worker, listedAt, now time.Time) {
	p := e.pools[pool]
	if p == nil {
		return
	}
	seen := make(map[domain.WorkerID]struct{}, len(ws))
	for _, w := range ws {
		seen[w.ID] = struct{}{}
		e.observe(p, w, now)
	}
	for id, w := range p.workers {
		if _, ok := seen[id]; ok || w.op != OpNone || w.seenAt.After(listedAt) {
			continue
		}
		e.gone(p, w, now)
	}
	if !p.listed {
		p.listed = true
		p.dirty = true
	}
}

// ObserveChange applies one pushed provider change.
func (e *Engine) ObserveChange(pool domain.PoolName, c domain.WorkerChange, now time.Time) {
	p := e.pools[pool]
	if p == nil {
		return
	}
	if c.Gone {
		if w := p.workers[c.ID]; w != nil && w.op == OpNone {
			e.gone(p, w, now)
		}
		return
	}
	e.observe(p, c.Worker, now)
}

func (e *Engine) observe(p *Pool, obs domain.Worker, now time.Time) {
	w := p.workers[obs.ID]
	if w == nil {
		if p.wasRemoved(obs.ID, now) {
			// A late or stale sighting (a listing taken before the stop
			// returned, a container still being removed): not a new worker.
			return
		}
		e.adopt(p, obs, now)
		return
	}
	w.seenAt = now
	w.phase, w.reason = obs.Phase, obs.Reason
	switch {
	case obs.Phase == domain.PhaseReady && w.state == domain.StateProvisioning:
		p.becomeReady(w, now, &e.fx)
	case obs.Phase.Terminal() && w.alive() && w.op == OpNone:
		if w.state == domain.StateDraining {
			// Our stop's effect, seen before the stop call returned.
			return
		}
		e.ended(p, w, obs, now)
	}
}

// adopt takes in a worker found by the provider and not known here: one
// created before a restart, or one whose create result has not arrived.
func (e *Engine) adopt(p *Pool, obs domain.Worker, now time.Time) {
	w := &worker{id: obs.ID, phase: obs.Phase, reason: obs.Reason, seenAt: now, adopted: true}
	p.workers[w.id] = w
	switch {
	case obs.Phase.Terminal():
		w.state = domain.StateFailed
		p.count[stateIndex(w.state)]++
		p.dirty = true
		e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, terminalLifecycle(obs.Phase), "ended while the autoscaler was not watching: "+obs.Reason))
		p.issue(w, OpDelete, now, &e.fx)
	case obs.Phase == domain.PhaseReady:
		w.readyAt = now
		p.revive(w)
		p.setState(w, domain.StateIdle, now)
		if w.jobs > 0 {
			p.setState(w, domain.StateBusy, now)
		}
	default:
		since := obs.CreatedAt
		if since.IsZero() || since.After(now) {
			since = now
		}
		w.since = since
		w.state = domain.StateProvisioning
		p.count[stateIndex(w.state)]++
		p.provisioning.insertSorted(w)
		p.revive(w)
		if e.caughtUp {
			// Created but maybe never started: create again (idempotent).
			p.issue(w, OpCreate, now, &e.fx)
		}
	}
	p.dirty = true
}

// ended handles a worker that stopped on its own.
func (e *Engine) ended(p *Pool, w *worker, obs domain.Worker, now time.Time) {
	lc := terminalLifecycle(obs.Phase)
	reason := obs.Reason
	if reason == "" {
		reason = "worker ended on its own"
	}
	// A worker that exits cleanly but at once, before it ran a job (a
	// wrong command, a worker that cannot reach its scheduler), is a crash
	// loop too: back off as after a failure, or the pool would create
	// containers in a hot loop.
	quit := w.jobsRun == 0 && (w.readyAt.IsZero() || now.Sub(w.readyAt) < stableAfter)
	if obs.Phase == domain.PhaseFailed || quit {
		p.failure(w, now)
	}
	p.kill(w, now)
	e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, lc, reason))
	p.issue(w, OpDelete, now, &e.fx)
}

// gone handles a worker that disappeared without our doing.
func (e *Engine) gone(p *Pool, w *worker, now time.Time) {
	if w.alive() {
		reason := "worker disappeared: removed outside the autoscaler"
		if w.state == domain.StateDraining {
			e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, domain.LifecycleStopped, "stopped"))
		} else {
			e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, reason))
		}
		p.kill(w, now)
	}
	p.drop(w, now)
}

// OpDone applies the result of a provider call. For a create, got is the
// worker as the provider saw it after creating.
func (e *Engine) OpDone(pool domain.PoolName, op OpKind, id domain.WorkerID, got domain.Worker, err error, now time.Time) {
	p := e.pools[pool]
	if p == nil {
		return
	}
	w := p.workers[id]
	if w == nil {
		return
	}
	w.op = OpNone
	p.dirty = true
	switch op {
	case OpCreate:
		if err != nil {
			if w.alive() {
				p.failure(w, now)
				p.kill(w, now)
				e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, "create failed: "+err.Error()))
			}
			// A failed create may have left a container behind.
			p.issue(w, OpDelete, now, &e.fx)
			return
		}
		w.seenAt = now
		e.observe(p, got, now)
	case OpStop:
		if err != nil {
			w.retryAt = now.Add(p.nextRetry())
			p.retries[w.id] = struct{}{}
			return
		}
		if w.alive() {
			e.fx.Lifecycle = append(e.fx.Lifecycle, p.lifecycle(w, domain.LifecycleStopped, "stopped by the autoscaler"))
			p.kill(w, now)
		}
		p.drop(w, now)
	case OpDelete:
		if err != nil {
			w.retryAt = now.Add(p.nextRetry())
			p.retries[w.id] = struct{}{}
			return
		}
		p.drop(w, now)
	}
}

// SetProviderUp records the provider's health (from the circuit breaker).
// While it is down the pool makes no provider calls.
func (e *Engine) SetProviderUp(pool domain.PoolName, up bool, reason string) {
	p := e.pools[pool]
	if p == nil || p.providerUp == up {
		return
	}
	p.providerUp, p.downReason = up, reason
	p.dirty = true
}

// StopIdle drains every idle worker of every pool (shutdown.stop_workers).
func (e *Engine) StopIdle(now time.Time) {
	for _, p := range e.order {
		if p.cfg.DryRun {
			continue
		}
		for w := p.idle.head; w != nil; {
			next := w.next
			p.drain(w, now, &e.fx, "idle")
			w = next
		}
	}
}

// Reconcile decides and plans for every pool that changed or whose next
// wake-up time has come; an unchanged pool costs O(1).
func (e *Engine) Reconcile(now time.Time) {
	if !e.caughtUp {
		return
	}
	for _, p := range e.order {
		if !p.dirty && (p.nextWake.IsZero() || now.Before(p.nextWake)) {
			continue
		}
		p.reconcile(now, &e.fx)
		if p.dirty { // timeouts changed the pool: plan again at once
			p.reconcile(now, &e.fx)
		}
		e.fx.Touched = append(e.fx.Touched, p)
	}
}

func terminalLifecycle(ph domain.Phase) domain.Lifecycle {
	if ph == domain.PhaseExited {
		return domain.LifecycleStopped
	}
	return domain.LifecycleFailed
}

func newBackoff(c PoolConfig) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = max(c.RetryInitial, time.Millisecond)
	b.MaxInterval = max(c.RetryMax, b.InitialInterval)
	b.RandomizationFactor = c.RetryJitter
	b.Multiplier = 2
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}
