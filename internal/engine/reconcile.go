package engine

import (
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// reconcile decides the pool's size, plans the steps towards it, publishes
// the decision and carries the plan out: time out workers that never got
// ready, create, drain idle workers, retry failed stops and deletes.
func (p *Pool) reconcile(now time.Time, fx *Effects) {
	p.dirty = false
	p.nextWake = time.Time{}
	st := p.State()
	d := p.budget.capDecision(p, st, p.decide(st, now))
	plan := p.plan(st, d, now)
	p.publishDecision(st, d, plan, fx)
	if p.cfg.DryRun {
		return
	}
	p.timeOut(plan.TimedOut, now, fx)
	created := p.create(plan.Create, d.Reason, now, fx)
	p.budget.took(p.cfg.Cost, created)
	stopped := p.drainIdle(plan.Stop, now, fx)
	stopped += p.cancelBooting(plan.Cancel, plan.CancelReason, now, fx)
	p.hist.Scaled(created, stopped, p.cfg.Settings, now)
	p.retryFailedCalls(now, fx)
	p.wake(plan.NextWake)
	if len(plan.TimedOut) > 0 {
		p.dirty = true // re-plan with the backoff the timeouts caused
	}
}

// decide runs the policy and remembers its decision.
func (p *Pool) decide(st policy.State, now time.Time) policy.Decision {
	d := policy.Decide(st, p.cfg.Settings, now)
	if p.removing {
		d.Reason = removedReason
	}
	p.hist.Remember(d, p.cfg.Settings, now)
	p.wake(d.RecheckAt)
	p.decision, p.decidedAt = d, now
	return d
}

// plan works out the steps towards d, given the workers and what holds
// creates back.
func (p *Pool) plan(st policy.State, d policy.Decision, now time.Time) policy.Plan {
	until, unavailable := p.createBlock()
	plan := policy.MakePlan(st, p.cfg.Settings, d, policy.Supply{
		IdleOldestFirst:         p.idleCandidates(),
		ProvisioningOldestFirst: p.provisioning.candidates(),
		CancellableNewestFirst:  p.cancellable(now),
		CreateBlockedUntil:      until,
		Unavailable:             unavailable,
	}, now)
	p.blocked = plan.Blocked
	p.decision = d // as capped by a budget
	return plan
}

// publishDecision emits the decision event when the desired count changed
// (or was never published).
func (p *Pool) publishDecision(st policy.State, d policy.Decision, plan policy.Plan, fx *Effects) {
	if p.published && p.lastPublished == d.Desired {
		return
	}
	p.published, p.lastPublished = true, d.Desired
	reason := d.Reason
	if len(plan.Cancel) > 0 && !p.cfg.DryRun {
		reason += fmt.Sprintf("; stopping %d booting worker(s): %s", len(plan.Cancel), strings.TrimPrefix(plan.CancelReason, "stopped while booting: "))
	}
	fx.Decisions = append(fx.Decisions, Decision{Direction: p.direction(st, d, plan), Data: domain.DecisionData{
		Pool: string(p.cfg.Name), Current: st.Current(), Desired: d.Desired,
		Pending: st.Pending, Running: st.Running, Idle: st.Idle, Busy: st.Busy,
		Reason: reason, DryRun: p.cfg.DryRun, Extensions: p.cause,
	}})
	p.cause = nil
}

// direction is up, down or none: what the plan does, or in dry-run mode
// (where nothing is carried out) what the decision would do.
func (p *Pool) direction(st policy.State, d policy.Decision, plan policy.Plan) string {
	switch {
	case p.cfg.DryRun && d.Desired > st.Current():
		return "up"
	case p.cfg.DryRun && d.Desired < st.Current():
		return "down"
	case p.cfg.DryRun:
		return "none"
	case plan.Create > 0:
		return "up"
	case len(plan.Stop) > 0, len(plan.Cancel) > 0:
		return "down"
	}
	return "none"
}

// timeOut fails the workers not ready within provision_timeout and
// deletes them; their replacements come from the next plan.
func (p *Pool) timeOut(ids []domain.WorkerID, now time.Time, fx *Effects) {
	for _, id := range ids {
		w := p.workers[id]
		if w == nil || w.state != domain.StateProvisioning {
			continue
		}
		p.failure(w, now)
		p.kill(w, now)
		fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleFailed, p.timeoutReason(w)))
		w.op = OpNone // abandon a create still in flight: delete wins
		p.issue(w, OpDelete, now, fx)
	}
}

// timeoutReason quotes the provider's last word on a worker that timed out.
func (p *Pool) timeoutReason(w *worker) string {
	reason := fmt.Sprintf("not ready within provision_timeout %s", p.cfg.Settings.ProvisionTimeout)
	if w.phase != "" {
		reason += " (provider phase " + string(w.phase)
		if w.reason != "" {
			reason += ": " + w.reason
		}
		reason += ")"
	}
	return reason
}

// create requests n new workers, each covering the oldest queued jobs it
// will serve (for reaction_seconds), each on the first tier with room; it
// says how many it requested.
func (p *Pool) create(n int, reason string, now time.Time, fx *Effects) int {
	var held []int
	if p.tiered() && n > 0 {
		held = p.held()
	}
	for i := range n {
		tier, ok := p.tierFor(held)
		if !ok {
			p.blocked = "every tier is full or its provider unavailable"
			return i
		}
		if held != nil {
			held[tier]++
		}
		w := &worker{id: domain.NewWorkerID(), seenAt: now, tier: tier}
		p.workers[w.id] = w
		p.setState(w, domain.StateProvisioning, now)
		fx.Lifecycle = append(fx.Lifecycle, p.lifecycle(w, domain.LifecycleProvisioning, reason))
		p.issue(w, OpCreate, now, fx)
		fx.Ops[len(fx.Ops)-1].Covers = p.takeUncovered()
	}
	return n
}

// drainIdle drains the planned workers that are still idle with no job,
// and says how many.
func (p *Pool) drainIdle(ids []domain.WorkerID, now time.Time, fx *Effects) int {
	stopped := 0
	for _, id := range ids {
		if w := p.workers[id]; w != nil && w.state == domain.StateIdle && !p.busyNow(w, now) {
			p.drain(w, now, fx, "idle")
			stopped++
		}
	}
	return stopped
}

// cancelBooting drains the planned workers that are still booting with no
// job and no provider call in flight, and says how many. A create that
// has returned leaves a worker the provider stops like an idle one.
func (p *Pool) cancelBooting(ids []domain.WorkerID, reason string, now time.Time, fx *Effects) int {
	stopped := 0
	for _, id := range ids {
		if w := p.workers[id]; w != nil && p.mayCancel(w, now) {
			p.drain(w, now, fx, reason)
			stopped++
		}
	}
	return stopped
}

// mayCancel reports whether a booting worker may be stopped before it is
// ready: no job (an adopted one may have one in the ledger), none by its
// heartbeat, and no provider call in flight (a create still running would
// leave the stop with nothing to act on; the next plan after it returns
// may choose the worker).
func (p *Pool) mayCancel(w *worker, now time.Time) bool {
	return w.state == domain.StateProvisioning && w.op == OpNone && !p.busyNow(w, now)
}

// cancellable yields the booting workers the plan may stop before they
// are ready, newest first: for a tiered pool the last tier's first.
func (p *Pool) cancellable(now time.Time) iter.Seq[policy.Candidate] {
	return func(yield func(policy.Candidate) bool) {
		tiers := 1
		if p.tiered() {
			tiers = len(p.tiers)
		}
		for t := tiers - 1; t >= 0; t-- {
			for w := p.provisioning.tail; w != nil; w = w.prev {
				if (!p.tiered() || w.tier == t) && p.mayCancel(w, now) && !yield(policy.Candidate{ID: w.id, Since: w.since}) {
					return
				}
			}
		}
	}
}

// retryFailedCalls issues again the stops and deletes that failed, once
// their time has come and while the provider is up.
func (p *Pool) retryFailedCalls(now time.Time, fx *Effects) {
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
}
