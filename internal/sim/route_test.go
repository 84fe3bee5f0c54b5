package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

func TestRouteTrace(t *testing.T) {
	yes := true
	rules := []routing.Rule{
		{Pool: "gpu", Match: routing.Match{GPU: &yes}},
		{Pool: "arm", Match: routing.Match{Labels: map[string]string{"arch": "arm64"}}},
		{Pool: "big", Match: routing.Match{MinMemoryMB: 8192}},
		{Pool: "renamed", Match: routing.Match{Pool: "old"}},
	}
	job := func(id, pool string, a routing.Attrs) Job {
		return Job{ID: id, Pool: pool, Queued: time.Second, Duration: time.Minute, Attrs: a}
	}
	arm := routing.Attrs{Labels: map[string]string{"arch": "arm64"}}
	for _, c := range []struct {
		name      string
		r         routing.Router
		jobs      []Job
		pools     map[string]int // jobs per pool after routing
		unmatched int
		reason    string // a Skipped reason that must be there
	}{
		{"first match wins", routing.Router{Rules: rules},
			[]Job{job("a", "", routing.Attrs{GPU: true, Labels: arm.Labels}), job("b", "", arm), job("c", "", routing.Attrs{MemoryMB: 8192})},
			map[string]int{"gpu": 1, "arm": 1, "big": 1}, 0, ""},
		{"the event's own pool is an attribute", routing.Router{Rules: rules},
			[]Job{job("a", "old", routing.Attrs{}), job("b", "kept", routing.Attrs{})},
			map[string]int{"renamed": 1}, 1, "no route: none of 4 rules matches {pool=kept}"},
		{"unmatched go to the default", routing.Router{Rules: rules, Default: "dflt"},
			[]Job{job("a", "", arm), job("b", "", routing.Attrs{Labels: map[string]string{"arch": "s390x"}}), job("c", "x", routing.Attrs{})},
			map[string]int{"arm": 1, "dflt": 2}, 0, ""},
		{"no rules: own pool, none named: counted", routing.Router{},
			[]Job{job("a", "p", arm), job("b", "", arm)},
			map[string]int{"p": 1}, 1, "no route: none of 0 rules matches {labels.arch=arm64}"},
		{"distinct reasons are bounded", routing.Router{Rules: rules},
			func() []Job {
				var js []Job
				for i := range 8 {
					js = append(js, job(fmt.Sprint(i), "", routing.Attrs{CPUMillis: int64(100 * (i + 1))}))
				}
				return js
			}(),
			map[string]int{}, 8, "no route: jobs with other attributes that no rule matches"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &Trace{Start: DefaultStart, Jobs: c.jobs, Skipped: map[string]int{"earlier": 2}}
			before := fmt.Sprint(in.Jobs)
			out := RouteTrace(in, c.r, "ci")
			if fmt.Sprint(in.Jobs) != before || in.Routing != nil || len(in.Skipped) != 1 {
				t.Fatalf("the input trace changed: %v %v", in.Jobs, in.Skipped)
			}
			got := map[string]int{}
			for _, j := range out.Jobs {
				got[j.Pool]++
			}
			if !maps.Equal(got, c.pools) || !maps.Equal(out.Routing.Pools, c.pools) {
				t.Errorf("jobs per pool %v (summary %v), want %v", got, out.Routing.Pools, c.pools)
			}
			if out.Routing.Unmatched != c.unmatched || out.Routing.Input != "ci" || out.Routing.Rules != len(c.r.Rules) {
				t.Errorf("summary %+v, want %d unmatched", out.Routing, c.unmatched)
			}
			total := 0
			for why, n := range out.Skipped {
				if strings.HasPrefix(why, "no route") {
					total += n
				}
			}
			if total != c.unmatched || out.Skipped["earlier"] != 2 || len(out.Skipped) > 1+unmatchedReasons+1 {
				t.Errorf("skipped %v, want %d unmatched", out.Skipped, c.unmatched)
			}
			if c.reason != "" && !slices.ContainsFunc(slices.Collect(maps.Keys(out.Skipped)), func(k string) bool { return strings.HasPrefix(k, c.reason) }) {
				t.Errorf("skipped %v lacks %q", out.Skipped, c.reason)
			}
		})
	}
}

// The rules decide where a trace's jobs run: the trace names only the
// pool its events came on ("ci", which the config does not have), so a
// simulation that ignored the rules would run nothing.
func TestSimulateAppliesRoutingRules(t *testing.T) {
	tr := &Trace{Start: DefaultStart}
	for i := range 9 {
		arch := []string{"arm64", "amd64", "s390x"}[i%3]
		tr.Jobs = append(tr.Jobs, Job{ID: fmt.Sprintf("j%d", i), Pool: "ci", Queued: time.Duration(i) * time.Second,
			Duration: time.Minute, Attrs: routing.Attrs{Labels: map[string]string{"arch": arch}}})
	}
	r := routing.Router{Rules: []routing.Rule{
		{Pool: "arm", Match: routing.Match{Labels: map[string]string{"arch": "arm64"}}},
		{Pool: "x86", Match: routing.Match{Pool: "ci", Labels: map[string]string{"arch": "amd64"}}},
	}}
	pool := func(name string, maxWorkers int) engine.PoolConfig {
		c := poolConfig(func(s *policy.Settings) { s.MaxWorkers = maxWorkers })
		c.Name = domain.PoolName(name)
		return c
	}
	rep, err := Simulate(Options{Trace: RouteTrace(tr, r, "ci"), Pools: []engine.PoolConfig{pool("arm", 1), pool("x86", 3)}, Provisioning: tenSeconds})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, p := range rep.Pools {
		got[p.Pool] = p.Runs[0]
	}
	// arm: one worker for its three one-minute jobs, run one after another.
	if got["arm"].Jobs != 3 || got["arm"].Peak != 1 || got["x86"].Jobs != 3 || got["x86"].Peak < 2 {
		t.Errorf("runs %+v", got)
	}
	if rep.Routing == nil || rep.Routing.Unmatched != 3 {
		t.Fatalf("routing %+v", rep.Routing)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, w := range []string{"the rules of input ci (2 rules, no default_pool) sent 3 to arm, 3 to x86; 3 job(s) matched nothing",
		"3 job(s) skipped: no route: none of 2 rules matches {pool=ci labels.arch=s390x}"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
}
