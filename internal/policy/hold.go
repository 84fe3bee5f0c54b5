package policy

import (
	"fmt"
	"math"
	"time"
)

// IdleHold is how long an idle worker above the desired count is kept
// before it is stopped. Fixed, it is idle_timeout; with idle_timeout:
// auto it is the break-even of holding against booting again:
//
//	hold(k) = boot × p_k / (1 − p_k),  within [idle_timeout_min, idle_timeout_max]
//
// where boot is the measured median provisioning time and p_k the chance,
// at the measured arrival rate and burstiness, that k or more jobs arrive
// within one boot, k being the worker's rank among the idle workers above
// the desired count (1: the next one a job would take). Keeping a worker
// idle for t costs t; stopping it costs a boot if a job comes that it
// would have served. With even odds (p = ½) it is kept one boot, as the
// deterministic ski-rental rule says; likelier jobs keep it longer, a
// trickle stops it at once. So after a spike a few of the hundreds of
// workers it left are kept, as many as the decaying rate is likely to
// use, and the rest stop at once; and as the rate decays with no arrival,
// so do the holds.
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
	rate, _ := h.History.arrivalRate(h.Settings, t)
	p := atLeast(rank, rate*h.Boot.Seconds(), h.Dispersion)
	hold := h.Max
	if p < 1 {
		odds := p / (1 - p)
		hold = time.Duration(math.Min(float64(h.Boot)*odds, float64(h.Max)))
	}
	return min(max(hold, h.Min), h.Max)
}

// stopAt is when an idle worker of this rank, idle since since, reaches
// its hold, given that no job arrives meanwhile (so the rate, and with it
// the hold, only decays): the first t ≥ now with since + For(rank, t) ≤ t.
func (h IdleHold) stopAt(rank int, since, now time.Time) time.Time {
	due := since.Add(h.For(rank, now))
	if !h.Auto || !due.After(now) {
		return due
	}
	lo, hi := now, due // not yet due at lo; due at hi (the hold never grows)
	for hi.Sub(lo) > time.Millisecond {
		mid := lo.Add(hi.Sub(lo) / 2)
		if since.Add(h.For(rank, mid)).After(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
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
	return fmt.Sprintf("idle_timeout auto: an idle worker above it is kept %s (boot %s × the odds of a job within it)", round(h.For(1, now)), round(h.Boot))
}
