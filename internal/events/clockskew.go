package events

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// CheckTime refuses an event whose time lies more than MaxClockSkew after
// the time the stream stored it: a scheduler's clock that far ahead would
// make waits and reaction times negative and keep a stale job from aging.
// The stream's timestamp is the reference, not the daemon's clock, so a
// refold of the retained stream decides the same way.
func (d Decoder) CheckTime(ev domain.JobEvent) error {
	if d.MaxClockSkew <= 0 || ev.Time.IsZero() || ev.Stored.IsZero() {
		return nil
	}
	if ahead := ev.Time.Sub(ev.Stored); ahead > d.MaxClockSkew {
		return invalid(domain.ReasonFutureTime, "time %s is %s ahead of the stream's clock, more than nats.max_clock_skew %s",
			ev.Time.UTC().Format(time.RFC3339Nano), ahead.Round(time.Millisecond), d.MaxClockSkew)
	}
	return nil
}
