package policy

import (
	"fmt"
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

func TestAverage(t *testing.T) {
	var a Average
	a = a.Add(20 * time.Second)
	if a.Value != 20*time.Second {
		t.Fatalf("first sample: %v", a.Value)
	}
	a = a.Add(40 * time.Second)
	if a.Value != 30*time.Second {
		t.Fatalf("two samples: %v", a.Value)
	}
	for range 100 {
		a = a.Add(10 * time.Second)
	}
	if a.Value < 10*time.Second || a.Value > 10*time.Second+time.Millisecond {
		t.Fatalf("after many: %v", a.Value)
	}
}

func TestPoissonCover(t *testing.T) {
	tests := []struct {
		x    float64
		want int
	}{
		{0, 0}, {0.04, 0}, // too few arrivals to keep a worker warm
		{0.06, 1}, // P(N ≥ 1) = 5.8%
		{0.2, 2},  // P(N ≥ 1) = 18%, P(N ≥ 2) = 1.8%
		{1, 3},    // P(N ≥ 2) = 26%, P(N ≥ 3) = 8.0%
		{2, 5},    // P(N ≥ 4) = 14%, P(N ≥ 5) = 5.3%
		{10, 15},  // P(N ≥ 14) = 13.6%, P(N ≥ 15) = 8.3%
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.x), func(t *testing.T) {
			if got := poissonCover(tt.x); got != tt.want {
				t.Errorf("poissonCover(%g) = %d, want %d", tt.x, got, tt.want)
			}
			if tt.want > 0 {
				if lim := coverLimit(tt.want); lim < tt.x || poissonCover(lim) != tt.want || poissonCover(lim*1.001+1e-6) <= tt.want {
					t.Errorf("coverLimit(%d) = %g is not where the cover grows past %d", tt.want, lim, tt.want)
				}
			}
		})
	}
}

func TestDecideAutoWarm(t *testing.T) {
	w := DefaultArrivalWindow
	rate := func(perSec float64) Rate { return Rate{PerSecond: perSec, At: t0} }
	prov := func(d time.Duration) Average { return Average{Value: d, N: 3} }
	base := Settings{MaxWorkers: 50, JobsPerWorker: 1, IdleAuto: true, IdleTimeout: 5 * time.Minute}
	tests := []struct {
		name     string
		st       State
		s        func(*Settings)
		want     int
		wantWarm int
		reason   string
		wake     bool
		hold     time.Duration
	}{
		{name: "nothing measured yet", st: State{Pending: 2}, want: 2,
			reason: "desired 2 = pending 2 + running 0 + warm 0 (auto: arrivals 0.000/s, no provisioning time measured yet)"},
		{name: "rate × provisioning", st: State{Running: 3, History: History{Arrivals: rate(0.05), Provisioning: prov(20 * time.Second)}},
			want: 6, wantWarm: 3, wake: true, hold: 20 * time.Second,
			reason: "desired 6 = pending 0 + running 3 + warm 3 (auto: arrivals 0.050/s × provisioning 20s = 1.00 jobs per boot, 3 cover 90%; idle workers above it stop after 20s)"},
		{name: "a trickle keeps none", st: State{History: History{Arrivals: rate(0.001), Provisioning: prov(20 * time.Second)}}, want: 0, hold: 20 * time.Second},
		{name: "per job slot", st: State{Pending: 9, Running: 3, History: History{Arrivals: rate(0.05), Provisioning: prov(40 * time.Second)}},
			s: func(s *Settings) { s.JobsPerWorker = 2; s.MaxWorkers = 8 }, want: 8, wantWarm: 3, wake: true, hold: 40 * time.Second,
			reason: "desired 8 = ceil((pending 9 + running 3) / 2) + warm 3 (auto: arrivals 0.050/s × provisioning 40s = 2.00 jobs per boot, 5 cover 90% = 3 workers of 2 slots; idle workers above it stop after 40s) = 9, capped by max_workers 8"},
		{name: "capped by max_idle_workers", st: State{History: History{Arrivals: rate(1), Provisioning: prov(30 * time.Second)}},
			s: func(s *Settings) { s.MaxIdleWorkers = 5 }, want: 5, wantWarm: 5, wake: true, hold: 30 * time.Second,
			reason: "desired 5 = pending 0 + running 0 + warm 5 (auto: arrivals 1.000/s × provisioning 30s = 30.00 jobs per boot, 38 cover 90%, capped by max_idle_workers 5; idle workers above it stop after 30s)"},
		{name: "capped by max_workers", st: State{History: History{Arrivals: rate(1), Provisioning: prov(30 * time.Second)}},
			s: func(s *Settings) { s.MaxWorkers = 8 }, want: 8, wantWarm: 8, wake: true, hold: 30 * time.Second},
		{name: "decayed since the last arrival", st: State{History: History{Arrivals: Rate{PerSecond: 0.05, At: t0.Add(-w)}, Provisioning: prov(20 * time.Second)}},
			want: 2, wantWarm: 2, wake: true, hold: 20 * time.Second},
		{name: "idle_timeout shorter than a boot stays", st: State{History: History{Arrivals: rate(0.05), Provisioning: prov(20 * time.Second)}},
			s: func(s *Settings) { s.IdleTimeout = 10 * time.Second }, want: 3, wantWarm: 3, wake: true},
		{name: "a fixed count is not auto", st: State{History: History{Arrivals: rate(1), Provisioning: prov(30 * time.Second)}},
			s: func(s *Settings) { s.IdleAuto = false; s.IdleWorkers = 1 }, want: 1, wantWarm: 1, reason: "desired 1 = pending 0 + running 0 + warm 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.s != nil {
				tt.s(&s)
			}
			d := Decide(tt.st, s, t0)
			if d.Desired != tt.want || d.Warm != tt.wantWarm {
				t.Errorf("Desired %d warm %d, want %d %d (reason %q)", d.Desired, d.Warm, tt.want, tt.wantWarm, d.Reason)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.reason)
			}
			if tt.wake != !d.RecheckAt.IsZero() {
				t.Errorf("RecheckAt = %v, want a wake-up: %v", d.RecheckAt, tt.wake)
			}
			if d.Hold.Fixed != tt.hold && !(tt.hold == 0 && d.Hold.Fixed == s.IdleTimeout) {
				t.Errorf("Hold = %v, want %v", d.Hold.Fixed, tt.hold)
			}
		})
	}
}

// With no arrivals the buffer shrinks one worker at a time, each at the
// instant RecheckAt names, and reaches zero.
func TestAutoWarmDecaysToZero(t *testing.T) {
	s := Settings{MaxWorkers: 50, JobsPerWorker: 1, IdleAuto: true}
	st := State{History: History{Arrivals: Rate{PerSecond: 0.2, At: t0}, Provisioning: Average{Value: 20 * time.Second, N: 1}}}
	now := t0
	prev := Decide(st, s, now).Warm
	if prev != 8 { // x = 4: P(N ≥ 7) = 11%, P(N ≥ 8) = 5.1%
		t.Fatalf("initial warm %d, want 8", prev)
	}
	for steps := 0; prev > 0; steps++ {
		d := Decide(st, s, now)
		if d.RecheckAt.IsZero() {
			t.Fatalf("warm %d with no recheck", d.Warm)
		}
		now = d.RecheckAt
		next := Decide(st, s, now).Warm
		if next != prev-1 {
			t.Fatalf("at %v warm went %d -> %d", now.Sub(t0), prev, next)
		}
		prev = next
		if steps > 20 {
			t.Fatal("does not converge")
		}
	}
	// From x = 4 to x < 0.05 is a decay of ln(80) = 4.4 windows.
	if d := now.Sub(t0); d < 4*DefaultArrivalWindow || d > 5*DefaultArrivalWindow {
		t.Errorf("took %v to empty the buffer", d)
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
	if h.Provisioning.Value != 12*time.Second || h.Provisioning.N != 1 {
		t.Errorf("provisioning %+v", h.Provisioning)
	}
}
