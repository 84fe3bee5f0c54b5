package policy

import (
	"math"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// autoHold is idle_timeout: auto with a 20 s median boot and a steady
// arrival rate (both averages agree) measured at t0.
func autoHold(rate float64, lo, hi time.Duration) IdleHold {
	s := Settings{IdleTimeoutAuto: true, IdleTimeoutMin: lo, IdleTimeoutMax: hi}
	h := History{Arrivals: Rate{PerSecond: rate, At: t0}, RecentArrivals: Rate{PerSecond: rate, At: t0}, Boots: fixedBoots(20 * time.Second)}
	return idleHold(h, s)
}

func TestIdleHoldIsTheBreakEvenOfHoldingAndBooting(t *testing.T) {
	tests := []struct {
		name   string
		hold   IdleHold
		rank   int
		want   time.Duration
		within time.Duration
	}{
		// P(a job within 20 s) = ½ at ln 2 / 20 s: even odds, one boot.
		{name: "even odds: one boot", hold: autoHold(math.Ln2/20, 0, time.Hour), rank: 1, want: 20 * time.Second, within: 10 * time.Millisecond},
		// 0.05/s: P(N ≥ 1 in 20 s) = 1 − e^−1 = 0.632, odds 1.72.
		{name: "likely jobs: longer", hold: autoHold(0.05, 0, time.Hour), rank: 1, want: 34366 * time.Millisecond, within: 10 * time.Millisecond},
		// The second idle worker needs two jobs: P(N ≥ 2) = 0.264, odds 0.359.
		{name: "the second idle worker: shorter", hold: autoHold(0.05, 0, time.Hour), rank: 2, want: 7178 * time.Millisecond, within: 10 * time.Millisecond},
		{name: "a trickle: at once", hold: autoHold(0.0001, 0, time.Hour), rank: 1, want: 40 * time.Millisecond, within: 10 * time.Millisecond},
		{name: "raised to idle_timeout_min", hold: autoHold(0.0001, 15*time.Second, time.Hour), rank: 1, want: 15 * time.Second},
		{name: "bounded by idle_timeout_max", hold: autoHold(1, 0, 2*time.Minute), rank: 1, want: 2 * time.Minute},
		{name: "max defaults", hold: autoHold(1, 0, 0), rank: 1, want: DefaultIdleTimeoutMax},
		{name: "no boot measured: the max", hold: idleHold(History{}, Settings{IdleTimeoutAuto: true, IdleTimeoutMax: 3 * time.Minute}), rank: 1, want: 3 * time.Minute},
		{name: "fixed", hold: idleHold(History{}, Settings{IdleTimeout: 90 * time.Second}), rank: 5, want: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.hold.For(tt.rank, t0)
			if d := got - tt.want; d > tt.within || d < -tt.within {
				t.Errorf("hold %v, want %v", got, tt.want)
			}
		})
	}
}

// With no arrivals the holds shrink as the rate decays; stopAt is the
// instant a worker's idle time meets its shrinking hold.
func TestIdleHoldStopAt(t *testing.T) {
	h := autoHold(0.05, 0, time.Hour)
	since := t0.Add(-10 * time.Second)
	at := h.stopAt(1, since, t0)
	if !at.After(t0) || !at.Before(since.Add(h.For(1, t0))) {
		t.Fatalf("stop at %v: want after now and before the hold at now ends (%v)", at.Sub(t0), since.Add(h.For(1, t0)).Sub(t0))
	}
	if d := at.Sub(since) - h.For(1, at); d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("at %v the worker has idled %v against a hold of %v", at.Sub(t0), at.Sub(since), h.For(1, at))
	}
	if early := at.Add(-100 * time.Millisecond); early.Sub(since) >= h.For(1, early) {
		t.Errorf("already due 100 ms earlier")
	}
	fixed := IdleHold{Fixed: time.Minute}
	if got := fixed.stopAt(1, since, t0); !got.Equal(since.Add(time.Minute)) {
		t.Errorf("fixed hold: stop at %v", got)
	}
}

// The plan stops the idle workers above the desired count whose hold has
// passed: the oldest ranks last (the shortest hold), the youngest first.
func TestMakePlanWithAnAutoHold(t *testing.T) {
	s := Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeoutAuto: true, IdleTimeoutMax: time.Hour, MaxConcurrentProvisioning: 1}
	d := Decision{Desired: 0, Hold: autoHold(0.05, 0, time.Hour)} // holds 34.4 s (rank 1), 7.2 s (rank 2), 1.8 s (rank 3)
	tests := []struct {
		name     string
		idle     []Candidate
		wantStop []domain.WorkerID
	}{
		{name: "each by its rank", idle: []Candidate{{"old", at(-8 * time.Second)}, {"mid", at(-8 * time.Second)}, {"new", at(-8 * time.Second)}},
			wantStop: []domain.WorkerID{"old", "mid"}},
		{name: "young ones wait", idle: []Candidate{{"old", at(-3 * time.Second)}, {"mid", at(-3 * time.Second)}, {"new", at(-3 * time.Second)}},
			wantStop: []domain.WorkerID{"old"}},
		{name: "all past every hold", idle: []Candidate{{"a", at(-time.Minute)}, {"b", at(-time.Minute)}, {"c", at(-time.Minute)}},
			wantStop: []domain.WorkerID{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(State{Idle: len(tt.idle)}, s, d, Supply{IdleOldestFirst: seq(tt.idle...)}, t0)
			if len(p.Stop) != len(tt.wantStop) {
				t.Fatalf("stop %v, want %v", p.Stop, tt.wantStop)
			}
			for i := range p.Stop {
				if p.Stop[i] != tt.wantStop[i] {
					t.Fatalf("stop %v, want %v", p.Stop, tt.wantStop)
				}
			}
			if len(p.Stop) < len(tt.idle) && !p.NextWake.After(t0) {
				t.Errorf("next wake %v: the next idle worker must be rechecked", p.NextWake)
			}
		})
	}
}

// The decision's reason names the automatic hold.
func TestDecideExplainsTheAutoHold(t *testing.T) {
	s := Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeoutAuto: true}
	st := State{Busy: 2, Running: 1, History: History{Arrivals: Rate{PerSecond: math.Ln2 / 20, At: t0}, RecentArrivals: Rate{PerSecond: math.Ln2 / 20, At: t0}, Boots: fixedBoots(20 * time.Second)}}
	d := Decide(st, s, t0)
	want := "desired 1 = pending 0 + running 1; idle_timeout auto: an idle worker above it is kept 20s (boot 20s × the odds of a job within it)"
	if d.Reason != want || !d.Hold.Auto {
		t.Errorf("reason %q\nwant   %q", d.Reason, want)
	}
}
