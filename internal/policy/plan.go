package policy

import (
	"fmt"
	"iter"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Candidate is a worker the plan may act on, with the instant that matters
// for it: when it became idle, or when its provisioning started.
type Candidate struct {
	ID    domain.WorkerID
	Since time.Time
}

// Supply is what Plan needs to know about the workers beyond the counts.
// The sequences must yield oldest first; Plan stops reading them as soon
// as it has what it needs, so a large pool costs only what is acted on.
type Supply struct {
	// IdleOldestFirst yields idle workers, longest idle first.
	IdleOldestFirst iter.Seq[Candidate]
	// ProvisioningOldestFirst yields workers not yet ready, oldest first.
	ProvisioningOldestFirst iter.Seq[Candidate]
	// CancellableNewestFirst yields the workers not yet ready that may be
	// stopped before they boot, newest first: none with a job, none whose
	// create call has not returned (the caller leaves those out; a later
	// plan sees them once it has). Nil: booting workers are never
	// stopped.
	CancellableNewestFirst iter.Seq[Candidate]
	// CreateBlockedUntil holds creates back until then (the backoff after
	// provider failures).
	CreateBlockedUntil time.Time
	// Unavailable, when set, says why the provider cannot be called at
	// all (circuit breaker open, no listing yet): creates wait, with no
	// end time, until the caller says otherwise.
	Unavailable string
}

// Plan is what the reconcile loop should do now.
type Plan struct {
	Create int               // new workers to request
	Stop   []domain.WorkerID // idle workers to drain and stop
	// Cancel are booting workers to stop before they are ready: surplus
	// once the idle workers above the desired count are counted
	// (CancelReason says why).
	Cancel       []domain.WorkerID
	CancelReason string
	TimedOut     []domain.WorkerID // workers not ready within provision_timeout: delete, report failed
	// Blocked says why creates were held back, if they were.
	Blocked string
	// NextWake is when the plan would change with no new input (an idle
	// worker reaching idle_timeout, a provisioning deadline, the end of a
	// backoff); zero if never.
	NextWake time.Time
}

// MakePlan works out the steps that move the pool towards d.Desired:
//   - workers still provisioning after provision_timeout are timed out
//     (and replaced by a later plan);
//   - if supply is short, create up to the shortfall, bounded by
//     max_concurrent_provisioning, by any backoff and by the provider
//     being unavailable;
//   - if supply is long, stop idle workers whose idle time reached
//     idle_timeout (or the decision's IdleTimeout), longest idle first.
//     Busy workers are never chosen;
//   - if supply is still long after that, stop booting workers, newest
//     first, when once ready each would idle longer than a boot
//     (cancelBooting). Workers with a job are never chosen.
func MakePlan(st State, s Settings, d Decision, sup Supply, now time.Time) Plan {
	var p Plan
	hold := d.Hold
	if !hold.Auto && hold.Fixed == 0 {
		hold.Fixed = s.IdleTimeout
	}
	wake := func(t time.Time) {
		if !t.IsZero() && (p.NextWake.IsZero() || t.Before(p.NextWake)) {
			p.NextWake = t
		}
	}

	if sup.ProvisioningOldestFirst != nil {
		for c := range sup.ProvisioningOldestFirst {
			deadline := c.Since.Add(s.ProvisionTimeout)
			if deadline.After(now) {
				wake(deadline)
				break
			}
			p.TimedOut = append(p.TimedOut, c.ID)
		}
	}

	// Timed-out workers still count this round: their replacements wait
	// for the next plan, which sees the backoff their failure causes.
	provisioning := st.Provisioning
	current := st.Current()
	switch {
	case d.Desired > current:
		want := d.Desired - current
		room := max(s.MaxConcurrentProvisioning, 1) - provisioning
		if want > room {
			want = max(room, 0)
		}
		switch {
		case want == 0:
		case sup.Unavailable != "":
			p.Blocked = sup.Unavailable
			want = 0
		case sup.CreateBlockedUntil.After(now):
			p.Blocked = "backing off after provider failures until " + sup.CreateBlockedUntil.UTC().Format(time.RFC3339)
			wake(sup.CreateBlockedUntil)
			want = 0
		}
		p.Create = want
	case d.Desired < current:
		// The oldest idle worker is the last a job would take: it ranks
		// excess-th among those above the desired count, and its hold is
		// the shortest.
		excess := current - d.Desired
		if sup.IdleOldestFirst != nil {
			for c := range sup.IdleOldestFirst {
				if excess == 0 {
					break
				}
				if due := c.Since.Add(hold.For(excess, now)); due.After(now) {
					// Later idlers are younger and rank lower (their holds
					// are no shorter), so none of them is due either.
					wake(hold.stopAt(excess, c.Since, now))
					break
				}
				p.Stop = append(p.Stop, c.ID)
				excess--
			}
		}
		p.cancelBooting(st, s, d, hold, sup, excess-len(p.TimedOut), now)
	}
	return p
}

// cancelBooting stops up to excess booting workers, newest first, when
// each would, once ready, idle above the desired count for longer than
// the boot a replacement costs.
//
// The excess left after the due idle stops counts the idle workers still
// held and the booting ones: of the two, a booting worker is the one to
// lose, since a held idle worker serves a job at once. Kept, a surplus
// booting worker costs the rest of its boot and then its idle hold (the
// hold of the rank it will take, excess-th, as the oldest idle worker's
// above), unless a job takes it first; stopped, it costs a boot later if
// a job comes that it would have served. So it is stopped when that hold
// is longer than one median boot (a fixed idle_timeout of minutes, or an
// idle_timeout_min above the boot): the worker booted while a batch waited,
// whose batch the first workers to boot, or workers freed meanwhile,
// served. With idle_timeout: auto the hold is at most one boot, and a
// surplus worker stops as it becomes ready when a job within a boot is
// unlikely; stopping it earlier was measured to cost more (BENCHMARKS.md,
// policy section: the workers the buffer boots are what meets the wait
// target, and those stopped were booted again). Workers past
// provision_timeout are timed out above, not stopped here.
func (p *Plan) cancelBooting(st State, s Settings, d Decision, hold IdleHold, sup Supply, excess int, now time.Time) {
	if excess <= 0 || sup.CancellableNewestFirst == nil || st.Provisioning == 0 {
		return
	}
	boot := st.History.Boots.Median()
	if hold.Auto && hold.Boot <= 0 {
		return // held idle_timeout_max for want of a boot measured, not for a measured reason
	}
	h := hold.For(excess, now)
	if h <= boot {
		return
	}
	for c := range sup.CancellableNewestFirst {
		if len(p.Cancel) == excess {
			break
		}
		if !c.Since.Add(s.ProvisionTimeout).After(now) {
			continue // timed out above
		}
		p.Cancel = append(p.Cancel, c.ID)
	}
	if len(p.Cancel) > 0 {
		p.CancelReason = fmt.Sprintf("stopped while booting: surplus, desired %d < %d workers (%d booting, %d idle, %d busy); "+
			"once ready it would idle %s above the desired count, longer than the %s boot a replacement costs",
			d.Desired, st.Current(), st.Provisioning, st.Idle, st.Busy, round(h), round(boot))
	}
}
