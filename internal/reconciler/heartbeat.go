package reconciler

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// heartbeat is one worker's report of the jobs it runs.
type heartbeat struct {
	pool   domain.PoolName
	worker domain.WorkerID
	jobs   int
}

// Heartbeat hands a worker heartbeat to the loop. Heartbeats come again
// every few seconds, so one that finds the loop's queue full is dropped
// rather than blocking the bus client.
func (r *Reconciler) Heartbeat(pool domain.PoolName, worker domain.WorkerID, jobs int) {
	select {
	case r.heartbeats <- heartbeat{pool: pool, worker: worker, jobs: jobs}:
	default:
	}
}

func (r *Reconciler) heartbeat(hb heartbeat) {
	res, reason := r.eng.Heartbeat(hb.pool, hb.worker, hb.jobs, r.now())
	r.m.Events.WithLabelValues(domain.TypeWorkerHeartbeat, res.String()).Inc()
	if reason != "" {
		r.m.EventsDropped.WithLabelValues(reason).Inc()
		r.dlog.Info().Str("reason", reason).Str("pool", string(hb.pool)).Str("worker_id", string(hb.worker)).Msg("worker heartbeat ignored")
	}
}

// reported applies a worker's report read from an input's stream (Hodei's
// WorkerHeartbeat): believed from the time it was made, and counted under
// its input's type.
func (r *Reconciler) reported(d domain.Delivery, now time.Time) {
	if r.eng.Replayed(d.Seq) {
		return
	}
	hb := d.Heartbeat
	res, reason := r.eng.HeartbeatAt(hb.Pool, hb.Worker, len(hb.Jobs), hb.Time, now)
	r.events.inc(d.Type, res)
	if reason != "" {
		r.m.EventsDropped.WithLabelValues(reason).Inc()
		r.dlog.Info().Str("reason", reason).Str("pool", string(hb.Pool)).Str("worker_id", string(hb.Worker)).Msg("worker heartbeat ignored")
	}
}
