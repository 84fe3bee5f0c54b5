package sim

import (
	"strconv"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// engineCtl drives the daemon's own engine.Engine, the one its Reconciler
// drives, through the same calls: ApplyJob for each job event, OpDone for
// each provider call, ObserveChange when a worker becomes ready, Reconcile
// after each instant, and NextWake to schedule the next reconcile with no
// event (idle timeouts, cooldowns, schedules). The simulated provider
// answers every call at once; only booting takes time.
type engineCtl struct {
	eng      *engine.Engine
	pool     *engine.Pool
	name     domain.PoolName
	settings policy.Settings
	byID     map[domain.WorkerID]*worker
	seq      int
	bounds   boundTracker
}

func newEngineCtl(c engine.PoolConfig) *engineCtl {
	c.DryRun = false // the simulation shows what the policy would do
	eng := engine.NewEngine([]engine.PoolConfig{c}, 0)
	return &engineCtl{eng: eng, pool: eng.Pool(c.Name), name: c.Name, settings: c.Settings, byID: map[domain.WorkerID]*worker{}}
}

// start lists the (empty) provider and marks the job stream folded, as
// the daemon does on start.
func (c *engineCtl) start(w *world) {
	t := w.at()
	c.eng.ObserveList(c.name, nil, t, t)
	c.eng.CaughtUp(t)
	c.effects(w)
}

func (c *engineCtl) job(w *world, kind domain.JobKind, j int, wk *worker) {
	c.seq++
	t := w.at()
	ev := domain.JobEvent{Kind: kind, ID: strconv.Itoa(c.seq), Time: t, Stored: t, Pool: c.name,
		JobID: domain.JobID(w.jobs[j].ID), Outcome: domain.OutcomeSucceeded, Seq: uint64(c.seq)}
	if wk != nil {
		ev.WorkerID = wk.id
	}
	c.eng.ApplyJob(ev, t)
	c.effects(w)
}

func (c *engineCtl) queued(w *world, j int) {
	c.bounds.queued()
	c.job(w, domain.JobQueued, j, nil)
}

func (c *engineCtl) started(w *world, j int, wk *worker)  { c.job(w, domain.JobStarted, j, wk) }
func (c *engineCtl) finished(w *world, j int, wk *worker) { c.job(w, domain.JobFinished, j, wk) }

func (c *engineCtl) ready(w *world, wk *worker) {
	c.eng.ObserveChange(c.name, domain.WorkerChange{ID: wk.id, Worker: domain.Worker{ID: wk.id, Pool: c.name, Phase: domain.PhaseReady}}, w.at())
	c.effects(w)
}

func (c *engineCtl) reconcile(w *world) time.Duration {
	c.eng.Reconcile(w.at())
	c.effects(w)
	d, _ := c.pool.LastDecision()
	c.bounds.at(w.now, activeBounds(d, c.settings, w))
	next := c.pool.NextWake()
	if next.IsZero() {
		return -1
	}
	return next.Sub(w.start)
}

func (c *engineCtl) desired() int {
	d, _ := c.pool.LastDecision()
	return d.Desired
}

// effects carries out the engine's provider calls until it asks for no
// more. Lifecycle events, decisions and metrics observations are what the
// daemon would publish; the simulation has no use for them.
func (c *engineCtl) effects(w *world) {
	for {
		fx := c.eng.Take()
		if len(fx.Ops) == 0 {
			return
		}
		t := w.at()
		for _, op := range fx.Ops {
			switch op.Kind {
			case engine.OpCreate:
				wk := c.byID[op.Worker]
				if wk == nil {
					wk = w.create()
					wk.id = op.Worker
					c.byID[op.Worker] = wk
				}
				c.eng.OpDone(c.name, engine.OpCreate, op.Worker, domain.Worker{ID: op.Worker, Pool: c.name, Phase: domain.PhasePending, CreatedAt: t}, nil, t)
			case engine.OpStop, engine.OpDelete:
				if wk := c.byID[op.Worker]; wk != nil {
					w.stop(wk)
					delete(c.byID, op.Worker)
				}
				c.eng.OpDone(c.name, op.Kind, op.Worker, domain.Worker{}, nil, t)
			}
		}
	}
}
