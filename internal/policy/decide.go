// Package policy turns a pool's picture of demand and supply into a
// desired worker count (Decide) and the concrete steps to get there (Plan).
// Everything here is a pure function of its arguments: no goroutines, no
// clocks (time is a parameter), no I/O. The daemon's reconcile loop and the
// simulator both call it, so what one does the other reproduces.
//
// Whatever the rules need to remember between two decisions (recent
// recommendations for the stabilization window, when the pool last scaled,
// how many workers were added or removed in the rate-limit period, the
// arrival-rate and provisioning-time averages) is a History that the caller
// keeps and passes in with the State; Decide only reads it.
package policy

import (
	"fmt"
	"strings"
	"time"
)

// Settings are a pool's scaling knobs.
type Settings struct {
	MinWorkers    int
	MaxWorkers    int
	JobsPerWorker int // job slots per worker; at least 1
	IdleWorkers   int // warm buffer of free workers on top of demand

	// IdleAuto sizes the warm buffer from the measured arrival rate and
	// provisioning time instead of IdleWorkers (idle_workers: auto).
	IdleAuto bool
	// MaxIdleWorkers bounds the computed warm buffer (0: no bound beyond
	// max_workers).
	MaxIdleWorkers int
	// ArrivalWindow is the time constant of the arrival-rate average
	// (DefaultArrivalWindow when 0).
	ArrivalWindow time.Duration

	// Schedules override MinWorkers and the warm buffer while they are
	// active; the last active one wins.
	Schedules []Schedule

	// ScaleUp and ScaleDown limit how fast the count may change and hold
	// it after a change (cooldown).
	ScaleUp   Behavior
	ScaleDown Behavior
	// StabilizationWindow: scale down only to the highest recommendation
	// made within this window (the Kubernetes HPA's scale-down
	// stabilization). 0 disables it.
	StabilizationWindow time.Duration

	// MaxJobsPerWorker retires a worker that has run this many jobs when
	// it becomes idle (0: never; 1: ephemeral workers).
	MaxJobsPerWorker int

	IdleTimeout               time.Duration // an idle worker may stop after this long
	ProvisionTimeout          time.Duration // a worker not ready after this long is failed
	MaxConcurrentProvisioning int           // creates in flight at once
}

// Behavior bounds one direction of change.
type Behavior struct {
	Limit RateLimit
	// Cooldown holds the count for this long after a change in this
	// direction: no scaling in either direction (the Nomad autoscaler's
	// cooldown and cooldown_on_scale_up).
	Cooldown time.Duration
}

// RateLimit allows at most Workers workers, or Percent percent of the
// count at the start of the period, to be added (or removed) per Period.
// Both zero means no limit.
type RateLimit struct {
	Workers int
	Percent int
	Period  time.Duration
}

// Enabled reports whether the limit applies.
func (l RateLimit) Enabled() bool { return (l.Workers > 0 || l.Percent > 0) && l.Period > 0 }

func (l RateLimit) String() string {
	if l.Percent > 0 {
		return fmt.Sprintf("%d%% per %s", l.Percent, l.Period)
	}
	return fmt.Sprintf("%d per %s", l.Workers, l.Period)
}

// State is a pool's demand and supply at one instant, with the history
// the rules need.
type State struct {
	Pending int // jobs waiting for a slot
	Running int // jobs running on this pool's workers

	Provisioning int // workers being created, not yet ready
	Idle         int // ready workers without jobs
	Busy         int // ready workers with at least one job
	Draining     int // workers being stopped
	Failed       int // workers that ended badly and await deletion

	// History is kept by the caller between decisions (see History).
	History History
}

// Current is the number of workers that count as supply: provisioning,
// idle and busy (draining and failed ones are on their way out).
func (s State) Current() int { return s.Provisioning + s.Idle + s.Busy }

// Decision is the desired worker count with the reason for it.
type Decision struct {
	Desired int
	Reason  string
	// Recommended is the count before the scale-down stabilization,
	// cooldowns and rate limits (demand, warm buffer, min and max). The
	// caller remembers it for the stabilization window.
	Recommended int
	// Bound names the rule that set Desired when it is not the plain
	// formula: max_workers, min_workers, stabilization, cooldown,
	// rate_limit; "" otherwise.
	Bound string
	// Warm is the warm buffer included (fixed, scheduled or auto).
	Warm int
	// IdleTimeout, when set, replaces the settings' idle_timeout for this
	// plan: with idle_workers: auto, idle workers above the desired count
	// are kept one measured provisioning time at most.
	IdleTimeout time.Duration
	// Schedule is the name of the active schedule, if any.
	Schedule string
	// RecheckAt is when the decision would change with no new input (a
	// schedule boundary, a cooldown or stabilization ending, the arrival
	// rate decaying); zero if never.
	RecheckAt time.Time
}

// Bounds a Decision may report.
const (
	BoundMaxWorkers    = "max_workers"
	BoundMinWorkers    = "min_workers"
	BoundStabilization = "stabilization"
	BoundCooldown      = "cooldown"
	BoundRateLimit     = "rate_limit"
)

// Decide returns how many workers the pool should have, and why:
//
//	recommended = clamp(ceil((pending + running) / jobs_per_worker) + warm, min_workers, max_workers)
//
// where warm is idle_workers, or with idle_workers: auto
//
//	warm = min(ceil(arrival_rate × provisioning_time / jobs_per_worker), max_idle_workers)
//
// and min_workers and idle_workers may come from the active schedule.
// Then, in order, as the Kubernetes HPA applies its behaviors:
//   - scale-down stabilization: a lower recommendation is replaced by the
//     highest one made within the window (never above the current count);
//   - cooldown: within a cooldown after scaling, the count is held;
//   - rate limits: the change is cut to what the period still allows;
//   - min_workers and max_workers bound the result whatever the above.
func Decide(st State, s Settings, now time.Time) Decision {
	var d Decision
	wake := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (d.RecheckAt.IsZero() || t.Before(d.RecheckAt)) {
			d.RecheckAt = t
		}
	}
	slots := max(s.JobsPerWorker, 1)
	eff := s.effective(now)
	d.Schedule = eff.schedule
	if len(s.Schedules) > 0 {
		wake(nextScheduleChange(s.Schedules, now))
	}

	var f strings.Builder
	if slots == 1 {
		fmt.Fprintf(&f, "pending %d + running %d", st.Pending, st.Running)
	} else {
		fmt.Fprintf(&f, "ceil((pending %d + running %d) / %d)", st.Pending, st.Running, slots)
	}
	warm := eff.idle
	if eff.auto {
		a := autoWarm(st.History, s, slots, now)
		warm = a.warm
		fmt.Fprintf(&f, " + warm %d (%s)", warm, a.explain)
		wake(a.recheck)
		if a.hold > 0 && a.hold < s.IdleTimeout {
			d.IdleTimeout = a.hold
		}
	} else if warm > 0 {
		fmt.Fprintf(&f, " + warm %d", warm)
	}
	d.Warm = warm
	raw := ceilDiv(st.Pending+st.Running, slots) + warm

	var rules []string
	// bound applies min_workers and max_workers, naming the rule it used.
	bound := func(n int) int {
		switch {
		case n > s.MaxWorkers:
			d.Bound = BoundMaxWorkers
			rules = append(rules, fmt.Sprintf("capped by max_workers %d", s.MaxWorkers))
			return s.MaxWorkers
		case n < eff.min:
			d.Bound = BoundMinWorkers
			rules = append(rules, fmt.Sprintf("raised to min_workers %d%s", eff.min, eff.from()))
			return eff.min
		}
		return n
	}
	desired := bound(raw)
	d.Recommended = desired
	current := st.Current()
	h := st.History

	// Scale-down stabilization.
	if s.StabilizationWindow > 0 && desired < current {
		if top, until := h.highestSince(now.Add(-s.StabilizationWindow)); top > desired {
			held := min(top, current)
			rules = append(rules, fmt.Sprintf("held at %d by scale_down.stabilization_window %s (highest recommendation within it: %d)", held, s.StabilizationWindow, top))
			desired, d.Bound = held, BoundStabilization
			wake(until.Add(s.StabilizationWindow))
		}
	}

	// Cooldowns: after a change, hold the count.
	if desired != current {
		var last time.Time
		var key string
		var cool time.Duration
		if end := h.LastScaleUp.Add(s.ScaleUp.Cooldown); s.ScaleUp.Cooldown > 0 && !h.LastScaleUp.IsZero() && end.After(now) {
			last, key, cool = end, "scale_up.cooldown", s.ScaleUp.Cooldown
		}
		if end := h.LastScaleDown.Add(s.ScaleDown.Cooldown); s.ScaleDown.Cooldown > 0 && !h.LastScaleDown.IsZero() && end.After(now) && end.After(last) {
			last, key, cool = end, "scale_down.cooldown", s.ScaleDown.Cooldown
		}
		if key != "" {
			rules = append(rules, fmt.Sprintf("held at current %d by %s %s (until %s)", current, key, cool, last.UTC().Format(time.TimeOnly)))
			desired, d.Bound = current, BoundCooldown
			wake(last)
		}
	}

	// Rate limits.
	switch {
	case desired > current && s.ScaleUp.Limit.Enabled():
		l := s.ScaleUp.Limit
		added, first := h.Added.since(now.Add(-l.Period))
		start := max(current-added, 0)
		limit := start + max(l.Workers, percentOf(start, l.Percent))
		if top := max(limit, current); desired > top {
			rules = append(rules, fmt.Sprintf("limited to %d by scale_up.max %s (%d added within it)", top, l, added))
			desired, d.Bound = top, BoundRateLimit
			wake(first.Add(l.Period))
		}
	case desired < current && s.ScaleDown.Limit.Enabled():
		l := s.ScaleDown.Limit
		removed, first := h.Removed.since(now.Add(-l.Period))
		start := current + removed
		limit := start - max(l.Workers, percentOf(start, l.Percent))
		if bottom := min(limit, current); desired < bottom {
			rules = append(rules, fmt.Sprintf("limited to %d by scale_down.max %s (%d removed within it)", bottom, l, removed))
			desired, d.Bound = bottom, BoundRateLimit
			wake(first.Add(l.Period))
		}
	}

	// The bounds win over everything (a lowered max_workers, a schedule
	// raising min_workers).
	if d.Bound != "" && d.Bound != BoundMaxWorkers && d.Bound != BoundMinWorkers {
		desired = bound(desired)
	}
	d.Desired = desired

	var r strings.Builder
	fmt.Fprintf(&r, "desired %d = %s", desired, f.String())
	if len(rules) > 0 {
		fmt.Fprintf(&r, " = %d, %s", raw, strings.Join(rules, ", "))
	}
	if eff.schedule != "" && d.Bound != BoundMinWorkers {
		fmt.Fprintf(&r, "; schedule %q active", eff.schedule)
	}
	d.Reason = r.String()
	return d
}

// percentOf is p percent of n, rounded up, and at least 1 when p > 0, so
// that a percentage limit never blocks scaling from a small count.
func percentOf(n, p int) int {
	if p <= 0 {
		return 0
	}
	return max(ceilDiv(n*p, 100), 1)
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
