package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

func run(name string, p95, cost float64) Result {
	return Result{Run: name, WaitP95: p95, WorkerSeconds: cost}
}

func TestCoversCountsTiesAgainstUs(t *testing.T) {
	tests := []struct {
		name string
		o, a Result
		want bool
	}{
		{"cheaper and faster", run("o", 10, 90), run("a", 12, 100), true},
		{"cheaper, wait within a tie (0.5 s)", run("o", 10.4, 90), run("a", 10, 100), true},
		{"cheaper, wait worse beyond a tie", run("o", 10.6, 90), run("a", 10, 100), false},
		{"a tie on wait at a higher cost", run("o", 10, 101), run("a", 10.3, 100), false},
		{"a tie on wait at a higher cost, even with our wait lower", run("o", 9.6, 101), run("a", 10, 100), false},
		{"identical: neither better on both", run("o", 10, 100), run("a", 10, 100), true},
		{"same cost, clearly faster", run("o", 5, 100), run("a", 10, 100), true},
		{"faster but dearer: a trade-off", run("o", 5, 101), run("a", 10, 100), false},
		{"2 % of the larger wait: a tie at 40 s", run("o", 40.7, 99), run("a", 40, 100), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Covers(tt.o, tt.a); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFrontAndCompareFronts(t *testing.T) {
	anchor := []Result{run("a1", 0, 150), run("a2", 10, 120), run("a3", 12, 130), run("a4", 25, 100)}
	front := Front(anchor)
	if len(front) != 3 || front[0].Run != "a1" || front[1].Run != "a2" || front[2].Run != "a4" {
		t.Fatalf("front %v: a3 is dominated by a2", front)
	}
	ours := []Result{run("o1", 0, 140), run("o2", 9, 110), run("o3", 24, 95)}
	v := CompareFronts("A", ours, anchor)
	if len(v.Beaten) != 0 || math.Abs(v.Margin-0.05) > 1e-9 || v.Closest.Run != "a4" {
		t.Errorf("verdict %+v: want beyond, by 5%% at a4", v)
	}
	if !strings.HasPrefix(v.String(), "✓ beyond its front: at least 5.0% cheaper") {
		t.Errorf("%s", v)
	}
	// An anchor point cheaper than ours at its wait, and one faster than
	// any of ours.
	v = CompareFronts("A", ours, append(anchor, run("cheap", 10, 100), run("fast", 0, 100)))
	if len(v.Beaten) != 2 || v.Margin >= 0 {
		t.Errorf("verdict %+v: want two runs better than ours", v)
	}
	if !strings.HasPrefix(v.String(), "✗ 2 of its runs better than ours") {
		t.Errorf("%s", v)
	}
}

// With max_workers below the oracle's peak, the oracle queues jobs for a
// slot as any policy under the cap must, and says so.
func TestOracleUnderMaxWorkers(t *testing.T) {
	// Three 100 s jobs at once, 10 s boots: uncapped, three workers and
	// no wait. Under max_workers 1: one worker runs them back to back,
	// the second waits 100 s, the third 200 s.
	jobs := []Job{{ID: "a", Duration: 100 * time.Second}, {ID: "b", Duration: 100 * time.Second}, {ID: "c", Duration: 100 * time.Second}}
	free := OracleUnder(jobs, 10*time.Second, 1, 5)
	if free.CappedAt != 0 || free.Peak != 3 || free.WaitMax != 0 {
		t.Errorf("uncapped: %+v", free)
	}
	one := OracleUnder(jobs, 10*time.Second, 1, 1)
	if one.CappedAt != 1 || one.Peak != 1 || one.WaitMax != 200 || one.WaitP50 != 100 || one.WorkerSeconds != 310 {
		t.Errorf("max_workers 1: %+v", one)
	}
}

// The engine's run says when max_workers and max_concurrent_provisioning
// held it back, for how long and over how many jobs.
func TestRunReportsTheLimitsThatBoundIt(t *testing.T) {
	tr := &Trace{Start: DefaultStart}
	for i := range 20 { // 20 jobs of 100 s at once at 60 s
		tr.Jobs = append(tr.Jobs, Job{ID: string(rune('a' + i)), Pool: "p", Queued: time.Minute, Duration: 100 * time.Second})
	}
	pc := poolConfig(func(s *policy.Settings) { s.MaxWorkers, s.MaxConcurrentProvisioning = 5, 2 })
	r := RunEngine(tr, tr.Jobs, pc, tenSeconds, 1, false)
	rules := map[string]Bound{}
	for _, b := range r.Bounds {
		rules[b.Rule] = b
	}
	mw, ok := rules["max_workers"]
	// Capped from the arrival until the last four jobs run (400 s later).
	if !ok || mw.Jobs != 20 || mw.Seconds < 300 || mw.Seconds > 420 {
		t.Errorf("max_workers bound %+v (all %v)", mw, r.Bounds)
	}
	if mcp, ok := rules["max_concurrent_provisioning"]; !ok || mcp.Seconds < 10 || mcp.Seconds > 30 {
		t.Errorf("max_concurrent_provisioning bound %+v", mcp)
	}
	free := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.MaxWorkers, s.MaxConcurrentProvisioning = 50, 50 }), tenSeconds, 1, false)
	if len(free.Bounds) != 0 {
		t.Errorf("room for all: bounds %v", free.Bounds)
	}
	// The report says it, and compares with an oracle under the same
	// max_workers.
	rep, err := Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{pc}, Provisioning: tenSeconds, Compare: true})
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Note: pool p, config: bound by max_workers for", "under max_workers 5: jobs queue for a slot"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	if o := rep.Pools[0].Runs[1]; o.Run != "oracle" || o.CappedAt != 5 || o.WaitMax == 0 {
		t.Errorf("oracle %+v: want it under max_workers 5, with waits", o)
	}
}
