package engine

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// A job's wait is observed once, when it starts, from its queued event's
// stream time to its started event's; jobs folded from the retained
// stream, jobs started without a queued, moves between workers and
// duplicates are not waits.
func TestJobWaitObservedWhenAPendingJobStarts(t *testing.T) {
	h := newHarness(t, nil)
	// Folded before the stream is caught up: not observed.
	h.job(domain.JobQueued, "old", "")
	h.advance(time.Minute)
	h.job(domain.JobStarted, "old", "w-old")
	h.start()
	if fx := h.e.Take(); len(fx.Waits) != 0 {
		t.Fatalf("waits folded from the retained stream were observed: %+v", fx.Waits)
	}

	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobQueued, "b", "")
	fx := h.reconcile()
	ids := h.ready(fx.Ops)
	h.advance(42 * time.Second)
	h.job(domain.JobStarted, "a", ids[0])
	h.job(domain.JobStarted, "a", ids[0]) // duplicate
	h.advance(8 * time.Second)
	h.job(domain.JobStarted, "b", ids[1])
	h.job(domain.JobStarted, "b", ids[0]) // moved: not a second wait
	h.job(domain.JobStarted, "c", ids[1]) // no queued seen: no wait
	got := h.e.Take().Waits
	want := []time.Duration{42 * time.Second, 50 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("waits %+v, want %v", got, want)
	}
	for i, o := range got {
		if o.Value != want[i] || o.Pool != testPool || o.Provider != "test" {
			t.Errorf("wait %d = %+v, want %v for pool %s", i, o, want[i], testPool)
		}
	}
}
