package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// applyJob folds one job event (at is its stream time) into the ledger
// and moves the workers it names between idle and busy. The reason is set
// when the result is Ignored.
func (p *Pool) applyJob(ev domain.JobEvent, at, now time.Time, fx *Effects) (Result, string) {
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
		if ch.Result == Applied && ch.WasPending {
			p.hist.Waited(ch.Waited, p.cfg.Settings) // the wait targets' correction
			if p.folded {
				// Waits folded from the retained stream were observed by
				// the daemon that saw them live; only live ones count here.
				fx.Waits = append(fx.Waits, Observation{Pool: p.cfg.Name, Provider: p.cfg.Provider, Value: max(ch.Waited, 0)})
			}
		}
	case domain.JobFinished:
		ch = p.ledger.Finished(ev.JobID, ev.WorkerID, at)
	}
	if ch.Result != Applied {
		return ch.Result, ""
	}
	p.dirty = true
	if len(ev.Extensions) > 0 {
		p.cause = ev.Extensions
	}
	if ch.Rerun {
		fx.Reruns = append(fx.Reruns, RerunJob{Pool: p.cfg.Name, Job: ev.JobID, Worker: ch.To})
	}
	if ch.From != "" {
		p.jobLeft(ch.From, now, fx)
	}
	reason := ""
	if ch.To != "" && !p.jobArrived(ch.To, now, fx) {
		reason = domain.ReasonUnknownWorker
	}
	if ch.WasPending || ev.Kind == domain.JobFinished {
		p.trimUncovered()
	}
	if reason != "" {
		return Ignored, reason
	}
	return Applied, ""
}

// expire drops the jobs first seen before cutoff whose finished never came.
func (p *Pool) expire(cutoff, now time.Time, fx *Effects) {
	for _, x := range p.ledger.Expire(cutoff) {
		if x.Worker != "" {
			p.jobLeft(x.Worker, now, fx)
		}
		p.dirty = true
		fx.Expired = append(fx.Expired, ExpiredJob{Pool: p.cfg.Name, Job: x.ID, Worker: x.Worker, Age: now.Sub(x.Since)})
	}
	p.trimUncovered()
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
	if w.jobs == 0 && w.state == domain.StateBusy && !p.reportsBusy(w, now) {
		p.setState(w, domain.StateIdle, now)
		if retire, why := policy.Retire(p.cfg.Settings, w.jobsRun); retire && !p.cfg.DryRun {
			p.drain(w, now, fx, why)
		}
	}
}

// trimUncovered keeps the reaction FIFO no longer than the demand it
// stands for: jobs served by existing capacity leave it, oldest first.
func (p *Pool) trimUncovered() {
	if extra := len(p.uncovered) - (p.ledger.Pending() + p.orphanRunning); extra > 0 {
		p.uncovered = p.uncovered[extra:]
	}
}

// takeUncovered hands the oldest uncovered jobs, as many as one worker
// serves, to a create.
func (p *Pool) takeUncovered() []time.Time {
	n := min(max(p.cfg.Settings.JobsPerWorker, 1), len(p.uncovered))
	covers := p.uncovered[:n:n]
	p.uncovered = p.uncovered[n:]
	return covers
}
