package sim

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Comparisons count ties against us: two p95 waits within WaitTie of each
// other are a tie, and then the cheaper run is the better one, so an
// anchor that waits a little less at a lower cost is better than ours.
// (Equal cost and tied waits: neither is better on both.)

// WaitTie is how close two p95 waits must be to count as a tie: within
// half a second or 2 % of the larger.
func WaitTie(a, b float64) float64 { return math.Max(0.5, 0.02*math.Max(a, b)) }

// Covers reports whether run o leaves run a no better on both wait (p95)
// and cost (worker-seconds), with ties counted against o: o costs no more
// than a, and waits no longer beyond a tie.
func Covers(o, a Result) bool {
	return o.WorkerSeconds <= a.WorkerSeconds && o.WaitP95 <= a.WaitP95+WaitTie(o.WaitP95, a.WaitP95)
}

// Front is the runs no other run of the set covers, by increasing wait:
// the wait/cost trade-off a set of runs (one autoscaler over its knobs)
// offers.
func Front(rs []Result) []Result {
	var out []Result
	for i, r := range rs {
		dominated := false
		for j, o := range rs {
			if i != j && o.WaitP95 <= r.WaitP95 && o.WorkerSeconds <= r.WorkerSeconds &&
				(o.WaitP95 < r.WaitP95 || o.WorkerSeconds < r.WorkerSeconds || j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Result) int { return cmp.Compare(a.WaitP95, b.WaitP95) })
	return out
}

// FrontVerdict says whether our runs are on or beyond an anchor's front:
// every point of it covered by one of ours (ties against us), and by how
// much.
type FrontVerdict struct {
	Anchor string
	// Beaten are the anchor's runs that none of ours covers.
	Beaten []Result
	// Margin is, over the anchor's runs, the smallest relative saving of
	// our cheapest run whose wait ties or beats it: (anchor cost − ours) /
	// anchor cost. Negative when some anchor run is cheaper than all of
	// ours at its wait; NaN when none of ours reaches its wait.
	Margin float64
	// Closest is the anchor run the margin is taken at, and Ours our run
	// there.
	Closest, Ours Result
}

// CompareFronts checks our runs against one anchor's runs.
func CompareFronts(name string, ours, anchor []Result) FrontVerdict {
	v := FrontVerdict{Anchor: name, Margin: math.Inf(1)}
	for _, a := range anchor {
		covered := false
		for _, o := range ours {
			if Covers(o, a) {
				covered = true
				break
			}
		}
		if !covered {
			v.Beaten = append(v.Beaten, a)
		}
		best, ok := CheapestWithin(ours, a.WaitP95)
		m := math.NaN()
		if ok {
			m = (a.WorkerSeconds - best.WorkerSeconds) / a.WorkerSeconds
		}
		if math.IsNaN(m) && !math.IsNaN(v.Margin) || m < v.Margin {
			v.Margin, v.Closest, v.Ours = m, a, best
		}
	}
	return v
}

// CheapestWithin is the cheapest run whose wait ties or beats wait.
func CheapestWithin(rs []Result, wait float64) (Result, bool) {
	var best Result
	ok := false
	for _, r := range rs {
		if r.WaitP95 <= wait+WaitTie(r.WaitP95, wait) && (!ok || r.WorkerSeconds < best.WorkerSeconds) {
			best, ok = r, true
		}
	}
	return best, ok
}

// Cheapest is the cheapest run whose p95 wait is at most wait (no tie
// allowance), if any.
func Cheapest(rs []Result, wait float64) (Result, bool) {
	var best Result
	ok := false
	for _, r := range rs {
		if r.WaitP95 <= wait && (!ok || r.WorkerSeconds < best.WorkerSeconds) {
			best, ok = r, true
		}
	}
	return best, ok
}

func (v FrontVerdict) String() string {
	switch {
	case len(v.Beaten) > 0:
		b := v.Beaten[0]
		return fmt.Sprintf("✗ %d of its runs better than ours, e.g. %s: p95 %.1f s at %.0f worker-s", len(v.Beaten), b.Label(), b.WaitP95, b.WorkerSeconds)
	case math.IsNaN(v.Margin):
		return "✓ on or beyond its front"
	}
	return fmt.Sprintf("✓ beyond its front: at least %.1f%% cheaper at its wait (closest: %s, p95 %.1f s)", 100*v.Margin, v.Closest.Label(), v.Closest.WaitP95)
}

// Label is the run's name with its knobs.
func (x Result) Label() string {
	if x.Knobs == "" {
		return x.Run
	}
	return x.Run + " (" + x.Knobs + ")"
}
