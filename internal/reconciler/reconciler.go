package reconciler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Publisher sends lifecycle and decision events; it must not block.
type Publisher interface {
	Worker(now time.Time, state domain.Lifecycle, data domain.WorkerEventData)
	Decision(now time.Time, data domain.DecisionData)
}

// Options configure the Reconciler.
type Options struct {
	Interval         time.Duration // periodic tick
	ResyncInterval   time.Duration // full provider listing
	ProviderTimeout  time.Duration // per provider call
	BreakerFailures  int
	BreakerCooldown  time.Duration
	MaxConcurrentOps int
	ShutdownTimeout  time.Duration
	StopWorkers      bool // stop idle workers on shutdown
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Reconciler is the daemon's scaling loop: one goroutine owns the Engine
// and feeds it job events, provider observations and operation results;
// provider calls run on their own goroutines, bounded, with timeouts, and
// report back through a channel.
type Reconciler struct {
	eng   *engine.Engine
	provs map[domain.PoolName]providers.Provider
	pub   Publisher
	m     *metrics.Metrics
	log   zerolog.Logger
	dlog  zerolog.Logger // sampled, for dropped events
	opt   Options
	now   func() time.Time

	deliveries chan domain.Delivery
	opDone     chan opResult
	observed   chan observation
	done       chan struct{}

	breakers map[domain.PoolName]*Breaker
	gauges   map[domain.PoolName]*poolGauges
	status   map[domain.PoolName]*atomic.Pointer[PoolStatus]
	caughtUp atomic.Bool

	sem     chan struct{}
	pending int // ops in flight, owned by the loop
}

type opResult struct {
	op     engine.Op
	worker domain.Worker
	err    error
}

// observation is a provider listing, a pushed change or a health change.
type observation struct {
	pool     domain.PoolName
	list     []domain.Worker
	listedAt time.Time
	isList   bool
	change   *domain.WorkerChange
	health   *bool
	reason   string
}

// New wires an engine to its providers (one per pool).
func New(eng *engine.Engine, provs map[domain.PoolName]providers.Provider, pub Publisher, m *metrics.Metrics, log zerolog.Logger, opt Options) *Reconciler {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Reconciler{
		eng: eng, provs: provs, pub: pub, m: m, log: log, opt: opt, now: opt.Now,
		dlog: log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second,
			NextSampler: &zerolog.BasicSampler{N: 1000}}),
		deliveries: make(chan domain.Delivery, 8192),
		opDone:     make(chan opResult, 256),
		observed:   make(chan observation, 256),
		done:       make(chan struct{}),
		breakers:   map[domain.PoolName]*Breaker{},
		gauges:     map[domain.PoolName]*poolGauges{},
		status:     map[domain.PoolName]*atomic.Pointer[PoolStatus]{},
		sem:        make(chan struct{}, max(opt.MaxConcurrentOps, 1)),
	}
	for _, p := range eng.Pools() {
		name, provider := p.Name(), p.Config().Provider
		b := &Breaker{Threshold: max(opt.BreakerFailures, 1), Cooldown: opt.BreakerCooldown}
		b.onChange = func(open bool, reason string) {
			up := !open
			r.send(observation{pool: name, health: &up, reason: reason})
		}
		r.breakers[name] = b
		r.gauges[name] = newPoolGauges(m, name, provider)
		r.status[name] = &atomic.Pointer[PoolStatus]{}
		r.status[name].Store(statusOf(p, nil))
	}
	return r
}

// Deliver hands one job stream delivery to the loop. It blocks while the
// loop is busy (back-pressure on the consumer) and returns false once the
// loop has stopped.
func (r *Reconciler) Deliver(d domain.Delivery) bool {
	select {
	case r.deliveries <- d:
		return true
	case <-r.done:
		return false
	}
}

// CaughtUp reports whether the retained job stream has been folded.
func (r *Reconciler) CaughtUp() bool { return r.caughtUp.Load() }

// ProviderHealth reports, per pool, whether its provider is reachable.
func (r *Reconciler) ProviderHealth() map[domain.PoolName]string {
	out := map[domain.PoolName]string{}
	for name, b := range r.breakers {
		if open, why := b.Open(); open {
			out[name] = why
		}
	}
	return out
}

func (r *Reconciler) send(o observation) {
	select {
	case r.observed <- o:
	case <-r.done:
	}
}

// Run owns the engine until ctx ends, then shuts down: no new work, in
// flight provider calls get ShutdownTimeout to finish, idle workers are
// stopped if StopWorkers is set.
func (r *Reconciler) Run(ctx context.Context) error {
	opCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	for _, p := range r.eng.Pools() {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			r.watchPool(watchCtx, p.Name())
		}()
	}
	defer func() {
		// done first: it unblocks every goroutine still trying to report.
		close(r.done)
		stopWatch()
		watchers.Wait()
	}()

	tick := time.NewTicker(r.opt.Interval)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	for {
		select {
		case d := <-r.deliveries:
			r.apply(d)
			for range 4096 { // fold what is already queued before deciding
				select {
				case d = <-r.deliveries:
					r.apply(d)
					continue
				default:
				}
				break
			}
		case res := <-r.opDone:
			r.finish(res)
		case o := <-r.observed:
			r.observe(o)
		case <-tick.C:
			r.eng.Tick(r.now())
		case <-wake.C:
		case <-ctx.Done():
			return r.shutdown(opCtx, abandon)
		}
		r.reconcile(opCtx)
		if next := r.nextWake(); !next.IsZero() {
			wake.Reset(max(next.Sub(r.now()), time.Millisecond))
		}
	}
}

func (r *Reconciler) apply(d domain.Delivery) {
	now := r.now()
	if d.Err != nil {
		reason := domain.ReasonOf(d.Err)
		r.m.Events.WithLabelValues(d.Type, engine.Invalid.String()).Inc()
		r.m.EventsDropped.WithLabelValues(reason).Inc()
		r.dlog.Warn().Str("reason", reason).Str("type", d.Type).Err(d.Err).Msg("invalid job event dropped")
	} else if !d.Marker {
		res, reason := r.eng.ApplyJob(d.Event, now)
		r.m.Events.WithLabelValues(d.Type, res.String()).Inc()
		if reason != "" {
			r.m.EventsDropped.WithLabelValues(reason).Inc()
			r.dlog.Info().Str("reason", reason).Str("pool", string(d.Event.Pool)).Str("job_id", string(d.Event.JobID)).
				Str("worker_id", string(d.Event.WorkerID)).Msg("job event ignored")
		}
	}
	if d.CaughtUp && !r.eng.IsCaughtUp() {
		r.eng.CaughtUp(now)
		r.caughtUp.Store(true)
		r.m.CaughtUp.Set(1)
		r.log.Info().Msg("job stream folded; reconciling")
	}
}

func (r *Reconciler) observe(o observation) {
	now := r.now()
	switch {
	case o.health != nil:
		r.eng.SetProviderUp(o.pool, *o.health, o.reason)
		metrics.SetBool(r.gauges[o.pool].up, *o.health)
		if *o.health {
			r.log.Info().Str("pool", string(o.pool)).Msg("provider reachable again; circuit closed")
		} else {
			r.log.Error().Str("pool", string(o.pool)).Str("error", o.reason).Msg("provider unreachable; circuit open, probing every breaker_cooldown")
		}
	case o.isList:
		r.eng.ObserveList(o.pool, o.list, o.listedAt, now)
	case o.change != nil:
		r.eng.ObserveChange(o.pool, *o.change, now)
	}
}

func (r *Reconciler) finish(res opResult) {
	r.pending--
	r.eng.OpDone(res.op.Pool, res.op.Kind, res.op.Worker, res.worker, res.err, r.now())
	if res.err != nil {
		r.log.Warn().Err(res.err).Str("pool", string(res.op.Pool)).Str("op", res.op.Kind.String()).
			Str("worker_id", string(res.op.Worker)).Msg("provider call failed")
	}
}

// reconcile runs the engine and carries out its effects.
func (r *Reconciler) reconcile(opCtx context.Context) {
	start := time.Now()
	now := r.now()
	r.eng.Reconcile(now)
	fx := r.eng.Take()
	if len(fx.Decisions) > 0 || len(fx.Ops) > 0 {
		r.m.ReconcileDuration.Observe(time.Since(start).Seconds())
	}
	r.effects(opCtx, fx, now)
}

func (r *Reconciler) effects(opCtx context.Context, fx engine.Effects, now time.Time) {
	for _, o := range fx.Ops {
		if o.Kind == engine.OpCreate {
			for _, t := range o.Covers {
				r.m.Reaction.WithLabelValues(string(o.Pool)).Observe(now.Sub(t).Seconds())
			}
		}
		r.start(opCtx, o)
	}
	for _, l := range fx.Lifecycle {
		ev := r.log.Info()
		if l.State == domain.LifecycleFailed {
			ev = r.log.Warn()
		}
		ev.Str("pool", string(l.Pool)).Str("worker_id", string(l.Worker)).Str("state", string(l.State)).Str("reason", l.Reason).Msg("worker " + string(l.State))
		r.pub.Worker(now, l.State, domain.WorkerEventData{WorkerID: string(l.Worker), Pool: string(l.Pool), Provider: l.Provider, Reason: l.Reason})
	}
	for _, d := range fx.Decisions {
		r.m.Decisions.WithLabelValues(d.Data.Pool, d.Direction).Inc()
		r.log.Info().Str("pool", d.Data.Pool).Int("current", d.Data.Current).Int("desired", d.Data.Desired).
			Int("pending", d.Data.Pending).Int("running", d.Data.Running).Bool("dry_run", d.Data.DryRun).
			Str("reason", d.Data.Reason).Msg("scaling decision")
		r.pub.Decision(now, d.Data)
	}
	for _, o := range fx.Ready {
		r.m.ProvisionDuration.WithLabelValues(string(o.Pool), o.Provider).Observe(o.Value.Seconds())
	}
	for _, x := range fx.Expired {
		r.m.ExpiredJobs.WithLabelValues(string(x.Pool)).Inc()
		r.log.Warn().Str("pool", string(x.Pool)).Str("job_id", string(x.Job)).Stringer("age", x.Age).
			Msg("job expired after max_job_age without a finished event; it no longer counts as demand")
	}
	for _, p := range fx.Touched {
		r.gauges[p.Name()].set(p)
		r.status[p.Name()].Store(statusOf(p, r.breakers[p.Name()]))
	}
}

// start runs one provider call on its own goroutine.
func (r *Reconciler) start(ctx context.Context, o engine.Op) {
	prov := r.provs[o.Pool]
	b := r.breakers[o.Pool]
	r.pending++
	go func() {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			r.report(opResult{op: o, err: ctx.Err()})
			return
		}
		defer func() { <-r.sem }()
		timeout := r.opt.ProviderTimeout
		if o.Kind == engine.OpStop {
			timeout += o.Grace
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var res opResult
		res.op = o
		switch o.Kind {
		case engine.OpCreate:
			res.worker, res.err = prov.Create(cctx, providers.WorkerSpec{ID: o.Worker, Pool: o.Pool})
		case engine.OpStop:
			res.err = prov.Stop(cctx, o.Worker, o.Grace)
		case engine.OpDelete:
			res.err = prov.Delete(cctx, o.Worker)
		}
		if errors.Is(res.err, providers.ErrNotFound) && o.Kind != engine.OpCreate {
			res.err = nil
		}
		result := "ok"
		if res.err != nil {
			result = "error"
		}
		r.m.ProviderOps.WithLabelValues(string(o.Pool), prov.Name(), o.Kind.String(), result).Inc()
		b.Record(res.err, r.now())
		r.report(res)
	}()
}

func (r *Reconciler) report(res opResult) {
	select {
	case r.opDone <- res:
	case <-r.done:
	}
}

func (r *Reconciler) nextWake() time.Time {
	var next time.Time
	for _, p := range r.eng.Pools() {
		if t := p.NextWake(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// shutdown finishes what is in flight within ShutdownTimeout.
func (r *Reconciler) shutdown(opCtx context.Context, abandon context.CancelFunc) error {
	now := r.now()
	if r.opt.StopWorkers && r.eng.IsCaughtUp() {
		r.eng.StopIdle(now)
	}
	r.effects(opCtx, r.eng.Take(), now)
	deadline := time.NewTimer(r.opt.ShutdownTimeout)
	defer deadline.Stop()
	r.log.Info().Int("in_flight", r.pending).Bool("stop_workers", r.opt.StopWorkers).Msg("shutting down reconciler")
	for r.pending > 0 {
		select {
		case res := <-r.opDone:
			r.finish(res)
			// Publish what the results caused, but start nothing new.
			fx := r.eng.Take()
			fx.Ops = nil
			r.effects(opCtx, fx, r.now())
		case <-deadline.C:
			r.log.Warn().Int("abandoned", r.pending).Msg("shutdown timeout: abandoning provider calls in flight")
			abandon()
			// Cancelled calls return quickly; collect what they report
			// for a moment, without waiting on a provider that hangs.
			grace := time.NewTimer(2 * time.Second)
			defer grace.Stop()
			for r.pending > 0 {
				select {
				case res := <-r.opDone:
					r.finish(res)
				case <-grace.C:
					return nil
				}
			}
			return nil
		}
	}
	return nil
}
