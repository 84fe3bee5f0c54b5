package policy

import (
	"math"
	"time"
)

// History is what the rules remember between decisions. The caller (the
// engine) owns it: it records into it with the methods below after each
// decision, plan, queued job and ready worker, and passes it to Decide in
// State. Decide only reads it, so a decision is a pure function of
// (State, Settings, now) and the same inputs always give the same output.
//
// Every part is bounded: Recent holds at most one sample per distinct
// value within the stabilization window, Added and Removed one step per
// reconcile that scaled within the longest rate-limit period, and the two
// averages are a few words each.
type History struct {
	// Recent are recommendations within the stabilization window, oldest
	// first, each strictly lower than the one before: the ones that can
	// still be the window's highest (a monotonic queue).
	Recent []Sample
	// LastScaleUp and LastScaleDown are when workers were last created or
	// stopped to follow the desired count (for the cooldowns).
	LastScaleUp   time.Time
	LastScaleDown time.Time
	// Added and Removed are the workers created and stopped within the
	// rate-limit periods (for the rate limits).
	Added   Steps
	Removed Steps
	// Arrivals is the average rate of queued jobs (for idle_workers: auto),
	// over arrival_rate_window; RecentArrivals the same over a minute (for
	// the wait targets, which take it during a burst and the lull after
	// one).
	Arrivals       Rate
	RecentArrivals Rate
	// Bursts is how queued jobs bunch together (for the wait targets).
	Bursts Bursts
	// Boots is the distribution of the provisioning times, create to
	// ready (for the wait targets and idle_timeout: auto).
	Boots BootTimes
	// Waits95 and Waits99 correct the wait model from measured waits.
	Waits95, Waits99 WaitGoal
}

// Sample is one recommendation.
type Sample struct {
	At      time.Time
	Desired int
}

// Step is a number of workers added or removed at one instant.
type Step struct {
	At      time.Time
	Workers int
}

// Steps are steps oldest first.
type Steps []Step

// since sums the steps after cutoff and returns the oldest of them.
func (ss Steps) since(cutoff time.Time) (n int, first time.Time) {
	for i := len(ss) - 1; i >= 0 && ss[i].At.After(cutoff); i-- {
		n += ss[i].Workers
		first = ss[i].At
	}
	return n, first
}

func (ss Steps) add(at time.Time, n int, keep time.Duration) Steps {
	if n <= 0 {
		return ss
	}
	i := 0
	for i < len(ss) && !ss[i].At.After(at.Add(-keep)) {
		i++
	}
	ss = ss[i:]
	if len(ss) > 0 && ss[len(ss)-1].At.Equal(at) {
		ss[len(ss)-1].Workers += n
		return ss
	}
	return append(ss, Step{At: at, Workers: n})
}

// highestSince returns the highest recommendation made after cutoff, and
// when it was made (the latest time it was made); 0 if none.
func (h History) highestSince(cutoff time.Time) (int, time.Time) {
	for _, s := range h.Recent {
		if s.At.After(cutoff) {
			return s.Desired, s.At
		}
	}
	return 0, time.Time{}
}

// Remember records a decision's recommendation for the stabilization
// window.
func (h *History) Remember(d Decision, s Settings, now time.Time) {
	h.Recent = pushMax(h.Recent, Sample{At: now, Desired: d.Recommended}, s.StabilizationWindow)
}

// pushMax adds a sample to a monotonic queue of the samples within window
// that can still be its highest: oldest first, each lower than the one
// before. A window of 0 keeps nothing.
func pushMax(q []Sample, x Sample, window time.Duration) []Sample {
	if window <= 0 {
		return q[:0]
	}
	cutoff := x.At.Add(-window)
	i := 0
	for i < len(q) && !q[i].At.After(cutoff) {
		i++
	}
	r := q[i:]
	// A newer sample as high or higher makes older lower ones irrelevant.
	for len(r) > 0 && r[len(r)-1].Desired <= x.Desired {
		r = r[:len(r)-1]
	}
	if i > 0 && cap(q)-len(r) > 64 { // release what expired
		r = append([]Sample(nil), r...)
	}
	return append(r, x)
}

// Scaled records that a plan created and stopped workers at now.
func (h *History) Scaled(created, stopped int, s Settings, now time.Time) {
	if created > 0 {
		h.LastScaleUp = now
		h.Added = h.Added.add(now, created, s.ScaleUp.Limit.Period)
	}
	if stopped > 0 {
		h.LastScaleDown = now
		h.Removed = h.Removed.add(now, stopped, s.ScaleDown.Limit.Period)
	}
}

// Queued records a job's arrival at at (its stream time).
func (h *History) Queued(at time.Time, s Settings) {
	h.Arrivals = h.Arrivals.Add(at, s.arrivalWindow())
	h.RecentArrivals = h.RecentArrivals.Add(at, recentWindow)
	h.Bursts = h.Bursts.Add(at)
}

// Provisioned records a worker that took d from create to ready.
func (h *History) Provisioned(d time.Duration) {
	h.Boots = h.Boots.Add(d)
}

// Waited records the queue wait of a job that started (queued to
// started), for the wait targets' correction.
func (h *History) Waited(wait time.Duration, s Settings) {
	if t := h.targetP95(s); t > 0 {
		h.Waits95.Target, h.Waits95.Allowed, h.Waits95.Explicit = t, 0.05, s.TargetWaitP95 > 0
		h.Waits95 = h.Waits95.Observe(wait)
	}
	if s.TargetWaitP99 > 0 {
		h.Waits99.Target, h.Waits99.Allowed, h.Waits99.Explicit = s.TargetWaitP99, 0.01, true
		h.Waits99 = h.Waits99.Observe(wait)
	}
}

// DefaultArrivalWindow is the arrival-rate average's time constant when
// the settings give none.
const DefaultArrivalWindow = 10 * time.Minute

// recentWindow is the time constant of History.RecentArrivals.
const recentWindow = time.Minute

// arrivalRate is the arrival rate the wait targets and the idle hold use
// at t: the arrival_rate_window average, unless the last minute's differs
// from it by more than three standard deviations of the last minute's own
// noise for jobs arriving one by one (sqrt(λ / 2τ) at the long rate λ):
// then a burst is on, or has just ended, and the last minute is the better
// guess of the next. The noise is the Poisson one even when jobs come in
// batches (whose own noise is larger): a large batch then counts as a
// burst, and the buffer the last minute's rate asks for while the batch
// waits is what gets its jobs started within a boot (the first of the
// extra workers to boot serve it). Measured on the ciweek trace
// (BENCHMARKS.md): with the batches' noise, the default's p95 rises from
// 19.8 s to 20.9 s for 0.8 % fewer worker-seconds. recent reports which
// one it took.
func (h History) arrivalRate(s Settings, t time.Time) (rate float64, recent bool) {
	long := h.Arrivals.Value(t, s.arrivalWindow())
	short := h.RecentArrivals.Value(t, recentWindow)
	noise := math.Sqrt(long / (2 * recentWindow.Seconds()))
	if math.Abs(short-long) > 3*noise {
		return short, true
	}
	return long, false
}

// rateFallsTo is about the first instant after now, within horizon, at
// which arrivalRate is at most r if no job arrives meanwhile (both
// averages only decay then); zero if not within horizon. The search
// doubles its step from a second, then bisects to the millisecond.
func (h History) rateFallsTo(s Settings, r float64, now time.Time, horizon time.Duration) time.Time {
	return h.fallsTo(func(t time.Time) float64 { v, _ := h.arrivalRate(s, t); return v }, r, now, horizon)
}

// fallsTo is rateFallsTo for any rate that only decays with no arrival.
func (h History) fallsTo(rate func(time.Time) float64, r float64, now time.Time, horizon time.Duration) time.Time {
	below := func(t time.Time) bool { return rate(t) <= r }
	lo := now
	for step := time.Second; step < 2*horizon; step *= 2 {
		hi := now.Add(min(step, horizon))
		if !below(hi) {
			lo = hi
			if step >= horizon {
				return time.Time{}
			}
			continue
		}
		for hi.Sub(lo) > time.Millisecond {
			if mid := lo.Add(hi.Sub(lo) / 2); below(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		return hi
	}
	return time.Time{}
}

func (s Settings) arrivalWindow() time.Duration {
	if s.ArrivalWindow > 0 {
		return s.ArrivalWindow
	}
	return DefaultArrivalWindow
}

// Rate is an exponentially weighted moving average of an event rate in
// continuous time: each event adds 1/τ and the value decays by e^(−Δt/τ),
// so a steady rate λ converges to λ and older events weigh
// exponentially less. τ is the window.
type Rate struct {
	PerSecond float64   // the value at At
	At        time.Time // the last event
}

// Add records one event at t. Events out of order count at the latest
// time seen.
func (r Rate) Add(t time.Time, window time.Duration) Rate {
	tau := window.Seconds()
	if r.At.IsZero() {
		return Rate{PerSecond: 1 / tau, At: t}
	}
	if t.Before(r.At) {
		t = r.At
	}
	return Rate{PerSecond: r.PerSecond*math.Exp(-t.Sub(r.At).Seconds()/tau) + 1/tau, At: t}
}

// Value is the rate at now, per second.
func (r Rate) Value(now time.Time, window time.Duration) float64 {
	if r.At.IsZero() {
		return 0
	}
	dt := now.Sub(r.At).Seconds()
	if dt <= 0 {
		return r.PerSecond
	}
	return r.PerSecond * math.Exp(-dt/window.Seconds())
}
