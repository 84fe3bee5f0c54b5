package policy

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// autoMissRate is the share of arrivals allowed to find the warm buffer
// empty: the buffer is the smallest that a Poisson stream of arrivals at
// the measured rate empties at most this often.
const autoMissRate = 0.10

// autoMinArrivals is the expected number of arrivals during one
// provisioning time below which no worker is kept warm: fewer than one
// job in twenty boot times does not pay for a worker idling meanwhile.
const autoMinArrivals = 0.05

// autoIdleHold: with idle_workers: auto, a worker above the desired count
// is stopped after it has been idle for this many measured provisioning
// times (never later than idle_timeout): keeping it idle longer than a
// boot costs more than booting another when it is needed (the oracle's
// rule, and the break-even of the ski-rental problem).
const autoIdleHold = 1.0

type warmResult struct {
	warm    int
	explain string
	recheck time.Time
	hold    time.Duration
}

// autoWarm sizes the warm buffer for idle_workers: auto from the jobs
// expected to arrive while one worker boots,
//
//	x = arrival_rate × provisioning_time
//
// where arrival_rate is the moving average of queued events (History.
// Arrivals) and provisioning_time the average measured create-to-ready
// time (History.Provisioning). A job that takes a warm worker makes the
// policy order a replacement at once, so the replacements in flight are
// the arrivals of the last provisioning time: Poisson with mean x. An
// arrival waits only when they have emptied the buffer, so the buffer is
// the smallest n jobs with P(Poisson(x) ≥ n) ≤ 10%, in workers:
//
//	warm = min(ceil(n / jobs_per_worker), max_idle_workers, max_workers), 0 when x < 0.05
//
// Idle workers above the desired count are then kept one measured
// provisioning time at most (Decision.IdleTimeout).
func autoWarm(h History, s Settings, slots int, now time.Time) warmResult {
	window := s.arrivalWindow()
	rate := h.Arrivals.Value(now, window)
	p := h.Provisioning.Value
	if h.Provisioning.N == 0 || p <= 0 {
		return warmResult{explain: fmt.Sprintf("auto: arrivals %.3f/s, no provisioning time measured yet", rate)}
	}
	x := rate * p.Seconds()
	n := poissonCover(x)
	r := warmResult{warm: WorkersFor(n, slots), hold: time.Duration(autoIdleHold * float64(p))}
	var b strings.Builder
	fmt.Fprintf(&b, "auto: arrivals %.3f/s × provisioning %s = %.2f jobs per boot", rate, round(p), x)
	if slots > 1 {
		fmt.Fprintf(&b, ", %d cover 90%% = %d workers of %d slots", n, r.warm, slots)
	} else {
		fmt.Fprintf(&b, ", %d cover 90%%", n)
	}
	switch {
	case s.MaxIdleWorkers > 0 && r.warm > s.MaxIdleWorkers:
		r.warm = s.MaxIdleWorkers
		fmt.Fprintf(&b, ", capped by max_idle_workers %d", s.MaxIdleWorkers)
	case r.warm > s.MaxWorkers:
		r.warm = s.MaxWorkers
		fmt.Fprintf(&b, ", capped by max_workers %d", s.MaxWorkers)
	}
	if r.hold < s.IdleTimeout {
		fmt.Fprintf(&b, "; idle workers above it stop after %s", round(r.hold))
	}
	// The rate decays with no arrivals: recheck when x falls to where
	// the buffer is one worker smaller.
	if r.warm > 0 {
		if lower := coverLimit((r.warm - 1) * slots); lower < x {
			dt := window.Seconds() * math.Log(x/lower)
			r.recheck = now.Add(time.Duration(dt*float64(time.Second)) + time.Millisecond)
		}
	}
	r.explain = b.String()
	return r
}

// poissonCover is the smallest n with P(Poisson(x) ≥ n) ≤ autoMissRate,
// or 0 when x < autoMinArrivals.
func poissonCover(x float64) int {
	if x < autoMinArrivals {
		return 0
	}
	// P(N ≥ n) = 1 − Σ_{i<n} e^−x x^i / i!
	term := math.Exp(-x)
	cdf := 0.0
	for n := 0; ; n++ {
		if 1-cdf <= autoMissRate {
			return n
		}
		cdf += term
		term *= x / float64(n+1)
		if n > 100000 {
			return n
		}
	}
}

// coverLimit is the largest x for which poissonCover(x) ≤ n
// (autoMinArrivals for n = 0). It is a fixed function of n, found by
// bisection once and remembered: the cache changes no result.
func coverLimit(n int) float64 {
	if n <= 0 {
		return autoMinArrivals
	}
	coverLimits.Lock()
	defer coverLimits.Unlock()
	if n < len(coverLimits.v) && coverLimits.v[n] > 0 {
		return coverLimits.v[n]
	}
	lo, hi := 0.0, float64(n)+1
	for range 50 {
		mid := (lo + hi) / 2
		if poissonCover(mid) <= n {
			lo = mid
		} else {
			hi = mid
		}
	}
	if n < 1<<16 {
		for len(coverLimits.v) <= n {
			coverLimits.v = append(coverLimits.v, 0)
		}
		coverLimits.v[n] = lo
	}
	return lo
}

var coverLimits struct {
	sync.Mutex
	v []float64
}

func round(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// Retire reports whether a worker that has run jobsRun jobs and just
// became idle should be stopped (max_jobs_per_worker), with the reason.
// The policy replaces it on the next decision if demand needs it.
func Retire(s Settings, jobsRun int) (bool, string) {
	if s.MaxJobsPerWorker <= 0 || jobsRun < s.MaxJobsPerWorker {
		return false, ""
	}
	return true, fmt.Sprintf("retired after %d job(s): max_jobs_per_worker %d", jobsRun, s.MaxJobsPerWorker)
}
