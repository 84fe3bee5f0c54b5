// Command policy (make bench-policy) backtests the scaling policy in the
// simulator: the three standard generated traces (steady, burst, diurnal)
// with their fixed seed and a provisioning time of 20 s median (log-normal,
// p95 30 s), under the default pool configuration, under idle_workers:
// auto, under the oracle and under the other autoscalers' formulas. It
// writes Markdown to stdout: one table per trace with p95 wait,
// worker-seconds and the ratio to the oracle, the targets checked,
// and the simulator's speed on a 7-day trace of about 100,000 jobs.
//
//	go run ./bench/policy            # everything
//	go run ./bench/policy -speed=false
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/sim"
)

// benchMaxWorkers: the pools are bounded high so that the policy, not the
// cap, shapes the result (the default max_workers of 10 would serialise a
// 300-job burst for everyone alike).
const benchMaxWorkers = 1000

var prov = sim.Provisioning{Median: 20 * time.Second, P95: 30 * time.Second}

// burstWorkers is the scheduled minimum in the informative burst row: the
// burst's 300 jobs and a margin.
const burstWorkers = 330

func main() {
	speed := flag.Bool("speed", true, "also time a 7-day, 100,000-job trace")
	flag.Parse()
	if err := run(os.Stdout, *speed); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// poolFor is the pool defaults (config.PoolDefaults) with max_workers and
// max_concurrent_provisioning raised, and mod applied.
func poolFor(mod func(*config.Pool)) (engine.PoolConfig, error) {
	pc := config.PoolDefaults()
	pc.Name, pc.MaxWorkers, pc.MaxConcurrentProvisioning = "default", benchMaxWorkers, benchMaxWorkers
	if mod != nil {
		mod(&pc)
	}
	return config.Defaults().EnginePool(pc)
}

type row struct {
	res    sim.Result
	target string
}

func run(w io.Writer, speed bool) error {
	def, err := poolFor(nil)
	if err != nil {
		return err
	}
	auto, err := poolFor(func(p *config.Pool) { p.IdleWorkers = config.IdleWorkers{Auto: true} })
	if err != nil {
		return err
	}
	p := prov.Median.Seconds()
	fmt.Fprintf(w, "## Policy backtests (make bench-policy)\n\n")
	fmt.Fprintf(w, "Simulator: `go run ./bench/policy`. Traces: the standard generated ones (seed %d; `autoscaler simulate --generate KIND --seed %d`, committed in testdata/traces). "+
		"Provisioning: %s. Pools: the pool defaults with max_workers and max_concurrent_provisioning %d; anchors take the same knobs (docs/simulator.md). "+
		"Targets (issue 6): default config p95 wait ≤ %.0f s (one provisioning time) and worker-seconds ≤ 1.5× the oracle's; idle_workers: auto p95 wait ≤ %.0f s at ≤ 1.5× the oracle; no anchor better than ours on both wait and cost.\n",
		sim.StandardSeed, sim.StandardSeed, prov, benchMaxWorkers, p, p/2)

	var misses []string
	for _, kind := range []string{sim.Steady, sim.Burst, sim.Diurnal} {
		tr, err := sim.Generate(sim.GenOptions{Kind: kind, Seed: sim.StandardSeed})
		if err != nil {
			return err
		}
		jobs := tr.Jobs
		runs := []func() sim.Result{
			func() sim.Result {
				return named(sim.RunEngine(tr, jobs, def, prov, sim.StandardSeed, false), "default config")
			},
			func() sim.Result {
				return named(sim.RunEngine(tr, jobs, auto, prov, sim.StandardSeed, false), "idle_workers: auto")
			},
			func() sim.Result { return sim.Oracle(jobs, prov.Median, 1) },
		}
		for _, a := range sim.DefaultAnchors(def.Settings) {
			runs = append(runs, func() sim.Result { return sim.RunAnchor(a, tr, jobs, def, prov, sim.StandardSeed) })
		}
		if kind == sim.Burst {
			// A known burst is what schedules are for: an operator who
			// knows about Monday 09:00 raises min_workers just before.
			sched, err := poolFor(func(p *config.Pool) {
				p.IdleWorkers = config.IdleWorkers{Auto: true}
				n := burstWorkers
				p.Schedules = []config.Schedule{{Name: "monday-burst", Days: []string{"mon"}, Start: "08:59", End: "09:01", MinWorkers: &n}}
			})
			if err != nil {
				return err
			}
			runs = append(runs, func() sim.Result {
				return named(sim.RunEngine(tr, jobs, sched, prov, sim.StandardSeed, false), "auto + schedule: min_workers 330, Mon 08:59-09:01 UTC")
			})
		}
		res := sim.Parallel(runs)
		sim.SetVsOracle(res, res[2])
		ours := res[:2]
		fmt.Fprintf(w, "\n### %s (%d jobs over %s)\n\n", kind, len(jobs), tr.Span().Round(time.Hour))
		fmt.Fprintf(w, "| run | p95 wait | p99 wait | worker-s | vs oracle | utilization | peak | target |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
		for i, r := range res {
			target := ""
			switch i {
			case 0:
				target = check(r, p, &misses, kind)
			case 1:
				target = check(r, p/2, &misses, kind)
			case 2:
				target = "reference"
			case 3 + len(sim.Anchors):
				target = "informative (knows the burst is coming)"
			default:
				var beats []string
				for _, o := range ours {
					if r.WaitP95 < o.WaitP95 && r.WorkerSeconds < o.WorkerSeconds {
						beats = append(beats, o.Run)
					}
				}
				if len(beats) == 0 {
					target = "✓ not better than ours on both"
				} else {
					target = "✗ better on both than " + strings.Join(beats, " and ")
					misses = append(misses, fmt.Sprintf("%s: %s is better on both wait and cost than %s", kind, r.Run, strings.Join(beats, " and ")))
				}
			}
			fmt.Fprintf(w, "| %s | %.1f s | %.1f s | %.0f | %.2f× | %.0f%% | %d | %s |\n", r.Run, r.WaitP95, r.WaitP99, r.WorkerSeconds, r.VsOracle, 100*r.Utilization, r.Peak, target)
		}
	}
	fmt.Fprintf(w, "\nMissed targets: %d\n", len(misses))
	for _, m := range misses {
		fmt.Fprintf(w, "- %s\n", m)
	}

	if speed {
		tr, err := sim.Generate(sim.GenOptions{Kind: sim.Steady, Seed: sim.StandardSeed, Span: 7 * 24 * time.Hour, Rate: 600})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n### Simulator speed\n\n| trace | jobs | policy | wall time | worker-s |\n|---|---:|---|---:|---:|\n")
		for _, c := range []struct {
			name string
			pc   engine.PoolConfig
		}{{"default config", def}, {"idle_workers: auto", auto}} {
			began := time.Now()
			r := sim.RunEngine(tr, tr.Jobs, c.pc, prov, sim.StandardSeed, true)
			fmt.Fprintf(w, "| steady, 7 days at 600/h | %d | %s | %.2f s | %.0f |\n", len(tr.Jobs), c.name, time.Since(began).Seconds(), r.WorkerSeconds)
		}
		began := time.Now()
		o := sim.Oracle(tr.Jobs, prov.Median, 1)
		fmt.Fprintf(w, "| steady, 7 days at 600/h | %d | oracle | %.2f s | %.0f |\n", len(tr.Jobs), time.Since(began).Seconds(), o.WorkerSeconds)
	}
	return nil
}

func named(r sim.Result, name string) sim.Result {
	r.Run = name
	return r
}

func check(r sim.Result, maxWait float64, misses *[]string, kind string) string {
	var out []string
	if r.WaitP95 <= maxWait {
		out = append(out, fmt.Sprintf("✓ p95 ≤ %.0f s", maxWait))
	} else {
		out = append(out, fmt.Sprintf("✗ p95 %.1f s > %.0f s (+%.0f%%)", r.WaitP95, maxWait, 100*(r.WaitP95/maxWait-1)))
		*misses = append(*misses, fmt.Sprintf("%s, %s: p95 wait %.1f s, target %.0f s", kind, r.Run, r.WaitP95, maxWait))
	}
	if r.VsOracle <= 1.5 {
		out = append(out, "✓ cost ≤ 1.5×")
	} else {
		out = append(out, fmt.Sprintf("✗ cost %.2f× > 1.5×", r.VsOracle))
		*misses = append(*misses, fmt.Sprintf("%s, %s: worker-seconds %.2f× the oracle's, target 1.5×", kind, r.Run, r.VsOracle))
	}
	return strings.Join(out, ", ")
}
