package engine

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Pool is one pool's state inside the engine.
type Pool struct {
	cfg     PoolConfig
	ledger  *Ledger
	workers map[domain.WorkerID]*worker
	count   [len(domain.WorkerStates)]int

	idle, provisioning workerList
	// orphanRunning counts running jobs whose worker is not alive here
	// (dead, unknown, or someone else's): they are demand again.
	orphanRunning int
	// retries holds workers whose stop or delete failed.
	retries map[domain.WorkerID]struct{}
	// removed remembers workers this pool stopped, deleted or saw go, for
	// removedMemory, so that a late sighting of one is not taken for a new
	// worker to adopt. removedOrder holds them oldest first, for pruning.
	removed      map[domain.WorkerID]time.Time
	removedOrder []removal

	listed     bool // a first provider listing has been applied
	providerUp bool
	downReason string

	bo           *backoff.ExponentialBackOff
	failures     int
	blockedUntil time.Time

	dirty    bool
	nextWake time.Time

	decision      policy.Decision
	decidedAt     time.Time
	published     bool
	lastPublished int
	blocked       string

	// uncovered holds the event times of queued jobs not yet served by a
	// provision request, oldest first (for reaction_seconds).
	uncovered []time.Time

	// hist is what the policy remembers between decisions (recent
	// recommendations, last scale times, rate-limit windows, the arrival
	// and provisioning averages). The engine records into it; Decide only
	// reads it, through State.
	hist policy.History
}

func newPool(c PoolConfig) *Pool {
	return &Pool{
		cfg:        c,
		ledger:     NewLedger(),
		workers:    map[domain.WorkerID]*worker{},
		retries:    map[domain.WorkerID]struct{}{},
		removed:    map[domain.WorkerID]time.Time{},
		providerUp: true,
		bo:         newBackoff(c),
	}
}

// Name is the pool's name.
func (p *Pool) Name() domain.PoolName { return p.cfg.Name }

// Config is the pool's engine configuration.
func (p *Pool) Config() PoolConfig { return p.cfg }

// Ledger exposes the pool's ledger (read-only use).
func (p *Pool) Ledger() *Ledger { return p.ledger }

// State is the pool's demand and supply as the policy sees it.
func (p *Pool) State() policy.State {
	return policy.State{
		Pending:      p.ledger.Pending() + p.orphanRunning,
		Running:      p.ledger.Running() - p.orphanRunning,
		Provisioning: p.count[stateIndex(domain.StateProvisioning)],
		Idle:         p.count[stateIndex(domain.StateIdle)],
		Busy:         p.count[stateIndex(domain.StateBusy)],
		Draining:     p.count[stateIndex(domain.StateDraining)],
		Failed:       p.count[stateIndex(domain.StateFailed)],
		History:      p.hist,
	}
}

// Count is the number of workers in a state.
func (p *Pool) Count(s domain.WorkerState) int { return p.count[stateIndex(s)] }

// LastDecision is the pool's latest decision and when it was made.
func (p *Pool) LastDecision() (policy.Decision, time.Time) { return p.decision, p.decidedAt }

// NextWake is when the pool must be reconciled again with no new input
// (an idle timeout, a provisioning deadline, a cooldown ending); zero if
// never. Drivers other than the Reconciler (the simulator) schedule by it.
func (p *Pool) NextWake() time.Time { return p.nextWake }

// Blocked says why creates are held back, or "".
func (p *Pool) Blocked() string { return p.blocked }

// ProviderUp reports the provider health last set.
func (p *Pool) ProviderUp() (bool, string) { return p.providerUp, p.downReason }

// Workers calls fn for every worker with its state (order unspecified).
func (p *Pool) Workers(fn func(id domain.WorkerID, s domain.WorkerState, jobs int)) {
	for id, w := range p.workers {
		fn(id, w.state, w.jobs)
	}
}

// WorkerState returns a worker's state, if known.
func (p *Pool) WorkerState(id domain.WorkerID) (domain.WorkerState, bool) {
	w, ok := p.workers[id]
	if !ok {
		return "", false
	}
	return w.state, true
}

func stateIndex(s domain.WorkerState) int {
	for i, x := range domain.WorkerStates {
		if x == s {
			return i
		}
	}
	return 0
}

// setState moves a worker between states, keeping counts and lists right.
func (p *Pool) setState(w *worker, s domain.WorkerState, now time.Time) {
	if w.state == s {
		return
	}
	if w.state != "" {
		p.count[stateIndex(w.state)]--
	}
	switch w.state {
	case domain.StateIdle:
		p.idle.remove(w)
	case domain.StateProvisioning:
		p.provisioning.remove(w)
	}
	w.state = s
	p.count[stateIndex(s)]++
	switch s {
	case domain.StateIdle:
		w.since = now
		p.idle.push(w)
	case domain.StateProvisioning:
		w.since = now
		p.provisioning.push(w)
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
	p.removed[w.id] = now
	p.removedOrder = append(p.removedOrder, removal{w.id, now})
	p.count[stateIndex(w.state)]--
	p.idle.remove(w)
	p.provisioning.remove(w)
	delete(p.workers, w.id)
	delete(p.retries, w.id)
	p.dirty = true
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

// jobArrived puts a job on worker id. It returns false if the worker is
// not alive here, in which case the job stays demand.
func (p *Pool) jobArrived(id domain.WorkerID, now time.Time, fx *Effects) bool {
	w := p.workers[id]
	if w == nil || !w.alive() {
		p.orphanRunning++
		return false
	}
	w.jobs++
	w.jobsRun++
	p.resetBackoff() // a worker that takes jobs is proof the pool works
	switch w.state {
	case domain.StateProvisioning:
		// It runs a job, so it is ready whatever the provider said last.
		p.becomeReady(w, now, fx)
	case domain.StateIdle:
		p.setState(w, domain.StateBusy, now)
	}
	return true
}

// jobLeft takes a job off worker id. A worker that has run
// max_jobs_per_worker jobs is retired as it becomes idle.
func (p *Pool) jobLeft(id domain.WorkerID, now time.Time, fx *Effects) {
	w := p.workers[id]
	if w == nil || !w.alive() {
		p.orphanRunning--
		return
	}
	w.jobs--
	if w.jobs == 0 && w.state == domain.StateBusy {
		p.setState(w, domain.StateIdle, now)
		if retire, why := policy.Retire(p.cfg.Settings, w.jobsRun); retire && !p.cfg.DryRun {
			p.drain(w, now, fx, why)
		}
	}
}

func (p *Pool) becomeReady(w *worker, now time.Time, fx *Effects) {
	if !w.adopted {
		fx.Ready = append(fx.Ready, Observation{Pool: p.cfg.Name, Provider: p.cfg.Provider, Value: now.Sub(w.since)})
		p.hist.Provisioned(now.Sub(w.since))
	}
	w.readyAt = now
	fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleReady, ""))
	if w.jobs > 0 {
		p.setState(w, domain.StateBusy, now)
	} else {
		p.setState(w, domain.StateIdle, now)
	}
}

func (p *Pool) lifecycle(w *worker, s domain.Lifecycle, reason string) Lifecycle {
	return Lifecycle{Pool: p.cfg.Name, Worker: w.id, Provider: p.cfg.Provider, State: s, Reason: reason}
}

// failure records a provider or worker failure and backs creates off,
// unless the worker had been running long enough not to be a crash loop.
func (p *Pool) failure(w *worker, now time.Time) {
	if w != nil && !w.readyAt.IsZero() && now.Sub(w.readyAt) >= stableAfter {
		p.resetBackoff()
	}
	p.failures++
	p.blockedUntil = now.Add(p.bo.NextBackOff())
	p.dirty = true
}

func (p *Pool) resetBackoff() {
	if p.failures == 0 {
		return
	}
	p.failures = 0
	p.blockedUntil = time.Time{}
	p.bo.Reset()
}

func (p *Pool) nextRetry() time.Duration {
	return min(p.cfg.RetryInitial*4, p.cfg.RetryMax)
}

// issue asks for a provider call on w.
func (p *Pool) issue(w *worker, k OpKind, now time.Time, fx *Effects) {
	if p.cfg.DryRun || w.op != OpNone {
		return
	}
	w.op = k
	delete(p.retries, w.id)
	op := Op{Kind: k, Pool: p.cfg.Name, Worker: w.id}
	if k == OpStop {
		op.Grace = p.cfg.StopGrace
	}
	fx.Ops = append(fx.Ops, op)
}

func (p *Pool) drain(w *worker, now time.Time, fx *Effects, reason string) {
	p.setState(w, domain.StateDraining, now)
	fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleDraining, reason))
	p.issue(w, OpStop, now, fx)
}

// trimUncovered keeps the reaction FIFO no longer than the demand it
// stands for: jobs served by existing capacity leave it, oldest first.
func (p *Pool) trimUncovered() {
	if extra := len(p.uncovered) - (p.ledger.Pending() + p.orphanRunning); extra > 0 {
		p.uncovered = p.uncovered[extra:]
	}
}

// createBlockedUntil merges the backoff and the provider's health.
func (p *Pool) createBlockedUntil() (time.Time, string) {
	if !p.providerUp {
		return farFuture, "provider " + p.cfg.Provider + " unavailable: " + p.downReason
	}
	if !p.listed {
		return farFuture, "waiting for the first provider listing"
	}
	return p.blockedUntil, ""
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (p *Pool) reconcile(now time.Time, fx *Effects) {
	p.dirty = false
	p.nextWake = time.Time{}
	st := p.State()
	d := policy.Decide(st, p.cfg.Settings, now)
	p.decision, p.decidedAt = d, now
	p.hist.Remember(d, p.cfg.Settings, now)
	p.wake(d.RecheckAt)

	blockedUntil, why := p.createBlockedUntil()
	plan := policy.MakePlan(st, p.cfg.Settings, d, policy.Supply{
		IdleOldestFirst:         p.idle.candidates(),
		ProvisioningOldestFirst: p.provisioning.candidates(),
		CreateBlockedUntil:      blockedUntil,
	}, now)
	p.blocked = plan.Blocked
	if why != "" && plan.Blocked != "" {
		p.blocked = why
	}

	direction := "none"
	switch {
	case p.cfg.DryRun && d.Desired != st.Current():
		// Nothing is carried out: the direction is what the decision
		// would do.
		direction = "down"
		if d.Desired > st.Current() {
			direction = "up"
		}
	case plan.Create > 0:
		direction = "up"
	case len(plan.Stop) > 0:
		direction = "down"
	}
	if !p.published || p.lastPublished != d.Desired {
		p.published, p.lastPublished = true, d.Desired
		fx.Decisions = append(fx.Decisions, Decision{Direction: direction, Data: domain.DecisionData{
			Pool: string(p.cfg.Name), Current: st.Current(), Desired: d.Desired,
			Pending: st.Pending, Running: st.Running, Idle: st.Idle, Busy: st.Busy,
			Reason: d.Reason, DryRun: p.cfg.DryRun,
		}})
	}
	if p.cfg.DryRun {
		return
	}

	for _, id := range plan.TimedOut {
		w := p.workers[id]
		if w == nil || w.state != domain.StateProvisioning {
			continue
		}
		reason := fmt.Sprintf("not ready within provision_timeout %s", p.cfg.Settings.ProvisionTimeout)
		if w.phase != "" {
			reason += " (provider phase " + string(w.phase)
			if w.reason != "" {
				reason += ": " + w.reason
			}
			reason += ")"
		}
		p.failure(w, now)
		p.kill(w, now)
		fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, reason))
		w.op = OpNone // abandon a create still in flight: delete wins
		p.issue(w, OpDelete, now, fx)
	}
	stopped := 0
	for range plan.Create {
		w := &worker{id: domain.NewWorkerID(), seenAt: now}
		p.workers[w.id] = w
		p.setState(w, domain.StateProvisioning, now)
		fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleProvisioning, d.Reason))
		p.issue(w, OpCreate, now, fx)
		n := min(max(p.cfg.Settings.JobsPerWorker, 1), len(p.uncovered))
		fx.Ops[len(fx.Ops)-1].Covers = p.uncovered[:n:n]
		p.uncovered = p.uncovered[n:]
	}
	for _, id := range plan.Stop {
		if w := p.workers[id]; w != nil && w.state == domain.StateIdle && w.jobs == 0 {
			p.drain(w, now, fx, "idle")
			stopped++
		}
	}
	p.hist.Scaled(plan.Create, stopped, p.cfg.Settings, now)
	// Retry stops and deletes that failed, once their time has come.
	for id := range p.retries {
		w := p.workers[id]
		if w == nil || w.op != OpNone {
			delete(p.retries, id)
			continue
		}
		if w.retryAt.After(now) {
			p.wake(w.retryAt)
			continue
		}
		if !p.providerUp {
			continue
		}
		if w.state == domain.StateDraining {
			p.issue(w, OpStop, now, fx)
		} else {
			p.issue(w, OpDelete, now, fx)
		}
	}
	p.wake(plan.NextWake)
	if len(plan.TimedOut) > 0 {
		p.dirty = true // re-plan with the backoff the timeouts caused
	}
}

func (p *Pool) wake(t time.Time) {
	if t.IsZero() || t.Equal(farFuture) {
		return
	}
	if p.nextWake.IsZero() || t.Before(p.nextWake) {
		p.nextWake = t
	}
}
