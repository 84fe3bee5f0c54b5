package lease

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Timing is the lease protocol's clock arithmetic. Only durations
// measured on one process's monotonic clock are compared, never two
// processes' wall clocks, so the only assumption about clocks is Drift:
// every replica's clock runs at a rate within Drift of true time.
//
// The argument (docs/operations.md, "High availability"): a holder that
// sent its last successful renewal at s acts until s + TTL - Margin on its
// own clock; any other replica first sees that renewal at some o >= s and
// may take over only when its own clock says TTL has passed since o with
// no newer renewal. In true time the holder stops by s + (TTL-Margin)/(1-Drift)
// and the other starts after o + TTL/(1+Drift), which is later as long as
// Margin >= 2*Drift*TTL/(1+Drift); Margin is 2*Drift*TTL plus Slack, which
// covers the moment between the holder's last check and its call leaving
// the process.
type Timing struct {
	// TTL is how long a session may go without a renewal before another
	// replica may take its pools, measured by that replica's clock from
	// when it saw the last renewal.
	TTL time.Duration
	// RenewEvery is how often the holder renews (and how often a replica
	// re-checks the bucket when nothing else wakes it).
	RenewEvery time.Duration
	// Drift bounds how far any replica's clock rate strays from true time
	// (0.005 is 0.5%, ten times the most NTP lets a clock slew).
	Drift float64
	// Slack is added to the drift allowance: the time between the fence's
	// last "yes" and the provider call leaving the process.
	Slack time.Duration
	// OpTimeout bounds one call to the bucket.
	OpTimeout time.Duration
}

// DefaultTiming rides out the kill -9 of the NATS server that leads the
// lease bucket: its Raft group elects a new leader 4 to 9 s later (the
// nats-server election timeout), and Tolerance is 12.6 s.
func DefaultTiming() Timing {
	return Timing{TTL: 15 * time.Second, RenewEvery: 2 * time.Second, Drift: 0.005, Slack: 250 * time.Millisecond, OpTimeout: 2 * time.Second}
}

// Margin is how much earlier than TTL a holder stops acting: the drift
// allowance 2*Drift*TTL plus Slack.
func (t Timing) Margin() time.Duration {
	return t.Slack + time.Duration(math.Ceil(2*t.Drift*float64(t.TTL)))
}

// MayActUntil is the fence of a renewal sent at sent (the holder's clock).
func (t Timing) MayActUntil(sent time.Time) time.Time { return sent.Add(t.TTL - t.Margin()) }

// Tolerance is the longest bucket outage a healthy holder rides out
// without losing its fence, in the worst case (the outage starts just
// before a renewal was due).
func (t Timing) Tolerance() time.Duration { return t.TTL - t.Margin() - t.RenewEvery }

// Stale reports whether a session last seen to change at seen may be taken
// over at now. holderTTL is the TTL the holder wrote in its session; the
// longer of the two counts, so replicas configured differently during a
// rollout stay safe.
func (t Timing) Stale(seen, now time.Time, holderTTL time.Duration) bool {
	return now.Sub(seen) >= max(t.TTL, holderTTL)
}

// Validate names every setting that breaks the argument.
func (t Timing) Validate() error {
	var errs []error
	if t.TTL <= 0 {
		errs = append(errs, fmt.Errorf("lease ttl %v must be positive", t.TTL))
	}
	if t.RenewEvery <= 0 {
		errs = append(errs, fmt.Errorf("renew interval %v must be positive", t.RenewEvery))
	}
	if t.OpTimeout <= 0 {
		errs = append(errs, fmt.Errorf("bucket call timeout %v must be positive", t.OpTimeout))
	}
	if t.Drift < 0 || t.Drift > 0.1 || math.IsNaN(t.Drift) {
		errs = append(errs, fmt.Errorf("clock drift %v must be between 0 and 0.1", t.Drift))
	}
	if t.Slack < 0 {
		errs = append(errs, fmt.Errorf("safety slack %v must not be negative", t.Slack))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if t.Margin() >= t.TTL/2 {
		errs = append(errs, fmt.Errorf("safety margin %v (slack %v + 2 x drift %v x ttl) must be under half the lease ttl %v: raise the ttl", t.Margin(), t.Slack, t.Drift, t.TTL))
	}
	if t.RenewEvery+t.OpTimeout >= t.TTL-t.Margin() {
		errs = append(errs, fmt.Errorf("renew interval %v + bucket call timeout %v must be under lease ttl %v - safety margin %v, or a slow renewal loses the lease: renew more often (ttl/5 is a good value)", t.RenewEvery, t.OpTimeout, t.TTL, t.Margin()))
	}
	return errors.Join(errs...)
}
