package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
)

// Gate says whether this replica may act on a pool now, and until when:
// internal/lease's Fence, whose answer turns to no by itself when the
// lease could have expired. With a Gate, the Reconciler calls the
// provider (Create, Stop, Delete) and publishes decision and lifecycle
// events for a pool only while it says yes; every pool still folds its
// job events and follows its provider's workers (a standby pool, see
// engine.SetActive), so a takeover starts caught up. A provider call
// in flight when the gate closes is cut there (fenceBound): its context
// is cancelled, and its result (the error) is still reported to the
// engine.
type Gate interface {
	Until(p domain.PoolName, now time.Time) (time.Time, bool)
}

// ErrFenced is the result of a provider call the Reconciler did not make:
// between the plan and the call, the gate closed.
var ErrFenced = errors.New("not made: this replica no longer holds the pool's lease")

// errFenceClosed is the cause of a provider call's context that the
// fence ended (fenceBound).
var errFenceClosed = errors.New("the lease fence closed while the call was in flight: this replica's lease could have expired")

// fenceBound bounds a provider call by the pool's fence: the returned
// context is cancelled (cause errFenceClosed) the moment the gate stops
// saying yes, so no call of this replica is still in flight when another
// replica may have taken the pool (the timing argument in
// docs/operations.md). It follows renewals: at the fence's time it asks
// the gate again, and a renewed lease moves the bound on, so a long call
// (an image pull, a drain) is cut only when the lease could really have
// expired. stop releases the timer; call it when the call returns.
func (r *Reconciler) fenceBound(ctx context.Context, p domain.PoolName) (fctx context.Context, stop func()) {
	if r.opt.Gate == nil {
		return ctx, func() {}
	}
	fctx, cancel := context.WithCancelCause(ctx)
	var (
		mu      sync.Mutex
		timer   *time.Timer
		stopped bool
	)
	var arm func()
	arm = func() {
		until, ok := r.opt.Gate.Until(p, r.now())
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if !ok {
			cancel(errFenceClosed)
			return
		}
		timer = time.AfterFunc(until.Sub(r.now()), arm)
	}
	arm()
	return fctx, func() {
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(nil)
	}
}

// fencedErr names the fence in the error of a call it cut short.
func fencedErr(fctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(fctx), errFenceClosed) {
		return fmt.Errorf("cut short: %w: %w", errFenceClosed, err)
	}
	return err
}

// mayAct reports whether the gate lets this replica act on p at now.
func (r *Reconciler) mayAct(p domain.PoolName, now time.Time) bool {
	if r.opt.Gate == nil {
		return true
	}
	_, ok := r.opt.Gate.Until(p, now)
	return ok
}

// syncGate makes each pool active while the gate is open for it and
// standby otherwise, and returns when the first open gate closes (zero:
// none open, or no gate).
func (r *Reconciler) syncGate(now time.Time) time.Time {
	if r.opt.Gate == nil {
		return time.Time{}
	}
	var next time.Time
	for _, p := range r.eng.Pools() {
		name := p.Name()
		until, ok := r.opt.Gate.Until(name, now)
		if ok && (next.IsZero() || until.Before(next)) {
			next = until
		}
		if !r.eng.SetActive(name, ok, now) {
			continue
		}
		if ok {
			r.log.Info().Str("pool", string(name)).Msg("acting on the pool: this replica holds its lease")
		} else {
			r.log.Info().Str("pool", string(name)).Msg("standing by for the pool: this replica does not hold its lease (it still follows jobs and workers)")
		}
		if run := r.pools[name]; run != nil {
			metrics.SetBool(run.gauges.held, ok)
			run.publish(p)
		}
	}
	return next
}

// gateChanged is the channel that says the gate may have changed (nil,
// which blocks, without one).
func (r *Reconciler) gateChanged() <-chan struct{} { return r.opt.GateChanged }
