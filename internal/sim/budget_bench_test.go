package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// sharedTrace is n pools over 4h: each with its own Poisson rate and a
// burst of 3x its rate for 30 minutes at a time of its own, jobs of 2 to 6
// minutes; the pools' demand together exceeds the budget in the bursts.
func sharedTrace(n int, seed uint64) *Trace {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	tr := &Trace{}
	for p := range n {
		name := fmt.Sprintf("pool-%d", p)
		rate := 0.5 + r.Float64() // jobs per minute
		burst := time.Duration(r.IntN(180)) * time.Minute
		for t := time.Duration(0); t < 4*time.Hour; {
			rt := rate
			if t >= burst && t < burst+30*time.Minute {
				rt *= 3
			}
			t += time.Duration(r.ExpFloat64() / rt * float64(time.Minute))
			tr.Jobs = append(tr.Jobs, Job{ID: fmt.Sprintf("%s-%d", name, len(tr.Jobs)), Pool: name, Queued: t.Truncate(time.Second),
				Duration: time.Duration(2+r.IntN(5)) * time.Minute})
		}
	}
	slices.SortStableFunc(tr.Jobs, func(a, b Job) int { return int(a.Queued - b.Queued) })
	return tr
}

// BenchmarkSharedBudget measures, for 2, 5 and 10 pools sharing one
// budget of 5 workers per pool (weights 1 to 3, equal priority): budget
// adherence (peak / budget, at most 1), Jain's fairness of the workers
// per weight while contended, and the pools' mean p95 wait against the
// same pools with fixed quotas by weight summing to the budget.
func BenchmarkSharedBudget(b *testing.B) {
	for _, n := range []int{2, 5, 10} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			tr := sharedTrace(n, 7)
			budget := policy.Budget{Name: "shared", Workers: 5 * n}
			var pools []engine.PoolConfig
			for p := range n {
				c := sharedPool(fmt.Sprintf("pool-%d", p), 5, 1+p%3)
				c.Settings.IdleTimeout = time.Minute
				pools = append(pools, c)
			}
			var shared, fixed *SharedReport
			for b.Loop() {
				var err error
				shared, err = SimulateShared(SharedOptions{Trace: tr, Pools: pools, Budgets: []policy.Budget{budget}, Boot: 20 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				fixed, err = SimulateShared(SharedOptions{Trace: tr, Pools: FixedQuotas(pools, budget), Boot: 20 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
			}
			mean := func(r *SharedReport) float64 {
				s := 0.0
				for _, p := range r.Pools {
					s += p.WaitP95.Seconds()
				}
				return s / float64(len(r.Pools))
			}
			worst := func(r *SharedReport) float64 {
				w := 0.0
				for _, p := range r.Pools {
					w = max(w, p.WaitP95.Seconds())
				}
				return w
			}
			b.ReportMetric(shared.Budgets[0].Adherence(), "adherence")
			b.ReportMetric(shared.Fairness, "jain")
			b.ReportMetric(mean(shared), "p95-mean-s")
			b.ReportMetric(mean(fixed), "p95-mean-fixed-s")
			b.ReportMetric(worst(shared), "p95-worst-s")
			b.ReportMetric(worst(fixed), "p95-worst-fixed-s")
			b.ReportMetric(float64(len(tr.Jobs)), "jobs")
		})
	}
}
