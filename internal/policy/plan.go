package policy

import (
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
	Create   int               // new workers to request
	Stop     []domain.WorkerID // idle workers to drain and stop
	TimedOut []domain.WorkerID // workers not ready within provision_timeout: delete, report failed
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
//     Busy workers are never chosen.
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
	case d.Desired < current && sup.IdleOldestFirst != nil:
		// The oldest idle worker is the last a job would take: it ranks
		// excess-th among those above the desired count, and its hold is
		// the shortest.
		excess := current - d.Desired
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
	return p
}
