package policy

import (
	"math"
	"testing"
	"time"
)

func TestRateConvergesAndDecays(t *testing.T) {
	w := 10 * time.Minute
	var r Rate
	// One event every 2 s for an hour: 0.5/s.
	for i := range 1800 {
		r = r.Add(at(time.Duration(i)*2*time.Second), w)
	}
	last := at(3598 * time.Second)
	if v := r.Value(last, w); math.Abs(v-0.5) > 0.01 {
		t.Errorf("rate after an hour at 0.5/s = %.4f", v)
	}
	if v := r.Value(last.Add(w), w); math.Abs(v-0.5/math.E) > 0.01 {
		t.Errorf("one window later = %.4f, want %.4f", v, 0.5/math.E)
	}
	// Out-of-order events count at the latest time.
	r2 := r.Add(last.Add(-time.Minute), w)
	if !r2.At.Equal(last) || r2.PerSecond <= r.PerSecond {
		t.Errorf("late event: %+v", r2)
	}
	if (Rate{}).Value(t0, w) != 0 {
		t.Errorf("no events: nonzero rate")
	}
}

func TestHistoryQueuedAndProvisioned(t *testing.T) {
	s := Settings{ArrivalWindow: time.Minute}
	var h History
	for i := range 600 {
		h.Queued(at(time.Duration(i)*time.Second), s)
	}
	if v := h.Arrivals.Value(at(599*time.Second), time.Minute); math.Abs(v-1) > 0.01 {
		t.Errorf("1/s for 10 minutes with a 1m window: %.3f", v)
	}
	h.Provisioned(12 * time.Second)
	if h.Boots.Median() != 12*time.Second || h.Boots.N != 1 {
		t.Errorf("boot times %+v", h.Boots)
	}
}
