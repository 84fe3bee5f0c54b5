package sim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// RouteSummary is how RouteTrace routed a trace's jobs.
type RouteSummary struct {
	// Input names the config's input whose rules were applied ("" when
	// the config has no rules: every job keeps its own pool).
	Input string `json:"input,omitempty"`
	// Rules is how many rules the input has; Default its default pool.
	Rules   int    `json:"rules"`
	Default string `json:"default_pool,omitempty"`
	// Pools is how many jobs went to each pool.
	Pools map[string]int `json:"pools"`
	// Unmatched is how many jobs no rule matched (left out of the run).
	Unmatched int `json:"unmatched"`
}

// unmatchedReasons bounds the distinct reasons RouteTrace keeps for
// unmatched jobs; the rest are counted under one.
const unmatchedReasons = 5

// RouteTrace sends each job of t to the pool the rules choose, with the
// daemon's own rule (routing.Router.Route) on the job's own pool and
// attributes, as the inputs route a job from its queued event. A job
// nothing matches is left out and counted in Skipped with the reason, as
// the daemon counts it (reason no_route). input names the rules' input
// in the summary. t is not changed.
func RouteTrace(t *Trace, r routing.Router, input string) *Trace {
	out := &Trace{Start: t.Start, Jobs: make([]Job, 0, len(t.Jobs)), Skipped: maps.Clone(t.Skipped)}
	sum := &RouteSummary{Input: input, Rules: len(r.Rules), Default: r.Default, Pools: map[string]int{}}
	reasons := 0
	for _, j := range t.Jobs {
		a := j.Attrs
		a.Pool = j.Pool
		pool, err := r.Route(a)
		if err != nil {
			sum.Unmatched++
			why := err.Error() // "no route: none of ..."
			if _, seen := out.Skipped[why]; !seen {
				if reasons >= unmatchedReasons {
					why = "no route: jobs with other attributes that no rule matches"
				} else {
					reasons++
				}
			}
			out.skip(why)
			continue
		}
		j.Pool = pool
		sum.Pools[pool]++
		out.Jobs = append(out.Jobs, j)
	}
	out.Routing = sum
	return out
}

// Note is the summary as one line for the report.
func (s *RouteSummary) Note() string {
	pools := slices.SortedFunc(maps.Keys(s.Pools), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.Pools[b], s.Pools[a]), cmp.Compare(a, b))
	})
	var to string
	for i, p := range pools {
		if i > 0 {
			to += ", "
		}
		to += fmt.Sprintf("%d to %s", s.Pools[p], p)
	}
	if to == "" {
		to = "none routed"
	}
	if s.Input == "" {
		return fmt.Sprintf("routing: no rules in the config, every job kept its own pool (%s); %d job(s) named no pool", to, s.Unmatched)
	}
	dflt := "no default_pool"
	if s.Default != "" {
		dflt = "default_pool " + s.Default
	}
	return fmt.Sprintf("routing: the rules of input %s (%d rules, %s) sent %s; %d job(s) matched nothing and were left out", s.Input, s.Rules, dflt, to, s.Unmatched)
}
