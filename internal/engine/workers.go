package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// The worker state machine of a pool. Every state change goes through
// setState; the handlers below turn what happened (a provider observation,
// a provider call's result, a job event) into state changes, lifecycle
// events and provider calls:
//
//	(create) -> provisioning -> idle <-> busy
//	provisioning, idle -> draining (stop issued) -> stopped (dropped)
//	any alive state -> failed (ended, timed out, disappeared) -> deleted (dropped)

// noState is the state of a worker not (or no longer) in the pool.
const noState domain.WorkerState = ""

func stateIndex(s domain.WorkerState) int {
	for i, x := range domain.WorkerStates {
		if x == s {
			return i
		}
	}
	return 0
}

// setState is the one place a worker changes state. It keeps the counts
// and the idle and provisioning lists (ordered by since, oldest first)
// right; since is when the worker entered s: now, or an adopted worker's
// creation time. noState takes the worker out of every state.
func (p *Pool) setState(w *worker, s domain.WorkerState, since time.Time) {
	if w.state == s {
		return
	}
	if w.state != noState {
		p.count[stateIndex(w.state)]--
	}
	p.idle.remove(w)
	p.provisioning.remove(w)
	w.state = s
	switch s {
	case domain.StateIdle:
		w.since = since
		p.idle.insert(w)
	case domain.StateProvisioning:
		w.since = since
		p.provisioning.insert(w)
	}
	if s != noState {
		p.count[stateIndex(s)]++
	}
	p.dirty = true
}

// revive makes a worker's jobs count as its own (it is alive here).
func (p *Pool) revive(w *worker) {
	w.jobs = p.ledger.JobsOn(w.id)
	p.orphanRunning -= w.jobs
}

// kill marks a worker dead: its jobs are demand again.
func (p *Pool) kill(w *worker, now time.Time) {
	if !w.alive() {
		return
	}
	p.orphanRunning += w.jobs
	w.jobs = 0
	p.setState(w, domain.StateFailed, now)
}

// drop forgets a worker entirely.
func (p *Pool) drop(w *worker, now time.Time) {
	if w.alive() {
		p.orphanRunning += w.jobs
	}
	p.setState(w, noState, now)
	p.removed[w.id] = now
	p.removedOrder = append(p.removedOrder, removal{w.id, now})
	delete(p.workers, w.id)
	delete(p.retries, w.id)
}

// removedMemory is how long a removed worker's id is remembered: longer
// than any listing or event can lag behind.
const removedMemory = 10 * time.Minute

type removal struct {
	id domain.WorkerID
	at time.Time
}

// wasRemoved reports whether id is a worker this pool removed recently.
func (p *Pool) wasRemoved(id domain.WorkerID, now time.Time) bool {
	at, ok := p.removed[id]
	return ok && now.Sub(at) < removedMemory
}

// forgetRemoved drops the memory of removals older than removedMemory.
func (p *Pool) forgetRemoved(now time.Time) {
	n := 0
	for _, r := range p.removedOrder {
		if now.Sub(r.at) < removedMemory {
			break
		}
		if at, ok := p.removed[r.id]; ok && at.Equal(r.at) {
			delete(p.removed, r.id)
		}
		n++
	}
	if n > 0 {
		p.removedOrder = append(p.removedOrder[:0:0], p.removedOrder[n:]...)
	}
}

// observeList reconciles the workers with a full provider listing taken
// at listedAt. Workers missing from it are gone, unless they were learned
// of after listedAt or a provider call on them is in flight.
func (p *Pool) observeList(ws []domain.Worker, listedAt, now time.Time, fx *Effects) {
	p.observeListOf(ws, listedAt, now, fx, nil)
}

// observeListOf is observeList over the workers mine accepts (one tier's;
// nil: all).
func (p *Pool) observeListOf(ws []domain.Worker, listedAt, now time.Time, fx *Effects, mine func(*worker) bool) {
	seen := make(map[domain.WorkerID]struct{}, len(ws))
	for _, w := range ws {
		seen[w.ID] = struct{}{}
		p.observe(w, now, fx)
	}
	for id, w := range p.workers {
		if _, ok := seen[id]; ok || w.op != OpNone || w.seenAt.After(listedAt) || (mine != nil && !mine(w)) {
			continue
		}
		p.gone(w, now, fx)
	}
	if !p.listed {
		p.listed = true
		p.dirty = true
	}
}

// observeChange applies one pushed provider change.
func (p *Pool) observeChange(c domain.WorkerChange, now time.Time, fx *Effects) {
	if c.Gone {
		if w := p.workers[c.ID]; w != nil && w.op == OpNone {
			p.gone(w, now, fx)
		}
		return
	}
	p.observe(c.Worker, now, fx)
}

// observe applies what the provider says about one worker.
func (p *Pool) observe(obs domain.Worker, now time.Time, fx *Effects) {
	w := p.workers[obs.ID]
	if w == nil {
		if p.wasRemoved(obs.ID, now) {
			// A late or stale sighting (a listing taken before the stop
			// returned, a container still being removed): not a new worker.
			return
		}
		p.adopt(obs, now, fx)
		return
	}
	w.seenAt = now
	w.phase, w.reason = obs.Phase, obs.Reason
	switch {
	case obs.Phase == domain.PhaseReady && w.state == domain.StateProvisioning:
		p.becomeReady(w, now, fx)
	case obs.Phase.Terminal() && w.alive() && w.op == OpNone:
		if w.state == domain.StateDraining {
			// Our stop's effect, seen before the stop call returned.
			return
		}
		p.ended(w, obs, now, fx)
	}
}

// adopt takes in a worker found by the provider and not known here: one
// created before a restart, or one whose create result has not arrived.
func (p *Pool) adopt(obs domain.Worker, now time.Time, fx *Effects) {
	w := &worker{id: obs.ID, phase: obs.Phase, reason: obs.Reason, seenAt: now, adopted: true, tier: p.observing}
	p.workers[w.id] = w
	switch {
	case obs.Phase.Terminal():
		p.setState(w, domain.StateFailed, now)
		fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, terminalLifecycle(obs.Phase), "ended while the autoscaler was not watching: "+obs.Reason))
		p.issue(w, OpDelete, now, fx)
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
		p.setState(w, domain.StateProvisioning, since)
		p.revive(w)
		if p.folded {
			// Created but maybe never started: create again (idempotent).
			p.issue(w, OpCreate, now, fx)
		}
	}
	p.dirty = true
}

// ended handles a worker that stopped on its own.
func (p *Pool) ended(w *worker, obs domain.Worker, now time.Time, fx *Effects) {
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
	fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, lc, reason))
	p.issue(w, OpDelete, now, fx)
}

// gone handles a worker that disappeared without our doing.
func (p *Pool) gone(w *worker, now time.Time, fx *Effects) {
	if w.alive() {
		if w.state == domain.StateDraining {
			fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleStopped, "stopped"))
		} else {
			fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, "worker disappeared: removed outside the autoscaler"))
		}
		p.kill(w, now)
	}
	p.drop(w, now)
}

// opDone applies the result of a provider call on worker id.
func (p *Pool) opDone(op OpKind, id domain.WorkerID, got domain.Worker, err error, now time.Time, fx *Effects) {
	w := p.workers[id]
	if w == nil {
		return
	}
	w.op = OpNone
	p.dirty = true
	switch {
	case op == OpCreate && err != nil:
		if w.alive() {
			p.failure(w, now)
			p.kill(w, now)
			fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, "create failed: "+err.Error()))
		}
		// A failed create may have left a container behind.
		p.issue(w, OpDelete, now, fx)
	case op == OpCreate:
		w.seenAt = now
		p.observe(got, now, fx)
	case err != nil: // a stop or a delete: try again later
		w.retryAt = now.Add(p.nextRetry())
		p.retries[w.id] = struct{}{}
	case op == OpStop:
		if w.alive() {
			fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleStopped, "stopped by the autoscaler"))
			p.kill(w, now)
		}
		p.drop(w, now)
	case op == OpDelete:
		p.drop(w, now)
	}
}

func (p *Pool) becomeReady(w *worker, now time.Time, fx *Effects) {
	if !w.adopted {
		fx.Ready = append(fx.Ready, Observation{Pool: p.cfg.Name, Provider: p.providerOf(w), Value: now.Sub(w.since)})
		p.hist.Provisioned(now.Sub(w.since))
	}
	w.readyAt = now
	fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleReady, ""))
	if p.busyNow(w, now) {
		p.setState(w, domain.StateBusy, now)
	} else {
		p.setState(w, domain.StateIdle, now)
	}
}

// drain stops a worker: it takes no new job and is stopped.
func (p *Pool) drain(w *worker, now time.Time, fx *Effects, reason string) {
	p.setState(w, domain.StateDraining, now)
	fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleDraining, reason))
	p.issue(w, OpStop, now, fx)
}

// drainAllIdle drains every idle worker (shutdown.stop_workers).
func (p *Pool) drainAllIdle(now time.Time, fx *Effects) {
	if p.cfg.DryRun || p.standby {
		return
	}
	for w := p.idle.head; w != nil; {
		next := w.next
		p.drain(w, now, fx, "idle")
		w = next
	}
}

// issue asks for a provider call on w.
func (p *Pool) issue(w *worker, k OpKind, now time.Time, fx *Effects) {
	if p.cfg.DryRun || w.op != OpNone {
		return
	}
	if p.standby {
		p.keep(w, k)
		return
	}
	w.op = k
	delete(p.retries, w.id)
	op := Op{Kind: k, Pool: p.cfg.Name, Worker: w.id, Tier: w.tier}
	if k == OpStop {
		op.Grace = p.cfg.StopGrace
		op.DrainTimeout = max(p.cfg.DrainTimeout, p.cfg.StopGrace)
	}
	fx.Ops = append(fx.Ops, op)
}

func (p *Pool) lifecycle(w *worker, s domain.Lifecycle, reason string) Lifecycle {
	return Lifecycle{Pool: p.cfg.Name, Worker: w.id, Provider: p.providerOf(w), State: s, Reason: reason}
}

func terminalLifecycle(ph domain.Phase) domain.Lifecycle {
	if ph == domain.PhaseExited {
		return domain.LifecycleStopped
	}
	return domain.LifecycleFailed
}
