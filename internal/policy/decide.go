// Package policy turns a pool's picture of demand and supply into a
// desired worker count (Decide) and the concrete steps to get there (Plan).
// Everything here is a pure function of its arguments: no goroutines, no
// clocks (time is a parameter), no I/O. The daemon's reconcile loop and the
// simulator both call it, so what one does the other reproduces.
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

	IdleTimeout               time.Duration // an idle worker may stop after this long
	ProvisionTimeout          time.Duration // a worker not ready after this long is failed
	MaxConcurrentProvisioning int           // creates in flight at once
}

// State is a pool's demand and supply at one instant.
type State struct {
	Pending int // jobs waiting for a slot
	Running int // jobs running on this pool's workers

	Provisioning int // workers being created, not yet ready
	Idle         int // ready workers without jobs
	Busy         int // ready workers with at least one job
	Draining     int // workers being stopped
	Failed       int // workers that ended badly and await deletion
}

// Current is the number of workers that count as supply: provisioning,
// idle and busy (draining and failed ones are on their way out).
func (s State) Current() int { return s.Provisioning + s.Idle + s.Busy }

// Decision is the desired worker count with the reason for it.
type Decision struct {
	Desired int
	Reason  string
}

// Decide returns how many workers the pool should have. now is unused by
// the v1 rules but is part of the signature so that time-dependent rules
// stay pure.
//
//	desired = clamp(ceil((pending + running) / jobs_per_worker) + idle_workers, min_workers, max_workers)
func Decide(st State, s Settings, now time.Time) Decision {
	_ = now
	slots := max(s.JobsPerWorker, 1)
	jobs := st.Pending + st.Running
	need := ceilDiv(jobs, slots)
	desired := need + s.IdleWorkers

	var b strings.Builder
	if slots == 1 {
		fmt.Fprintf(&b, "pending %d + running %d", st.Pending, st.Running)
	} else {
		fmt.Fprintf(&b, "ceil((pending %d + running %d) / %d)", st.Pending, st.Running, slots)
	}
	if s.IdleWorkers > 0 {
		fmt.Fprintf(&b, " + warm %d", s.IdleWorkers)
	}
	formula := b.String()

	switch {
	case desired > s.MaxWorkers:
		return Decision{Desired: s.MaxWorkers, Reason: fmt.Sprintf("desired %d = %s = %d, capped by max_workers %d", s.MaxWorkers, formula, desired, s.MaxWorkers)}
	case desired < s.MinWorkers:
		return Decision{Desired: s.MinWorkers, Reason: fmt.Sprintf("desired %d = %s = %d, raised to min_workers %d", s.MinWorkers, formula, desired, s.MinWorkers)}
	}
	return Decision{Desired: desired, Reason: fmt.Sprintf("desired %d = %s", desired, formula)}
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
