package reconciler

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// The drain handshake. A stop sends SIGTERM and then waits while the
// worker is busy (its runs in the ledger, or its own heartbeat) up to the
// pool's drain_timeout; the kill after stop_grace_period applies only to
// a worker that is idle. The stop's goroutine cannot read the engine, so
// the loop keeps a busy flag per worker being stopped, refreshed after
// every pass (refreshDrains), which the provider's Drain polls.

// drain is one stop in flight.
type drain struct {
	pool domain.PoolName
	busy atomic.Bool
}

// beginDrain registers the stop of o's worker (on the loop's goroutine).
func (r *Reconciler) beginDrain(o engine.Op) *drain {
	d := &drain{pool: o.Pool}
	if p := r.eng.Pool(o.Pool); p != nil {
		d.busy.Store(p.WorkerBusy(o.Worker, r.now()))
	}
	r.drains[o.Worker] = d
	return d
}

// refreshDrains updates the busy flag of every stop in flight.
func (r *Reconciler) refreshDrains(now time.Time) {
	for id, d := range r.drains {
		if p := r.eng.Pool(d.pool); p != nil {
			d.busy.Store(p.WorkerBusy(id, now))
		}
	}
}

// stopWorker runs the stop: the provider's Drain when it has one, else a
// Stop whose grace is drain_timeout if the worker is busy as it begins.
func stopWorker(ctx context.Context, prov providers.Provider, o engine.Op, d *drain, poll time.Duration) (killedBusy bool, err error) {
	if dr, ok := prov.(providers.Drainer); ok {
		return dr.Drain(ctx, o.Worker, providers.DrainSpec{Grace: o.Grace, Timeout: max(o.DrainTimeout, o.Grace), Busy: d.busy.Load, Poll: poll})
	}
	grace := o.Grace
	if d.busy.Load() {
		grace = max(o.DrainTimeout, grace)
	}
	start := time.Now()
	err = prov.Stop(ctx, o.Worker, grace)
	return err == nil && d.busy.Load() && time.Since(start) >= grace, err
}

// drainEnded records a stop's end (on the loop's goroutine): a forced
// kill of a busy worker is counted and logged.
func (r *Reconciler) drainEnded(res opResult) {
	delete(r.drains, res.op.Worker)
	if res.killedBusy {
		r.m.BusyKilled.WithLabelValues(string(res.op.Pool)).Inc()
		r.log.Error().Str("pool", string(res.op.Pool)).Str("worker_id", string(res.op.Worker)).
			Stringer("drain_timeout", max(res.op.DrainTimeout, res.op.Grace)).
			Msg("worker killed while it still ran a job: drain_timeout passed")
	}
}
