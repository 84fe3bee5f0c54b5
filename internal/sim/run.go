package sim

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
)

// Options describe a simulation.
type Options struct {
	Trace *Trace
	// Name describes the trace in the report.
	Name string
	// Pools are the configuration's pools (config.Config.EnginePool of each). Jobs of
	// other pools are left out and counted in the report's notes.
	Pools []engine.PoolConfig
	// Label names the configuration's run ("config" if empty).
	Label        string
	Provisioning Provisioning
	// Seed drives the provisioning times; every run of a simulation sees
	// the same sequence.
	Seed uint64
	// Compare adds the oracle and the anchors.
	Compare bool
	// Timeline records every run for a plot, from From to To (offsets
	// from the trace's start; To 0: to the end).
	Timeline bool
	From, To time.Duration
}

// Simulate replays the trace through the engine with each pool's
// configuration and, with Compare, computes the oracle and the anchors.
func Simulate(o Options) (*Report, error) {
	if o.Trace == nil {
		return nil, fmt.Errorf("simulate: no trace")
	}
	if o.Provisioning.Median <= 0 {
		return nil, fmt.Errorf("simulate: the provisioning time must be positive")
	}
	if o.From < 0 || (o.To > 0 && o.To <= o.From) {
		return nil, fmt.Errorf("simulate: the plot window from %s to %s is empty: --to must be after --from", o.From, o.To)
	}
	label := o.Label
	if label == "" {
		label = "config"
	}
	rep := &Report{Trace: o.Name, Provisioning: o.Provisioning.String()}
	byPool := map[string][]Job{}
	for _, j := range o.Trace.Jobs {
		byPool[j.Pool] = append(byPool[j.Pool], j)
	}
	known := map[string]bool{}
	for _, pc := range o.Pools {
		known[string(pc.Name)] = true
	}
	var ignored []string
	for p := range byPool {
		if !known[p] {
			ignored = append(ignored, p)
		}
	}
	sort.Strings(ignored)
	for _, p := range ignored {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d job(s) of pool %q left out: the config has no such pool", len(byPool[p]), p))
	}
	if o.Trace.Routing != nil {
		rep.Routing = o.Trace.Routing
		rep.Notes = append(rep.Notes, o.Trace.Routing.Note())
	}
	reasons := make([]string, 0, len(o.Trace.Skipped))
	for why := range o.Trace.Skipped {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	for _, why := range reasons {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d job(s) skipped: %s", o.Trace.Skipped[why], why))
	}
	for _, pc := range o.Pools {
		jobs := byPool[string(pc.Name)]
		if len(jobs) == 0 {
			continue
		}
		win := o.window(jobs)
		runs := []func() Result{func() Result {
			r := runEngine(o.Trace, jobs, pc, o.Provisioning, o.Seed, win)
			r.Run = label
			return r
		}}
		if o.Compare {
			runs = append(runs, func() Result {
				r := OracleUnder(jobs, o.Provisioning.Median, pc.Settings.JobsPerWorker, pc.Settings.MaxWorkers)
				r.timeline = oracleTimeline(r, win.timeline())
				return r
			})
			for _, a := range DefaultAnchors(pc.Settings) {
				runs = append(runs, func() Result { return runAnchor(a, o.Trace, jobs, pc, o.Provisioning, o.Seed, win) })
			}
		}
		results := Parallel(runs)
		for i := range results {
			results[i].Pool = string(pc.Name)
		}
		if o.Compare {
			SetVsOracle(results, results[1])
		}
		if n := boundsNote(string(pc.Name), results[0]); n != "" {
			rep.Notes = append(rep.Notes, n)
		}
		rep.Pools = append(rep.Pools, PoolReport{Pool: string(pc.Name), MaxWorkers: pc.Settings.MaxWorkers, Runs: results})
	}
	if len(rep.Pools) == 0 {
		return rep, fmt.Errorf("simulate: no job of the trace belongs to a configured pool")
	}
	return rep, nil
}

// SetVsOracle fills every result's ratio to the oracle's worker-seconds.
func SetVsOracle(rs []Result, oracle Result) {
	for i := range rs {
		if oracle.WorkerSeconds > 0 {
			rs[i].VsOracle = rs[i].WorkerSeconds / oracle.WorkerSeconds
		}
	}
}

// Parallel runs independent simulations on all CPUs, results in order.
func Parallel(runs []func() Result) []Result {
	out := make([]Result, len(runs))
	var wg sync.WaitGroup
	for i, f := range runs {
		wg.Go(func() { out[i] = f() })
	}
	wg.Wait()
	return out
}

// RunEngine replays jobs (of one pool) through the daemon's engine with
// the pool's configuration, with a timeline of the whole run if asked.
func RunEngine(tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64, timeline bool) Result {
	return runEngine(tr, jobs, pc, prov, seed, Options{Timeline: timeline}.window(jobs))
}

func runEngine(tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64, win window) Result {
	began := time.Now()
	c := newEngineCtl(pc)
	w := newWorld(tr, jobs, pc.Settings.JobsPerWorker, prov, seed, c, win.timeline())
	c.start(w)
	end := w.run()
	w.tl.finish()
	r := measure(w, end)
	r.Run, r.Pool, r.timeline, r.Elapsed = "config", string(pc.Name), w.tl, time.Since(began)
	r.Bounds = c.bounds.result(end)
	return r
}

// RunAnchor replays jobs under an anchor's formula, with the pool's
// max_workers and jobs_per_worker mapped onto the anchor's.
func RunAnchor(a Anchor, tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64) Result {
	return runAnchor(a, tr, jobs, pc, prov, seed, window{})
}

func runAnchor(a Anchor, tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64, win window) Result {
	began := time.Now()
	slots := pc.Settings.JobsPerWorker
	if a.ephemeral {
		slots = 1 // one job per runner / Kubernetes Job
	}
	w := newWorld(tr, jobs, slots, prov, seed, a.make(pc.Settings), win.timeline())
	end := w.run()
	w.tl.finish()
	r := measure(w, end)
	r.Run, r.Knobs, r.Pool, r.timeline, r.Elapsed = a.Name, a.Knobs, string(pc.Name), w.tl, time.Since(began)
	return r
}

// window is the stretch of a run a timeline covers; on false: none.
type window struct {
	on       bool
	from, to time.Duration
}

// timelineBuckets is how many points a timeline has across its window.
const timelineBuckets = 720

func (w window) timeline() *Timeline {
	if !w.on {
		return nil
	}
	return newTimeline(w.from, w.to, timelineBuckets)
}

// window is the options' plot window over jobs: From to To, or to ten
// minutes after the longest job could have ended.
func (o Options) window(jobs []Job) window {
	if !o.Timeline || len(jobs) == 0 {
		return window{}
	}
	var longest time.Duration
	for _, j := range jobs {
		longest = max(longest, j.Duration)
	}
	w := window{on: true, from: max(o.From, 0), to: o.To}
	if w.to <= w.from {
		w.to = jobs[len(jobs)-1].Queued + longest + 10*time.Minute
	}
	return w
}
