package engine

import "github.com/hodei/hodei-autoscaler/internal/domain"

// crossPool refuses a started or finished whose pool contradicts what the
// engine knows: it names a worker of another pool (a forged or misrouted
// event would otherwise make that worker busy with a job it does not run,
// or idle while it runs one), or a job this pool has never seen that
// another pool holds. It returns the reason, or "".
func (e *Engine) crossPool(p *Pool, ev domain.JobEvent) string {
	if ev.Kind == domain.JobQueued || len(e.order) < 2 {
		return ""
	}
	if w := ev.WorkerID; w != "" && p.workers[w] == nil {
		for _, o := range e.order {
			if o != p && o.workers[w] != nil {
				return domain.ReasonWorkerPoolMismatch
			}
		}
	}
	if !p.ledger.Knows(ev.JobID) {
		for _, o := range e.order {
			if o != p && o.ledger.Knows(ev.JobID) {
				return domain.ReasonJobPoolMismatch
			}
		}
	}
	return ""
}
