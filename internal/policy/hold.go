package policy

import (
	"fmt"
	"time"
)

// IdleHold is how long an idle worker above the desired count is kept
// before it is stopped. Fixed, it is idle_timeout; with idle_timeout:
// auto it is the break-even of holding against booting again. Keeping the
// worker idle costs the time until a job takes it (or until it is
// stopped); stopping it costs a boot when a job comes that it would have
// served. So the worker is kept for one boot B when, at the measured
// arrival rate and burstiness,
//
//	B × P(k jobs or more arrive within B)  ≥  E[min(time until the k-th job, B)]
//
// and stopped at once (idle_timeout_min) otherwise, k being its rank
// among the idle workers above the desired count (1: the next one a job
// would take). For jobs arriving one by one at rate λ both sides scale
// alike and the rule is λB ≥ 1 for the first worker, the classic result
// that holding pays only when a job is expected within one boot. Bursts
// at the same rate bring fewer, larger arrivals: keeping the first worker
// pays less often, keeping several for one burst more. After a spike a few
// of the hundreds of workers it left are kept, as many as the decaying
// rate is likely to use, and the rest stop at once; as the rate decays
// with no arrival, the holds end. The result is bounded by
// idle_timeout_min and idle_timeout_max.
type IdleHold struct {
	// Fixed is the hold when Auto is false (idle_timeout).
	Fixed time.Duration
	Auto  bool
	// Boot is the median provisioning time (0: none measured yet, then
	// the hold is Max).
	Boot time.Duration
	// History and Settings give the arrival rate at any instant (it
	// decays with no arrival).
	History  History
	Settings Settings
	// Dispersion is the arrival counts' variance-to-mean ratio.
	Dispersion float64
	Min, Max   time.Duration
}

// For is the hold of the rank-th idle worker above the desired count at
// instant t.
func (h IdleHold) For(rank int, t time.Time) time.Duration {
	if !h.Auto {
		return h.Fixed
	}
	if h.Boot <= 0 {
		return h.Max
	}
	rate := h.History.holdRate(h.Settings, t)
	hold := h.Min
	if worthHolding(rank, rate, h.Dispersion, h.Boot.Seconds()) {
		hold = max(h.Boot, h.Min)
	}
	return min(hold, h.Max)
}

// worthHolding reports whether keeping the rank-th idle worker for one
// boot of b seconds saves more boot time than it idles:
// b × P(N(b) ≥ rank) ≥ E[min(T_rank, b)] = ∫₀ᵇ P(N(t) < rank) dt, the
// integral by the midpoint rule on eight points.
func worthHolding(rank int, rate, disp, b float64) bool {
	return holdingRatio(rank, rate, disp, b) >= 1
}

// holdingRatio is the boot time holding saves over the time it idles.
func holdingRatio(rank int, rate, disp, b float64) float64 {
	if rate <= 0 {
		return 0
	}
	saved := b * atLeast(rank, rate*b, disp)
	idle := 0.0
	for i := range 8 {
		t := b * (float64(i) + 0.5) / 8
		idle += (1 - atLeast(rank, rate*t, disp)) * b / 8
	}
	return saved / idle
}

// holdRate is the arrival rate the hold is worth at t: the lowest of the
// wait targets' rate (arrivalRate: the last minute's during a burst), the
// arrival_rate_window average, and holdGapBound over the time since the
// last job was queued. Each of the first two overstates the jobs to come
// at times: right after a batch the last minute's rate holds the batch's
// own jobs, which are already served, and after a burst has ended the
// window's average is still the burst's; and both are averages of the
// past, while a gap of g seconds with no job makes any rate above 3/g
// unlikely (it would have brought a job with 95 % probability, e^−3 = 5 %
// that it did not). Holding costs idle time for sure and saves a boot
// only if a job comes, so the hold takes the cautious one. Measured on the
// benchmark's traces (BENCHMARKS.md): with no buffer (a target above every
// boot) the holds then cost nothing over stopping at once on five of the
// six.
func (h History) holdRate(s Settings, t time.Time) float64 {
	r, _ := h.arrivalRate(s, t)
	r = min(r, h.Arrivals.Value(t, s.arrivalWindow()))
	if last := h.RecentArrivals.At; !last.IsZero() && t.After(last) {
		r = min(r, holdGapBound/t.Sub(last).Seconds())
	}
	return r
}

// holdGapBound bounds the hold's rate to holdGapBound / g after g seconds
// with no job queued (a 95 % bound for jobs arriving one by one; lower
// still, so more cautious, for batches).
const holdGapBound = 3.0

// stopAt is when an idle worker of this rank, idle since since, reaches
// its hold, given that no job arrives meanwhile (so the rate, and with it
// the hold, only decays): the first t ≥ now with since + For(rank, t) ≤ t.
func (h IdleHold) stopAt(rank int, since, now time.Time) time.Time {
	due := since.Add(h.For(rank, now))
	if !h.Auto || h.Boot <= 0 || !due.After(now) || h.For(rank, now) == h.Min {
		return due
	}
	// Held one boot now: it ends early when the rate falls below the
	// break-even, and the worker then stops at once (after the minimum).
	rate := h.History.holdRate(h.Settings, now)
	b := h.Boot.Seconds()
	lower := thresholdRate(func(r float64) float64 { return holdingRatio(rank, r, h.Dispersion, b) }, rate, rank)
	at := func(t time.Time) float64 { return h.History.holdRate(h.Settings, t) }
	if t := h.History.fallsTo(at, lower, now, due.Sub(now)); !t.IsZero() {
		return maxTime(t, since.Add(h.Min), now)
	}
	return due
}

func maxTime(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// idleHold is the hold the settings and the history give at now.
func idleHold(h History, s Settings) IdleHold {
	if !s.IdleTimeoutAuto {
		return IdleHold{Fixed: s.IdleTimeout}
	}
	hi := s.IdleTimeoutMax
	if hi <= 0 {
		hi = DefaultIdleTimeoutMax
	}
	return IdleHold{Auto: true, Boot: h.Boots.Median(), History: h, Settings: s,
		Dispersion: h.Bursts.Dispersion(), Min: min(s.IdleTimeoutMin, hi), Max: hi}
}

// DefaultIdleTimeoutMax bounds the automatic idle hold when the settings
// give no bound.
const DefaultIdleTimeoutMax = 10 * time.Minute

// explain says what the hold is at now, for a decision's reason.
func (h IdleHold) explain(now time.Time) string {
	if h.Boot <= 0 {
		return fmt.Sprintf("idle_timeout auto: %s until a boot time is measured", round(h.Max))
	}
	if hold := h.For(1, now); hold > h.Min {
		return fmt.Sprintf("idle_timeout auto: an idle worker above it is kept %s, one boot (a job within it is likely enough)", round(hold))
	}
	return fmt.Sprintf("idle_timeout auto: an idle worker above it stops after %s (a job within one boot, %s, is too unlikely)", round(h.Min), round(h.Boot))
}
