package sim

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// SharedOptions describe a simulation of several pools in one engine, as
// the daemon runs them: the budgets they share and the tiers they spill
// over are applied by the same engine code.
type SharedOptions struct {
	Trace   *Trace
	Pools   []engine.PoolConfig
	Budgets []policy.Budget
	// Boot is how long a worker takes to become ready (fixed).
	Boot time.Duration
	// Step is the simulation's time step (default 1s).
	Step time.Duration
}

// SharedReport is what a shared simulation measured.
type SharedReport struct {
	Pools []SharedPool
	// Budgets: each budget's peak use against its limit (workers).
	Budgets []BudgetUse
	// Fairness is Jain's index of the pools' workers per weight, averaged
	// over the steps where two or more pools of equal priority had jobs
	// waiting (1: shares exactly by weight); 0 when never contended.
	Fairness float64
	// Timeline samples, every step: the budget's use (the plot's budget
	// line) and each pool's workers.
	Times   []time.Duration
	Used    []int
	Workers map[string][]int
	Pending map[string][]int
	Running map[string][]int

	fairAcc
}

// SharedPool is one pool's figures.
type SharedPool struct {
	Pool        string
	Jobs        int
	WaitP50     time.Duration
	WaitP95     time.Duration
	WaitMax     time.Duration
	MeanWorkers float64
	// TierSeconds are worker-seconds by tier (the pool's provider alone
	// when it has no tiers).
	TierSeconds map[string]float64
	waits       []float64
}

// BudgetUse is a budget's peak use.
type BudgetUse struct {
	Name  string
	Limit int
	Peak  int
}

// Adherence is peak use over the limit: at most 1 when the budget held.
func (b BudgetUse) Adherence() float64 {
	if b.Limit <= 0 {
		return 0
	}
	return float64(b.Peak) / float64(b.Limit)
}

type simWorker struct {
	pool    domain.PoolName
	tier    int
	readyAt time.Duration
	ready   bool
	job     int // index into the trace, -1 when idle
	busyEnd time.Duration
}

// SimulateShared replays the trace through one engine holding every pool.
func SimulateShared(o SharedOptions) (*SharedReport, error) {
	if o.Trace == nil || len(o.Pools) == 0 {
		return nil, fmt.Errorf("simulate: no trace or no pools")
	}
	if o.Boot <= 0 {
		return nil, fmt.Errorf("simulate: the provisioning time must be positive")
	}
	step := o.Step
	if step <= 0 {
		step = time.Second
	}
	pools := slices.Clone(o.Pools)
	for i := range pools {
		pools[i].DryRun = false
	}
	eng := engine.NewEngine(pools, 0)
	eng.SetBudgets(o.Budgets)
	start := o.Trace.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	for _, p := range pools {
		for i := range max(len(p.Tiers), 1) {
			eng.ObserveTierList(p.Name, i, nil, start, start)
		}
	}
	eng.CaughtUp(start)

	known := map[domain.PoolName]bool{}
	for _, p := range pools {
		known[p.Name] = true
	}
	var jobs []Job
	for _, j := range o.Trace.Jobs {
		if known[domain.PoolName(j.Pool)] {
			jobs = append(jobs, j)
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].Queued < jobs[b].Queued })
	end := time.Duration(0)
	for _, j := range jobs {
		end = max(end, j.Queued+j.Duration)
	}

	workers := map[domain.WorkerID]*simWorker{}
	pending := map[domain.PoolName][]int{}
	waits := map[domain.PoolName][]time.Duration{}
	tierSec := map[domain.PoolName]map[string]float64{}
	rep := &SharedReport{Workers: map[string][]int{}, Pending: map[string][]int{}, Running: map[string][]int{}}
	peak := map[string]int{}
	seq := 0
	event := func(kind domain.JobKind, j int, w domain.WorkerID, now time.Duration) {
		seq++
		ev := domain.JobEvent{Kind: kind, ID: strconv.Itoa(seq), Seq: uint64(seq), Time: at(now), Stored: at(now),
			Pool: domain.PoolName(jobs[j].Pool), JobID: domain.JobID(jobs[j].ID), WorkerID: w, Outcome: domain.OutcomeSucceeded}
		eng.ApplyJob(ev, at(now))
	}
	ops := func(now time.Duration) {
		for range 100 {
			fx := eng.Take()
			if len(fx.Ops) == 0 {
				return
			}
			for _, op := range fx.Ops {
				switch op.Kind {
				case engine.OpCreate:
					if workers[op.Worker] == nil {
						workers[op.Worker] = &simWorker{pool: op.Pool, tier: op.Tier, readyAt: now + o.Boot, job: -1}
					}
					eng.OpDone(op.Pool, engine.OpCreate, op.Worker, domain.Worker{ID: op.Worker, Pool: op.Pool, Phase: domain.PhasePending, CreatedAt: at(now)}, nil, at(now))
				case engine.OpStop, engine.OpDelete:
					if w := workers[op.Worker]; w != nil && w.job >= 0 {
						// The engine never stops a busy worker; were it to,
						// its job would be lost: put it back.
						pending[w.pool] = append([]int{w.job}, pending[w.pool]...)
					}
					delete(workers, op.Worker)
					eng.OpDone(op.Pool, op.Kind, op.Worker, domain.Worker{}, nil, at(now))
				}
			}
		}
	}
	ids := func() []domain.WorkerID { // deterministic order
		out := make([]domain.WorkerID, 0, len(workers))
		for id := range workers {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}

	next := 0
	for now := time.Duration(0); ; now += step {
		if now > end+7*24*time.Hour {
			break // a pool that never drains (min_workers): stop a week after the last job
		}
		for ; next < len(jobs) && jobs[next].Queued <= now; next++ {
			p := domain.PoolName(jobs[next].Pool)
			pending[p] = append(pending[p], next)
			event(domain.JobQueued, next, "", now)
		}
		for _, id := range ids() {
			w := workers[id]
			if w.job >= 0 && w.busyEnd <= now {
				event(domain.JobFinished, w.job, id, now)
				w.job = -1
			}
			if !w.ready && w.readyAt <= now {
				w.ready = true
				eng.ObserveTierChange(w.pool, w.tier, domain.WorkerChange{ID: id, Worker: domain.Worker{ID: id, Pool: w.pool, Phase: domain.PhaseReady}}, at(now))
			}
		}
		ops(now)
		for _, id := range ids() {
			w := workers[id]
			if w.ready && w.job < 0 && len(pending[w.pool]) > 0 {
				j := pending[w.pool][0]
				pending[w.pool] = pending[w.pool][1:]
				w.job, w.busyEnd = j, now+max(jobs[j].Duration, step)
				waits[w.pool] = append(waits[w.pool], now-jobs[j].Queued)
				event(domain.JobStarted, j, id, now)
			}
		}
		eng.Reconcile(at(now))
		ops(now)
		waiting := 0
		for _, q := range pending {
			waiting += len(q)
		}
		if now > end && next >= len(jobs) && waiting == 0 && len(workers) == 0 {
			break
		}

		// Measure.
		count, busy := map[domain.PoolName]int{}, map[domain.PoolName]int{}
		for _, w := range workers {
			count[w.pool]++
			if w.job >= 0 {
				busy[w.pool]++
			}
			if tierSec[w.pool] == nil {
				tierSec[w.pool] = map[string]float64{}
			}
			tierSec[w.pool][tierName(pools, w.pool, w.tier)] += step.Seconds()
		}
		rep.Times = append(rep.Times, now)
		used := 0
		for _, b := range o.Budgets {
			u := eng.BudgetUse(b.Name).Workers
			used += u
			peak[b.Name] = max(peak[b.Name], u)
		}
		rep.Used = append(rep.Used, used)
		for _, p := range pools {
			rep.Workers[string(p.Name)] = append(rep.Workers[string(p.Name)], count[p.Name])
			rep.Pending[string(p.Name)] = append(rep.Pending[string(p.Name)], len(pending[p.Name]))
			rep.Running[string(p.Name)] = append(rep.Running[string(p.Name)], busy[p.Name])
		}
		rep.fairnessStep(pools, pending, count)
	}
	for _, b := range o.Budgets {
		rep.Budgets = append(rep.Budgets, BudgetUse{Name: b.Name, Limit: b.Workers, Peak: peak[b.Name]})
	}
	for _, p := range pools {
		ws := slices.Clone(waits[p.Name])
		slices.Sort(ws)
		sp := SharedPool{Pool: string(p.Name), Jobs: len(ws), TierSeconds: tierSec[p.Name]}
		for k := range min(len(ws), 200) { // evenly spaced ranks, for the plot
			sp.waits = append(sp.waits, ws[k*len(ws)/min(len(ws), 200)].Seconds())
		}
		if len(ws) > 0 {
			sp.WaitP50, sp.WaitP95, sp.WaitMax = quantile(ws, 0.5), quantile(ws, 0.95), ws[len(ws)-1]
		}
		total := 0
		for _, n := range rep.Workers[string(p.Name)] {
			total += n
		}
		if len(rep.Times) > 0 {
			sp.MeanWorkers = float64(total) / float64(len(rep.Times))
		}
		rep.Pools = append(rep.Pools, sp)
	}
	if rep.fairSteps > 0 {
		rep.Fairness = rep.fairSum / float64(rep.fairSteps)
	}
	return rep, nil
}

// fairnessStep adds one step's Jain index over the contended pools of
// the highest priority with jobs waiting.
func (r *SharedReport) fairnessStep(pools []engine.PoolConfig, pending map[domain.PoolName][]int, count map[domain.PoolName]int) {
	top := -1
	for _, p := range pools {
		if len(pending[p.Name]) > 0 && p.Budget != "" {
			top = max(top, p.Priority)
		}
	}
	var xs []float64
	for _, p := range pools {
		if len(pending[p.Name]) > 0 && p.Budget != "" && p.Priority == top {
			xs = append(xs, float64(count[p.Name])/float64(max(p.Weight, 1)))
		}
	}
	if len(xs) < 2 {
		return
	}
	r.fairSum += Jain(xs)
	r.fairSteps++
}

// Jain is Jain's fairness index of xs: (Σx)² / (n·Σx²), 1 when all equal.
func Jain(xs []float64) float64 {
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 1
	}
	return s * s / (float64(len(xs)) * s2)
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

func tierName(pools []engine.PoolConfig, pool domain.PoolName, tier int) string {
	for _, p := range pools {
		if p.Name == pool {
			if tier < len(p.Tiers) {
				return p.Tiers[tier].Name
			}
			return p.Provider
		}
	}
	return "?"
}

// FixedQuotas are the pools with the budget split into fixed quotas by
// weight (each pool's max_workers its share, no budget): the comparison
// the budget is measured against.
func FixedQuotas(pools []engine.PoolConfig, b policy.Budget) []engine.PoolConfig {
	out := slices.Clone(pools)
	sum := 0
	for _, p := range out {
		if p.Budget == b.Name {
			sum += max(p.Weight, 1)
		}
	}
	left := b.Workers
	for i := range out {
		if out[i].Budget != b.Name || sum == 0 {
			continue
		}
		q := b.Workers * max(out[i].Weight, 1) / sum
		out[i].Settings.MaxWorkers = max(q, 1)
		left -= q
		out[i].Budget = ""
	}
	for i := range out { // the rounding's remainder to the first pools
		if left <= 0 {
			break
		}
		if pools[i].Budget == b.Name {
			out[i].Settings.MaxWorkers++
			left--
		}
	}
	return out
}

// fairAcc accumulates the fairness over the contended steps.
type fairAcc struct {
	fairSum   float64
	fairSteps int
}

// WriteText writes the report as a table: per pool, per tier, per budget.
func (r *SharedReport) WriteText(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("%-16s %6s %10s %10s %10s %8s  %s\n", "pool", "jobs", "wait p50", "wait p95", "wait max", "workers", "worker-seconds by tier")
	for _, sp := range r.Pools {
		tiers := make([]string, 0, len(sp.TierSeconds))
		for t := range sp.TierSeconds {
			tiers = append(tiers, t)
		}
		sort.Strings(tiers)
		by := ""
		for _, t := range tiers {
			by += fmt.Sprintf("%s %.0f  ", t, sp.TierSeconds[t])
		}
		p("%-16s %6d %10s %10s %10s %8.2f  %s\n", sp.Pool, sp.Jobs, sp.WaitP50, sp.WaitP95, sp.WaitMax, sp.MeanWorkers, by)
	}
	for _, b := range r.Budgets {
		p("budget %s: peak %d of %d workers (adherence %.2f)\n", b.Name, b.Peak, b.Limit, b.Adherence())
	}
	if r.Fairness > 0 {
		p("fairness (Jain's index of workers per weight while contended): %.3f\n", r.Fairness)
	}
	return err
}

// Charts plots each budget: every pool of it as a run (its jobs and
// workers), the budget's use as one more, and the budget as the limit line.
func (r *SharedReport) Charts(start time.Time, pools []engine.PoolConfig, budgets []policy.Budget) []PlotChart {
	if len(r.Times) == 0 {
		return nil
	}
	step := time.Second
	if len(r.Times) > 1 {
		step = r.Times[1] - r.Times[0]
	}
	var out []PlotChart
	for _, b := range budgets {
		c := PlotChart{Title: "budget " + b.Name + ": workers of its pools", Start: start, MaxWorkers: b.Workers, LimitName: "budget " + b.Name}
		use := &Timeline{Step: step, Workers: r.Used, Pending: make([]int, len(r.Used)), Running: make([]int, len(r.Used)), Desired: r.Used}
		c.Runs = append(c.Runs, PlotRun{Name: "used (all pools)", Timeline: use})
		for _, p := range pools {
			if p.Budget != b.Name {
				continue
			}
			name := string(p.Name)
			var waits []float64
			for _, sp := range r.Pools {
				if sp.Pool == name {
					waits = sp.waits
				}
			}
			c.Runs = append(c.Runs, PlotRun{Name: name, Waits: waits, Timeline: &Timeline{Step: step,
				Workers: r.Workers[name], Pending: r.Pending[name], Running: r.Running[name], Desired: r.Workers[name]}})
		}
		out = append(out, c)
	}
	return out
}
