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
	// Gate, when set, limits provider calls and published events to the
	// pools this replica holds (gate.go); GateChanged wakes the loop when
	// it may have changed.
	Gate        Gate
	GateChanged <-chan struct{}
	// DrainPoll is how often a drain asks whether its worker is still
	// busy (1s when 0).
	DrainPoll time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Reconciler is the daemon's scaling loop: one goroutine owns the Engine
// and feeds it job events, provider observations and operation results;
// provider calls run on their own goroutines, bounded, with timeouts, and
// report back through a channel. A reload hands it a new set of pools
// (Apply), which the same goroutine applies.
type Reconciler struct {
	eng  *engine.Engine
	pub  Publisher
	m    *metrics.Metrics
	log  zerolog.Logger
	dlog zerolog.Logger // sampled, for dropped events
	opt  Options
	now  func() time.Time

	deliveries chan domain.Delivery
	results    results // provider call results, handed over without blocking (results.go)
	observed   chan observation
	updates    chan update
	done       chan struct{}

	// pools is owned by the loop; view is what other goroutines read
	// (status, health), replaced under mu when the set of pools changes.
	pools    map[domain.PoolName]*poolRun
	mu       sync.RWMutex
	view     []*poolRun
	caughtUp atomic.Bool

	// watchCtx and watchers run the pools' watchers (set by Run).
	watchCtx context.Context
	watchers sync.WaitGroup

	sem     chan struct{}
	pending int // ops in flight, owned by the loop
	events  eventCounters
	// gateWake is when the first open gate closes (owned by the loop).
	gateWake time.Time
	// drains are the stops in flight (drain.go), owned by the loop.
	drains     map[domain.WorkerID]*drain
	heartbeats chan heartbeat
}

type opResult struct {
	op         engine.Op
	worker     domain.Worker
	err        error
	killedBusy bool // a stop killed a worker still busy
}

// observation is a provider listing, a pushed change or a health change.
type observation struct {
	pool     domain.PoolName
	tier     int // the pool's tier whose provider observed it
	list     []domain.Worker
	listedAt time.Time
	isList   bool
	change   *domain.WorkerChange
	health   *bool
	reason   string
}

// New wires an engine to its providers (one per pool). The Reconciler
// owns the providers from then on and closes each when nothing uses it
// any more (after Run, or when a reload replaces or removes it).
func New(eng *engine.Engine, provs map[domain.PoolName]providers.Provider, pub Publisher, m *metrics.Metrics, log zerolog.Logger, opt Options) *Reconciler {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Reconciler{
		eng: eng, pub: pub, m: m, log: log, opt: opt, now: opt.Now,
		dlog: log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second,
			NextSampler: &zerolog.BasicSampler{N: 1000}}),
		deliveries: make(chan domain.Delivery, 8192),
		results:    newResults(),
		observed:   make(chan observation, 256),
		updates:    make(chan update),
		done:       make(chan struct{}),
		pools:      map[domain.PoolName]*poolRun{},
		sem:        make(chan struct{}, max(opt.MaxConcurrentOps, 1)),
		events:     newEventCounters(m.Events),
		drains:     map[domain.WorkerID]*drain{},
		heartbeats: make(chan heartbeat, 1024),
	}
	for _, p := range eng.Pools() {
		r.addRun(p, provs[p.Name()])
	}
	initBudgets(m, eng)
	r.gateWake = r.syncGate(r.now())
	r.publishView()
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

// ProviderDown is a pool whose provider is unreachable (its breaker is
// open).
type ProviderDown struct {
	Pool     domain.PoolName
	Provider string
	Reason   string
}

// ProviderHealth lists the pools whose provider is unreachable, in
// configuration order.
func (r *Reconciler) ProviderHealth() []ProviderDown {
	var out []ProviderDown
	for _, run := range r.snapshot() {
		for _, tr := range run.tiers {
			if open, why := tr.breaker.Open(); open {
				if tr.name != "" {
					why = "tier " + tr.name + ": " + why
				}
				out = append(out, ProviderDown{Pool: run.name, Provider: tr.provider, Reason: why})
			}
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
	r.watchCtx = watchCtx
	for _, run := range r.pools {
		r.startWatch(run)
	}
	defer func() {
		// done first: it unblocks every goroutine still trying to report.
		close(r.done)
		stopWatch()
		r.watchers.Wait()
		r.Close()
	}()

	tick := time.NewTicker(r.opt.Interval)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	for {
		select {
		case d := <-r.deliveries:
			r.apply(d)
		case <-r.results.ready:
			r.finishAll()
		case o := <-r.observed:
			r.observe(o)
		case hb := <-r.heartbeats:
			r.heartbeat(hb)
		case u := <-r.updates:
			changed := r.setBudgets(u.budgets) // in the same turn as the pools: no tick sees one without the other
			ch := r.applyUpdate(u.specs)
			ch.Budgets = changed
			u.done <- ch
		case <-tick.C:
			r.eng.Tick(r.now())
		case <-r.gateChanged():
		case <-wake.C:
		case <-ctx.Done():
			return r.shutdown(opCtx, abandon)
		}
		r.drainQueued()
		r.gateWake = r.syncGate(r.now())
		r.reconcile(opCtx)
		if next := r.nextWake(); !next.IsZero() {
			wake.Reset(max(next.Sub(r.now()), time.Millisecond))
		}
	}
}

// drainQueued takes in what is already queued (job events, provider
// results, observations; each kind in its own order) before one reconcile
// decides on all of it: in a burst, hundreds of events and create results
// cost a few reconciles instead of one each.
func (r *Reconciler) drainQueued() {
	for range 4096 {
		select { // deliveries first, on the one-channel fast path
		case d := <-r.deliveries:
			r.apply(d)
			continue
		default:
		}
		select {
		case <-r.results.ready:
			r.finishAll()
		case o := <-r.observed:
			r.observe(o)
		default:
			return
		}
	}
}

func (r *Reconciler) apply(d domain.Delivery) {
	now := r.now()
	switch {
	case d.Marker:
	case d.Err != nil:
		if r.eng.Replayed(d.Seq) {
			break // counted when it was first read
		}
		reason := domain.ReasonOf(d.Err)
		r.events.inc(d.Type, engine.Invalid)
		r.m.EventsDropped.WithLabelValues(reason).Inc()
		r.dlog.Warn().Str("reason", reason).Str("type", d.Type).Err(d.Err).Msg("invalid job event dropped")
	case d.Heartbeat != nil: // a worker's report in an input's stream
		r.reported(d, now)
	case d.Ignored: // a kind of event the input does not use
		if !r.eng.Replayed(d.Seq) {
			r.m.Events.WithLabelValues(d.Type, engine.Ignored.String()).Inc()
		}
	default:
		res, reason := r.eng.ApplyJob(d.Event, now)
		if res == engine.Replayed {
			break
		}
		r.events.inc(d.Type, res)
		if reason != "" {
			r.m.EventsDropped.WithLabelValues(reason).Inc()
			r.dlog.Info().Str("reason", reason).Str("pool", string(d.Event.Pool)).Str("job_id", string(d.Event.JobID)).
				Str("worker_id", string(d.Event.WorkerID)).Msg("job event ignored")
		}
	}
	if d.CaughtUp && r.eng.CaughtUp(now) {
		if r.caughtUp.Swap(true) {
			r.log.Info().Msg("job stream read again for the pools a reload added; they reconcile now")
			return
		}
		r.m.CaughtUp.Set(1)
		r.log.Info().Msg("job stream folded; reconciling")
	}
}

func (r *Reconciler) observe(o observation) {
	now := r.now()
	run := r.pools[o.pool]
	if run == nil {
		return // a pool removed meanwhile
	}
	switch {
	case o.health != nil:
		r.eng.SetTierUp(o.pool, o.tier, *o.health, o.reason)
		run.setUp(o.tier, *o.health)
		tier := ""
		if o.tier < len(run.tiers) {
			tier = run.tiers[o.tier].name
		}
		if *o.health {
			r.log.Info().Str("pool", string(o.pool)).Str("tier", tier).Msg("provider reachable again; circuit closed")
		} else {
			r.log.Error().Str("pool", string(o.pool)).Str("tier", tier).Str("error", o.reason).Msg("provider unreachable; circuit open, probing every breaker_cooldown")
		}
	case o.isList:
		r.eng.ObserveTierList(o.pool, o.tier, o.list, o.listedAt, now)
	case o.change != nil:
		r.eng.ObserveTierChange(o.pool, o.tier, *o.change, now)
	}
}

func (r *Reconciler) finish(res opResult) {
	r.pending--
	if errors.Is(res.err, ErrFenced) {
		r.log.Info().Str("pool", string(res.op.Pool)).Str("op", res.op.Kind.String()).Str("worker_id", string(res.op.Worker)).
			Msg("provider call not made: this replica lost the pool's lease before it could be sent")
	}
	if res.op.Kind == engine.OpStop {
		r.drainEnded(res)
	}
	r.eng.OpDone(res.op.Pool, res.op.Kind, res.op.Worker, res.worker, res.err, r.now())
	if res.err != nil && !errors.Is(res.err, ErrFenced) {
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
	r.refreshDrains(now)
}

func (r *Reconciler) effects(opCtx context.Context, fx engine.Effects, now time.Time) {
	for _, o := range fx.Ops {
		if o.Kind == engine.OpCreate {
			for _, t := range o.Covers {
				// Never negative: a scheduler clock ahead of ours (within
				// nats.max_clock_skew) counts as an instant reaction.
				r.m.Reaction.WithLabelValues(string(o.Pool)).Observe(max(now.Sub(t), 0).Seconds())
			}
		}
		r.start(opCtx, o)
	}
	for _, l := range fx.Lifecycle {
		if !r.mayAct(l.Pool, now) {
			continue // the holder publishes it
		}
		ev := r.log.Info()
		if l.State == domain.LifecycleFailed {
			ev = r.log.Warn()
		}
		ev.Str("pool", string(l.Pool)).Str("worker_id", string(l.Worker)).Str("state", string(l.State)).Str("reason", l.Reason).Msg("worker " + string(l.State))
		r.pub.Worker(now, l.State, domain.WorkerEventData{WorkerID: string(l.Worker), Pool: string(l.Pool), Provider: l.Provider, Reason: l.Reason})
	}
	for _, d := range fx.Decisions {
		if !r.mayAct(domain.PoolName(d.Data.Pool), now) {
			continue
		}
		r.m.Decisions.WithLabelValues(d.Data.Pool, d.Direction).Inc()
		r.log.Info().Str("pool", d.Data.Pool).Int("current", d.Data.Current).Int("desired", d.Data.Desired).
			Int("pending", d.Data.Pending).Int("running", d.Data.Running).Bool("dry_run", d.Data.DryRun).
			Str("reason", d.Data.Reason).Msg("scaling decision")
		r.pub.Decision(now, d.Data)
	}
	for _, o := range fx.Ready {
		r.m.ProvisionDuration.WithLabelValues(string(o.Pool), o.Provider).Observe(o.Value.Seconds())
	}
	for _, o := range fx.Waits {
		r.m.JobWait.WithLabelValues(string(o.Pool)).Observe(o.Value.Seconds())
	}
	for _, x := range fx.Expired {
		r.m.ExpiredJobs.WithLabelValues(string(x.Pool)).Inc()
		r.log.Warn().Str("pool", string(x.Pool)).Str("job_id", string(x.Job)).Stringer("age", x.Age).
			Msg("job expired after max_job_age without a finished event; it no longer counts as demand")
	}
	for _, x := range fx.Reruns {
		r.m.JobReruns.WithLabelValues(string(x.Pool)).Inc()
		r.log.Warn().Str("pool", string(x.Pool)).Str("job_id", string(x.Job)).Str("worker_id", string(x.Worker)).
			Msg("job started again after its finished (a redelivery runs it twice); its worker counts as busy")
	}
	for _, p := range fx.Touched {
		if run := r.pools[p.Name()]; run != nil {
			run.publish(p)
		}
	}
	if len(fx.Touched) > 0 {
		r.publishBudgets()
	}
	for _, name := range fx.Removed {
		r.dropRun(name)
	}
}

// start runs one provider call on its own goroutine.
func (r *Reconciler) start(ctx context.Context, o engine.Op) {
	tr := r.pools[o.Pool].tier(o.Tier)
	prov, b := tr.prov, tr.breaker
	prov.acquire()
	r.pending++
	var d *drain
	if o.Kind == engine.OpStop {
		d = r.beginDrain(o)
	}
	go func() {
		defer prov.release()
		r.report(r.call(ctx, o, prov, b, d))
	}()
}

// call makes one provider call for o and returns its result. Its slot of
// max_concurrent_ops is released when the call returns, before the result
// is handed to the loop: a loop busy with a burst must not hold the slots
// (and with them the creates still waiting for one) while results queue.
func (r *Reconciler) call(ctx context.Context, o engine.Op, prov *liveProvider, b *Breaker, d *drain) opResult {
	// A stop may wait for a busy worker for drain_timeout: it holds
	// no slot of max_concurrent_ops, or long drains would starve
	// creates.
	if o.Kind != engine.OpStop {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return opResult{op: o, err: ctx.Err()}
		}
		defer func() { <-r.sem }()
	}
	// The last check before the call leaves: the lease's safety slack
	// covers the moment from here to the provider.
	if !r.mayAct(o.Pool, r.now()) {
		return opResult{op: o, err: ErrFenced}
	}
	timeout := r.opt.ProviderTimeout
	if o.Kind == engine.OpStop {
		timeout += max(o.Grace, o.DrainTimeout)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cctx, unfence := r.fenceBound(tctx, o.Pool)
	defer unfence()
	res := opResult{op: o}
	switch o.Kind {
	case engine.OpCreate:
		res.worker, res.err = prov.Create(cctx, providers.WorkerSpec{ID: o.Worker, Pool: o.Pool})
	case engine.OpStop:
		res.killedBusy, res.err = stopWorker(cctx, prov.Provider, o, d, r.opt.DrainPoll)
	case engine.OpDelete:
		res.err = prov.Delete(cctx, o.Worker)
	}
	if errors.Is(res.err, providers.ErrNotFound) && o.Kind != engine.OpCreate {
		res.err = nil
	}
	res.err = fencedErr(cctx, res.err)
	result := "ok"
	if res.err != nil {
		result = "error"
	}
	r.m.ProviderOps.WithLabelValues(string(o.Pool), prov.Name(), o.Kind.String(), result).Inc()
	if !errors.Is(res.err, errFenceClosed) { // not the provider's failure
		b.Record(res.err, r.now())
	}
	return res
}

// report hands a provider call's result to the loop. It never blocks:
// the goroutine of the call ends at once, whatever the loop is doing.
func (r *Reconciler) report(res opResult) { r.results.push(res) }

// finishAll takes in every result reported so far, in the order reported.
func (r *Reconciler) finishAll() {
	for _, res := range r.results.take() {
		r.finish(res)
	}
}

func (r *Reconciler) nextWake() time.Time {
	next := r.gateWake
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
		case <-r.results.ready:
			r.finishAll()
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
				case <-r.results.ready:
					r.finishAll()
				case <-grace.C:
					return nil
				}
			}
			return nil
		}
	}
	return nil
}
