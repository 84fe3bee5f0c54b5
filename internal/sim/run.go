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
	// Timeline records the configuration's run for a plot.
	Timeline bool
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
		runs := []func() Result{func() Result {
			r := RunEngine(o.Trace, jobs, pc, o.Provisioning, o.Seed, o.Timeline)
			r.Run = label
			return r
		}}
		if o.Compare {
			runs = append(runs, func() Result {
				return OracleUnder(jobs, o.Provisioning.Median, pc.Settings.JobsPerWorker, pc.Settings.MaxWorkers)
			})
			for _, a := range DefaultAnchors(pc.Settings) {
				runs = append(runs, func() Result { return RunAnchor(a, o.Trace, jobs, pc, o.Provisioning, o.Seed) })
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
		rep.Pools = append(rep.Pools, PoolReport{Pool: string(pc.Name), Runs: results})
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
// the pool's configuration.
func RunEngine(tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64, timeline bool) Result {
	began := time.Now()
	c := newEngineCtl(pc)
	w := newWorld(tr, jobs, pc.Settings.JobsPerWorker, prov, seed, c, timelineFor(jobs, timeline))
	c.start(w)
	end := w.run()
	r := measure(w, end)
	r.Run, r.Pool, r.timeline, r.Elapsed = "config", string(pc.Name), w.tl, time.Since(began)
	r.Bounds = c.bounds.result(end)
	return r
}

// RunAnchor replays jobs under an anchor's formula, with the pool's
// max_workers and jobs_per_worker mapped onto the anchor's.
func RunAnchor(a Anchor, tr *Trace, jobs []Job, pc engine.PoolConfig, prov Provisioning, seed uint64) Result {
	began := time.Now()
	slots := pc.Settings.JobsPerWorker
	if a.ephemeral {
		slots = 1 // one job per runner / Kubernetes Job
	}
	w := newWorld(tr, jobs, slots, prov, seed, a.make(pc.Settings), nil)
	end := w.run()
	r := measure(w, end)
	r.Run, r.Knobs, r.Pool, r.Elapsed = a.Name, a.Knobs, string(pc.Name), time.Since(began)
	return r
}

func timelineFor(jobs []Job, on bool) *Timeline {
	if !on || len(jobs) == 0 {
		return nil
	}
	var longest time.Duration
	for _, j := range jobs {
		longest = max(longest, j.Duration)
	}
	span := jobs[len(jobs)-1].Queued + longest + 10*time.Minute
	return newTimeline(span / 720)
}
