package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

func sharedPool(name string, prio, weight int) engine.PoolConfig {
	return engine.PoolConfig{
		Name: domain.PoolName(name), Provider: "docker", Budget: "shared", Priority: prio, Weight: weight,
		Settings: policy.Settings{MaxWorkers: 50, JobsPerWorker: 1, IdleTimeout: 30 * time.Second,
			ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: 50},
		RetryInitial: time.Second, RetryMax: time.Minute,
	}
}

// burstTrace floods every pool with n jobs of d at once.
func burstTrace(pools []string, n int, d time.Duration) *Trace {
	tr := &Trace{}
	for _, p := range pools {
		for j := range n {
			tr.Jobs = append(tr.Jobs, Job{ID: fmt.Sprintf("%s-%d", p, j), Pool: p, Duration: d})
		}
	}
	return tr
}

func TestSharedBudgetHoldsAndSharesByWeight(t *testing.T) {
	b := []policy.Budget{{Name: "shared", Workers: 6}}
	pools := []engine.PoolConfig{sharedPool("a", 5, 2), sharedPool("b", 5, 1)}
	rep, err := SimulateShared(SharedOptions{Trace: burstTrace([]string{"a", "b"}, 30, 5*time.Minute), Pools: pools, Budgets: b, Boot: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if u := rep.Budgets[0]; u.Peak > 6 || u.Peak < 6 {
		t.Fatalf("budget peak %d, want 6", u.Peak)
	}
	if rep.Fairness < 0.99 {
		t.Errorf("fairness %.3f while both were flooded, want about 1 (4 and 2 by weights 2:1)", rep.Fairness)
	}
	// Mid-run both wait: a has 4 workers, b 2.
	i := len(rep.Times) / 4
	if a, bb := rep.Workers["a"][i], rep.Workers["b"][i]; a != 4 || bb != 2 {
		t.Errorf("at %s: a %d b %d workers, want 4 and 2", rep.Times[i], a, bb)
	}
	for _, p := range rep.Pools {
		if p.Jobs != 30 {
			t.Errorf("pool %s ran %d jobs, want 30", p.Pool, p.Jobs)
		}
	}
}

func TestSharedPriorityAndTiers(t *testing.T) {
	b := []policy.Budget{{Name: "shared", Workers: 6}}
	hi := sharedPool("hi", 10, 1)
	hi.Tiers = []engine.TierConfig{{Name: "local", Provider: "docker", MaxWorkers: 2}, {Name: "burst", Provider: "kubernetes", MaxWorkers: 10}}
	hi.Settings.MaxWorkers = 12
	lo := sharedPool("lo", 1, 1)
	rep, err := SimulateShared(SharedOptions{Trace: burstTrace([]string{"hi", "lo"}, 12, 2*time.Minute), Pools: []engine.PoolConfig{hi, lo}, Budgets: b, Boot: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Budgets[0].Peak > 6 {
		t.Fatalf("budget peak %d above 6", rep.Budgets[0].Peak)
	}
	i := 30 // 30s in: hi flooded, holds the budget
	if h, l := rep.Workers["hi"][i], rep.Workers["lo"][i]; h != 6 || l != 0 {
		t.Errorf("at %s: hi %d lo %d, want 6 and 0", rep.Times[i], h, l)
	}
	ts := rep.Pools[0].TierSeconds
	if ts["local"] <= 0 || ts["burst"] <= 0 || ts["burst"] < ts["local"] {
		t.Errorf("hi's tier seconds %v: want both tiers used, burst (4 of 6) more than local (2)", ts)
	}
	if rep.Pools[1].WaitP95 <= rep.Pools[0].WaitP95 {
		t.Errorf("lo's p95 wait %s not above hi's %s", rep.Pools[1].WaitP95, rep.Pools[0].WaitP95)
	}
}

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{[]float64{1, 1}, 1}, {[]float64{1, 0}, 0.5}, {[]float64{2, 2, 2}, 1}, {[]float64{0, 0}, 1}} {
		if got := Jain(tc.xs); got != tc.want {
			t.Errorf("Jain(%v) = %g, want %g", tc.xs, got, tc.want)
		}
	}
}
