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

	// IdleAuto sizes the warm buffer for the wait targets instead of
	// IdleWorkers (idle_workers: auto; slo.go).
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

	// TargetWaitP95 and TargetWaitP99, when set, size the warm buffer of
	// idle_workers: auto for a queue-wait goal: the 95th (99th)
	// percentile of queued-to-started waits within this (slo.go).
	TargetWaitP95 time.Duration
	TargetWaitP99 time.Duration
	// TargetWaitAuto, with no TargetWaitP95, aims the p95 at one measured
	// median boot time (target_wait_p95: auto): the buffer then pays only
	// to cut the tail of the boot times and the queues behind bursts. With
	// idle_workers: auto and no target at all, the p95 target is auto too.
	TargetWaitAuto bool

	// IdleTimeoutAuto keeps an idle worker above the desired count about
	// as long as a new one takes to boot (idle_timeout: auto, hold.go),
	// within IdleTimeoutMin and IdleTimeoutMax (DefaultIdleTimeoutMax
	// when 0); IdleTimeout is then unused.
	IdleTimeoutAuto bool
	IdleTimeoutMin  time.Duration
	IdleTimeoutMax  time.Duration

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
	// WarmBound names the limit that capped the warm buffer a wait target
	// asked for (max_idle_workers or max_workers); "" if none did.
	WarmBound string
	// Hold is how long the plan keeps idle workers above the desired
	// count (the zero value: the settings' idle_timeout).
	Hold IdleHold
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
	c := newDecider(st, s, now)
	c.recommend()
	c.stabilize()
	c.coolDown()
	c.rateLimit()
	c.rebound()
	return c.finish()
}

// decider carries one decision through its steps: each step may change
// the desired count, name the rule that did (Bound, rules) and ask to be
// rechecked later (wake).
type decider struct {
	st      State
	s       Settings
	now     time.Time
	eff     effective
	slots   int
	current int

	d       Decision
	formula strings.Builder // the demand and warm terms of the reason
	raw     int             // demand + warm, before any bound
	desired int
	rules   []string // the rules that changed the count, in order
}

func newDecider(st State, s Settings, now time.Time) *decider {
	c := &decider{st: st, s: s, now: now, eff: s.effective(now), slots: max(s.JobsPerWorker, 1), current: st.Current()}
	c.d.Schedule = c.eff.schedule
	if len(s.Schedules) > 0 {
		c.wake(nextScheduleChange(s.Schedules, now))
	}
	return c
}

// wake asks for a recheck at t, keeping the earliest instant asked for.
func (c *decider) wake(t time.Time) {
	if !t.IsZero() && t.After(c.now) && (c.d.RecheckAt.IsZero() || t.Before(c.d.RecheckAt)) {
		c.d.RecheckAt = t
	}
}

// hold sets the desired count by a rule other than the bounds.
func (c *decider) hold(n int, bound, rule string) {
	c.desired, c.d.Bound = n, bound
	c.rules = append(c.rules, rule)
}

// recommend is demand plus the warm buffer, bounded by min_workers and
// max_workers: the recommendation the stabilization window remembers.
func (c *decider) recommend() {
	st := c.st
	if c.slots == 1 {
		fmt.Fprintf(&c.formula, "pending %d + running %d", st.Pending, st.Running)
	} else {
		fmt.Fprintf(&c.formula, "ceil((pending %d + running %d) / %d)", st.Pending, st.Running, c.slots)
	}
	c.d.Hold = idleHold(st.History, c.s)
	warm := c.eff.idle
	switch {
	case c.eff.auto:
		warm = c.targetWarm()
	case warm > 0:
		fmt.Fprintf(&c.formula, " + warm %d", warm)
	}
	c.d.Warm = warm
	c.raw = WorkersFor(st.Pending+st.Running, c.slots) + warm
	c.desired = c.bound(c.raw)
	c.d.Recommended = c.desired
}

// targetWarm is the warm buffer, in workers, that keeps the wait targets:
// the free job slots the model asks for on top of the jobs, bounded by
// max_idle_workers and max_workers.
func (c *decider) targetWarm() int {
	limit := c.s.MaxWorkers
	if c.s.MaxIdleWorkers > 0 {
		limit = min(limit, c.s.MaxIdleWorkers)
	}
	jobs := c.st.Pending + c.st.Running
	r := sloWarm(c.st.History, c.s, limit*c.slots, c.now)
	warm := WorkersFor(jobs+r.slots, c.slots) - WorkersFor(jobs, c.slots)
	explain := r.explain
	switch {
	case c.s.MaxIdleWorkers > 0 && (warm >= c.s.MaxIdleWorkers && r.capped || warm > c.s.MaxIdleWorkers):
		warm, c.d.WarmBound = c.s.MaxIdleWorkers, "max_idle_workers"
		explain += fmt.Sprintf(", capped by max_idle_workers %d", c.s.MaxIdleWorkers)
	case warm >= c.s.MaxWorkers && r.capped || warm > c.s.MaxWorkers:
		warm, c.d.WarmBound = c.s.MaxWorkers, "max_workers"
		explain += fmt.Sprintf(", capped by max_workers %d", c.s.MaxWorkers)
	}
	fmt.Fprintf(&c.formula, " + warm %d (%s)", warm, explain)
	c.wake(r.recheck)
	return warm
}

// bound applies min_workers and max_workers, naming the rule it used.
func (c *decider) bound(n int) int {
	switch {
	case n > c.s.MaxWorkers:
		c.d.Bound = BoundMaxWorkers
		c.rules = append(c.rules, fmt.Sprintf("capped by max_workers %d", c.s.MaxWorkers))
		return c.s.MaxWorkers
	case n < c.eff.min:
		c.d.Bound = BoundMinWorkers
		c.rules = append(c.rules, fmt.Sprintf("raised to min_workers %d%s", c.eff.min, c.eff.from()))
		return c.eff.min
	}
	return n
}

// stabilize raises a lower count to the highest recommendation made
// within scale_down.stabilization_window (never above the current count).
func (c *decider) stabilize() {
	w := c.s.StabilizationWindow
	if w <= 0 || c.desired >= c.current {
		return
	}
	top, until := c.st.History.highestSince(c.now.Add(-w))
	if top <= c.desired {
		return
	}
	held := min(top, c.current)
	c.hold(held, BoundStabilization, fmt.Sprintf("held at %d by scale_down.stabilization_window %s (highest recommendation within it: %d)", held, w, top))
	c.wake(until.Add(w))
}

// coolDown holds the current count within a cooldown after scaling; of
// two cooldowns running, the one ending last.
func (c *decider) coolDown() {
	if c.desired == c.current {
		return
	}
	h := c.st.History
	var end time.Time
	var key string
	var cool time.Duration
	if e := h.LastScaleUp.Add(c.s.ScaleUp.Cooldown); c.s.ScaleUp.Cooldown > 0 && !h.LastScaleUp.IsZero() && e.After(c.now) {
		end, key, cool = e, "scale_up.cooldown", c.s.ScaleUp.Cooldown
	}
	if e := h.LastScaleDown.Add(c.s.ScaleDown.Cooldown); c.s.ScaleDown.Cooldown > 0 && !h.LastScaleDown.IsZero() && e.After(c.now) && e.After(end) {
		end, key, cool = e, "scale_down.cooldown", c.s.ScaleDown.Cooldown
	}
	if key == "" {
		return
	}
	c.hold(c.current, BoundCooldown, fmt.Sprintf("held at current %d by %s %s (until %s)", c.current, key, cool, end.UTC().Format(time.TimeOnly)))
	c.wake(end)
}

// rateLimit cuts the change to what scale_up.max or scale_down.max still
// allows within its period.
func (c *decider) rateLimit() {
	h := c.st.History
	switch {
	case c.desired > c.current && c.s.ScaleUp.Limit.Enabled():
		l := c.s.ScaleUp.Limit
		added, first := h.Added.since(c.now.Add(-l.Period))
		start := max(c.current-added, 0)
		limit := start + max(l.Workers, percentOf(start, l.Percent))
		if top := max(limit, c.current); c.desired > top {
			c.hold(top, BoundRateLimit, fmt.Sprintf("limited to %d by scale_up.max %s (%d added within it)", top, l, added))
			c.wake(first.Add(l.Period))
		}
	case c.desired < c.current && c.s.ScaleDown.Limit.Enabled():
		l := c.s.ScaleDown.Limit
		removed, first := h.Removed.since(c.now.Add(-l.Period))
		start := c.current + removed
		limit := start - max(l.Workers, percentOf(start, l.Percent))
		if bottom := min(limit, c.current); c.desired < bottom {
			c.hold(bottom, BoundRateLimit, fmt.Sprintf("limited to %d by scale_down.max %s (%d removed within it)", bottom, l, removed))
			c.wake(first.Add(l.Period))
		}
	}
}

// rebound lets the bounds win over everything (a lowered max_workers, a
// schedule raising min_workers).
func (c *decider) rebound() {
	if c.d.Bound != "" && c.d.Bound != BoundMaxWorkers && c.d.Bound != BoundMinWorkers {
		c.desired = c.bound(c.desired)
	}
}

// finish writes the reason: the formula, then the rules that changed it.
func (c *decider) finish() Decision {
	c.d.Desired = c.desired
	var r strings.Builder
	fmt.Fprintf(&r, "desired %d = %s", c.desired, c.formula.String())
	if len(c.rules) > 0 {
		fmt.Fprintf(&r, " = %d, %s", c.raw, strings.Join(c.rules, ", "))
	}
	if c.eff.schedule != "" && c.d.Bound != BoundMinWorkers {
		fmt.Fprintf(&r, "; schedule %q active", c.eff.schedule)
	}
	if c.d.Hold.Auto {
		fmt.Fprintf(&r, "; %s", c.d.Hold.explain(c.now))
	}
	c.d.Reason = r.String()
	return c.d
}

// percentOf is p percent of n, rounded up, and at least 1 when p > 0, so
// that a percentage limit never blocks scaling from a small count.
func percentOf(n, p int) int {
	if p <= 0 {
		return 0
	}
	return max(WorkersFor(n*p, 100), 1)
}

// WorkersFor is the number of workers that jobs need at jobsPerWorker
// each: ceil(jobs / jobsPerWorker), 0 for no jobs, jobsPerWorker below 1
// taken as 1.
func WorkersFor(jobs, jobsPerWorker int) int {
	if jobs <= 0 {
		return 0
	}
	b := max(jobsPerWorker, 1)
	return (jobs + b - 1) / b
}
