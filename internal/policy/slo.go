package policy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// A wait target (target_wait_p95, target_wait_p99) says "jobs start
// within T, at the 95th (99th) percentile" and leaves the mechanism to
// the policy: it keeps the warm buffer that meets the target at the least
// worker-seconds, from the measured arrival process and boot times, and
// corrects itself from the waits it measures.
//
// The model. A job that finds a free slot starts at once; one that finds
// none waits for a worker to boot. Every job that takes a free slot makes
// the policy order a replacement at once, so a buffer of n free slots is
// empty only when n or more jobs arrived within the last boot: a job
// waits longer than T exactly when n or more other jobs arrived within
// the boot time minus T before it (a job arriving to an empty buffer
// waits for the replacement ordered by the n-th job before it). With
// boot times L drawn from the measured distribution and arrival counts
// N(w) over a window w with the measured rate and dispersion,
//
//	miss(n) = P(wait > T) = E_L[ 1{L > T} · P(N(L − T) ≥ n) ]
//
// The expectation runs over sixteen quantiles of L, so the slow boots
// weigh as much as they occur: the tail of the boot times, not their
// median, sets the buffer.
//
// The choice. A free slot costs a worker-second per second; the n-th
// saves arrival_rate × (miss(n−1) − miss(n)) late jobs per second. With
// a price on a late job (in worker-seconds), the buffer is the smallest n
// whose next slot would save less than it costs:
//
//	buffer = min { n : price × rate × (miss(n) − miss(n+1)) < 1 }
//
// A single chance of a miss for every instant would keep a worker warm
// all night for two jobs an hour as surely as at noon for two hundred;
// the price spends the target's allowance where it is cheapest, which is
// what "at the least worker-seconds" asks. The starting price is one
// median boot per allowed share (20 s / 5% = 400 worker-seconds).
//
// The correction. The model ignores workers freed by finishing jobs and
// idle workers kept after a job (both only help), and cannot know the
// arrivals it has not seen; so each measured wait corrects the price, a
// stochastic approximation of the quantile (Robbins–Monro): a wait above
// T multiplies the price by e^(η·(1−a)), one within it by e^(−η·a),
// which settles where a share a of measured waits is above T. The aim a
// is 90 % of the allowance (4.5 % for a p95, 0.9 % for a p99): aimed at
// the allowance itself, the measured percentile lands on T as often above
// as below it (the noise of a percentile over a few thousand waits and of
// a median boot measured over the last few dozen), and "within T" is the
// promise. The price stays within 1/16 and 16 times the starting one for
// the default target (one median boot, whose promise includes the cost:
// a burst that no buffer could have absorbed raises it at most
// sixteenfold), and within 1/256 and 256 times for a target set in the
// config, which is the operator asking for that wait at the price it
// takes (max_idle_workers bounds the buffer it may buy).

// sloFeedbackRate is η, the step of the price's correction per measured
// wait: a wait above the target raises the price by a third, about twenty
// within it bring it back.
const sloFeedbackRate = 0.3

// sloPriceBound bounds the correction of the default target (auto) to
// [1/sloPriceBound, sloPriceBound], sloExplicitPriceBound that of a target
// set in the config.
const (
	sloPriceBound         = 16.0
	sloExplicitPriceBound = 256.0
)

// sloAim is the share of the allowance the correction aims at.
const sloAim = 0.9

// WaitGoal is one wait target and its correction.
type WaitGoal struct {
	Target  time.Duration
	Allowed float64 // the share of waits allowed above Target: 0.05 or 0.01
	// Explicit is a target set in the config (not auto): its correction
	// may go further (sloExplicitPriceBound).
	Explicit bool
	// LogPrice is the correction of the price of a late job, in log space.
	LogPrice float64
	// Measured waits and the average share above Target (for the reason).
	Waits int
	Over  float64
}

// Price is what a late job is worth, in worker-seconds, for a pool whose
// median boot is boot: boot / Allowed × the correction.
func (g WaitGoal) Price(boot time.Duration) float64 {
	return boot.Seconds() / g.Allowed * math.Exp(g.LogPrice)
}

// Observe corrects the price with one measured wait.
func (g WaitGoal) Observe(wait time.Duration) WaitGoal {
	over := 0.0
	if wait > g.Target {
		over = 1
	}
	lim := math.Log(g.bound())
	g.LogPrice = min(max(g.LogPrice+sloFeedbackRate*(over-sloAim*g.Allowed), -lim), lim)
	g.Waits++
	w := 1 / float64(min(g.Waits, 200))
	g.Over += w * (over - g.Over)
	return g
}

// bound is how far the correction may move the price, either way.
func (g WaitGoal) bound() float64 {
	if g.Explicit {
		return sloExplicitPriceBound
	}
	return sloPriceBound
}

// arrivals is the measured arrival process at one instant.
type arrivals struct {
	rate float64 // jobs per second
	disp float64 // variance-to-mean ratio of counts
}

// missCurve walks miss(n) for n = 0, 1, 2, ... (see the model above):
// each boot point's arrival count distribution is walked once,
// P(N ≥ n) = 1 − Σ_{k<n} P(N = k).
type missCurve struct {
	target float64
	boots  [bootPointCount]float64
	cs     [bootPointCount]counts
	cdf    [bootPointCount]float64
	live   [bootPointCount]bool
	n      int
}

func newMissCurve(a arrivals, boots [bootPointCount]float64, target time.Duration) missCurve {
	m := missCurve{target: target.Seconds(), boots: boots}
	for i, l := range boots {
		if late(l, m.target) && a.rate > 0 {
			m.cs[i], m.live[i] = newCounts(a.rate*(l-m.target), a.disp), true
		}
	}
	return m
}

// late reports whether a boot of l seconds outlasts a target of t: by
// more than a millisecond (the log-normal fit of equal boots is not
// exactly them).
func late(l, t float64) bool { return l > t+1e-3 }

// next returns miss(n) and moves to n+1.
func (m *missCurve) next() float64 {
	miss := 0.0
	for i, l := range m.boots {
		switch {
		case !late(l, m.target):
		case !m.live[i]: // no arrivals: only the job itself
			if m.n == 0 {
				miss++
			}
		default:
			miss += max(1-m.cdf[i], 0)
			m.cdf[i] += m.cs[i].next(m.n)
		}
	}
	m.n++
	return miss / bootPointCount
}

// pricedBuffer is the smallest buffer (in job slots, at most limit) whose
// next slot would save less than it costs at price worker-seconds per
// late job, with the miss chance it leaves and the value of that next
// slot (late jobs saved × price, per second: below 1).
func pricedBuffer(a arrivals, boots [bootPointCount]float64, target time.Duration, price float64, limit int) (n int, miss, nextValue float64) {
	m := newMissCurve(a, boots, target)
	miss = m.next()
	for n = 0; ; n++ {
		after := m.next()
		nextValue = price * a.rate * (miss - after)
		if nextValue < 1 || n >= limit {
			return n, miss, nextValue
		}
		miss = after
	}
}

// sloResult is the warm buffer a wait target asks for.
type sloResult struct {
	slots   int // free job slots to keep
	explain string
	recheck time.Time
	capped  bool // the limit bound it: one more slot would still pay
}

// sloWarm sizes the buffer for the pool's wait targets: the larger of
// what each target needs.
func sloWarm(h History, s Settings, limit int, now time.Time) sloResult {
	window := s.arrivalWindow()
	rate, recent := h.arrivalRate(s, now)
	a := arrivals{rate: rate, disp: h.Bursts.Dispersion()}
	var b strings.Builder
	fmt.Fprintf(&b, "arrivals %.3f/s", a.rate)
	if recent {
		b.WriteString(" (last minute)")
	}
	if a.disp > 1.05 {
		fmt.Fprintf(&b, " in bursts (dispersion %.1f)", a.disp)
	}
	if h.Boots.N == 0 {
		b.WriteString(", no boot time measured yet")
		return sloResult{explain: targetNames(h, s) + ": " + b.String()}
	}
	fmt.Fprintf(&b, ", boots median %s p95 %s", round(h.Boots.Median()), round(h.Boots.Quantile(0.95)))
	boots := h.Boots.points()
	boot := h.Boots.Median()
	var r sloResult
	var parts []string
	goals := h.goals(s)
	if len(goals) == 0 { // auto, with boots of under 50 ms
		return sloResult{explain: targetNames(h, s) + ": " + b.String() + ": boots too fast to keep a worker warm for"}
	}
	needs := make([]int, len(goals))
	for i, g := range goals {
		price := g.Price(boot)
		n, miss, next := pricedBuffer(a, boots, g.Target, price, limit)
		needs[i] = n
		r.capped = r.capped || (n >= limit && next >= 1)
		part := fmt.Sprintf("%d free keep P(wait > %s) at %s, one more would save %.2f of its cost at %.0f worker-s per late job", n, g.Target, pct(miss), next, price)
		if g.Waits > 0 {
			part += fmt.Sprintf(" (×%.2f from %d waits, %s above)", math.Exp(g.LogPrice), g.Waits, pct(g.Over))
		}
		parts = append(parts, part)
		r.slots = max(r.slots, n)
	}
	fmt.Fprintf(&b, ": %s", strings.Join(parts, "; "))
	r.explain = targetNames(h, s) + ": " + b.String()
	// With no arrivals the rate decays: recheck when one free slot fewer
	// is enough for every target, which is when the last slot of each
	// target that asks for all of them is no longer worth its cost.
	if r.slots > 0 && a.rate > 0 {
		lower := a.rate
		for i, g := range goals {
			if needs[i] < r.slots {
				continue
			}
			last := func(rate float64) float64 {
				return slotValue(arrivals{rate, a.disp}, boots, g.Target, g.Price(boot), r.slots)
			}
			lower = min(lower, thresholdRate(last, a.rate, r.slots))
		}
		r.recheck = h.rateFallsTo(s, lower, now, 8*window)
	}
	return r
}

// slotValue is what the n-th free slot saves at the given arrivals, as a
// share of its cost: price × rate × (miss(n−1) − miss(n)).
func slotValue(a arrivals, boots [bootPointCount]float64, target time.Duration, price float64, n int) float64 {
	m := newMissCurve(a, boots, target)
	prev := m.next()
	for range n - 1 {
		prev = m.next()
	}
	return price * a.rate * (prev - m.next())
}

// thresholdRate is, to about 1 % of rate, the highest rate up to rate
// at which value falls below 1 (value being at least 1 at rate and
// growing with the rate, about as rate^power near 0), on the low side: a
// recheck at the instant the decaying rate reaches it comes after the
// change, by about 1 % of the rate's time constant (0.6 s for the last
// minute's average, 6 s for a 10-minute one), and finds it made. Secant
// steps on log value against log rate, started by the power law, then
// down to where the value is below 1.
func thresholdRate(value func(rate float64) float64, rate float64, power int) float64 {
	x0, y0 := math.Log(rate), math.Log(value(rate))
	x1 := x0 - y0/float64(power)
	for range 12 {
		y1 := math.Log(value(math.Exp(x1)))
		if math.Abs(y1) < 0.005 || math.IsInf(y1, 0) || math.IsNaN(y1) || y1 == y0 {
			break
		}
		x0, y0, x1 = x1, y1, x1-y1*(x1-x0)/(y1-y0)
		x1 = min(x1, math.Log(rate))
	}
	// Step below the root until the value is under 1.
	r := math.Exp(x1)
	for range 40 {
		if value(r) < 1 {
			return r
		}
		r *= 0.995
	}
	return 0
}

// goals are the pool's wait targets with their corrections.
func (h History) goals(s Settings) []WaitGoal {
	var out []WaitGoal
	if t := h.targetP95(s); t > 0 {
		g := h.Waits95
		g.Target, g.Allowed, g.Explicit = t, 0.05, s.TargetWaitP95 > 0
		out = append(out, g)
	}
	if s.TargetWaitP99 > 0 {
		g := h.Waits99
		g.Target, g.Allowed, g.Explicit = s.TargetWaitP99, 0.01, true
		out = append(out, g)
	}
	return out
}

// targetP95 is the p95 target: target_wait_p95, or with auto the
// measured median boot (0 until one is measured).
func (h History) targetP95(s Settings) time.Duration {
	if s.TargetWaitP95 > 0 || !s.autoP95() {
		return s.TargetWaitP95
	}
	return h.Boots.Median().Round(100 * time.Millisecond)
}

// autoP95 reports whether the p95 target is one median boot: asked for,
// or no target given at all.
func (s Settings) autoP95() bool {
	return s.TargetWaitAuto || (s.TargetWaitP95 <= 0 && s.TargetWaitP99 <= 0)
}

func targetNames(h History, s Settings) string {
	var n []string
	switch t := h.targetP95(s); {
	case s.TargetWaitP95 > 0:
		n = append(n, "target_wait_p95 "+s.TargetWaitP95.String())
	case t > 0:
		n = append(n, "target_wait_p95 auto ("+t.String()+", one median boot)")
	case s.autoP95():
		n = append(n, "target_wait_p95 auto")
	}
	if s.TargetWaitP99 > 0 {
		n = append(n, "target_wait_p99 "+s.TargetWaitP99.String())
	}
	return strings.Join(n, ", ")
}

// round shortens a duration for a reason: whole seconds from 10 s.
func round(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

func pct(p float64) string {
	switch {
	case p >= 0.1:
		return fmt.Sprintf("%.0f%%", 100*p)
	case p >= 0.001:
		return fmt.Sprintf("%.1f%%", 100*p)
	}
	return fmt.Sprintf("%.2g%%", 100*p)
}
