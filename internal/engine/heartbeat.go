package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Worker heartbeats: the worker's own word on what it runs
// (docs/events.md). A worker that reports a running job is busy whatever
// the ledger says (a forged or misrouted finished cannot make it idle, so
// it is never chosen for scale-down); its report is believed for the
// pool's heartbeat timeout only, after which the ledger alone decides
// again. A heartbeat reporting no job does not make a worker idle that
// the ledger has busy: either word that it runs a job keeps it busy.

// Heartbeat records worker id's report that it runs jobs jobs. It returns
// Ignored with a reason for a worker this daemon does not run in pool.
func (e *Engine) Heartbeat(pool domain.PoolName, id domain.WorkerID, jobs int, now time.Time) (Result, string) {
	return e.HeartbeatAt(pool, id, jobs, now, now)
}

// HeartbeatAt records a report made at at (no later than now), read from
// a stream rather than heard live: it is believed for the heartbeat
// timeout from at, and one already older than that is Ignored (old news,
// not invalid: a fold of the stream meets many).
func (e *Engine) HeartbeatAt(pool domain.PoolName, id domain.WorkerID, jobs int, at, now time.Time) (Result, string) {
	if at.IsZero() || at.After(now) {
		at = now
	}
	p := e.pools[pool]
	if p == nil {
		return Ignored, domain.ReasonUnknownPool
	}
	w := p.workers[id]
	if w == nil || !w.alive() {
		for _, o := range e.order {
			if o != p && o.workers[id] != nil {
				return Ignored, domain.ReasonWorkerPoolMismatch
			}
		}
		return Ignored, domain.ReasonUnknownWorker
	}
	if p.cfg.Heartbeat > 0 && now.Sub(at) >= p.cfg.Heartbeat {
		return Ignored, ""
	}
	if at.Before(w.hbAt) {
		return Ignored, "" // an older word than the one believed
	}
	w.hbAt, w.hbJobs = at, max(jobs, 0)
	p.refreshBusy(w, now)
	if p.cfg.Heartbeat > 0 {
		p.wake(at.Add(p.cfg.Heartbeat))
	}
	return Applied, ""
}

// reportsBusy reports whether w's last heartbeat, still believed, said it
// runs a job.
func (p *Pool) reportsBusy(w *worker, now time.Time) bool {
	return p.cfg.Heartbeat > 0 && w.hbJobs > 0 && !w.hbAt.IsZero() && now.Sub(w.hbAt) < p.cfg.Heartbeat
}

// busyNow reports whether w runs a job by the ledger or by its own word.
func (p *Pool) busyNow(w *worker, now time.Time) bool {
	return w.jobs > 0 || p.reportsBusy(w, now)
}

// WorkerBusy reports whether worker id runs a job by the ledger or its
// own heartbeat: what a drain waits for (the reconciler asks it for the
// workers it is stopping).
func (p *Pool) WorkerBusy(id domain.WorkerID, now time.Time) bool {
	w := p.workers[id]
	return w != nil && w.alive() && p.busyNow(w, now)
}

// refreshBusy moves an idle worker that runs a job to busy, and a busy
// one that runs none to idle.
func (p *Pool) refreshBusy(w *worker, now time.Time) {
	switch busy := p.busyNow(w, now); {
	case w.state == domain.StateIdle && busy:
		p.setState(w, domain.StateBusy, now)
	case w.state == domain.StateBusy && !busy:
		p.setState(w, domain.StateIdle, now)
	}
}

// expireHeartbeats stops believing heartbeats older than the timeout.
func (p *Pool) expireHeartbeats(now time.Time) {
	if p.cfg.Heartbeat <= 0 || p.count[stateIndex(domain.StateBusy)] == 0 {
		return
	}
	for _, w := range p.workers {
		if w.hbJobs > 0 && w.state == domain.StateBusy && w.jobs == 0 && !p.reportsBusy(w, now) {
			p.refreshBusy(w, now)
		}
	}
}
