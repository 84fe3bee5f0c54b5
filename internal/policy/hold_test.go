package policy

import (
	"slices"
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
		name string
		hold IdleHold
		rank int
		want time.Duration
	}{
		// One job by one: kept one boot when a job is expected within it
		// (λB ≥ 1), stopped at once otherwise.
		{name: "a job per boot expected: kept one boot", hold: autoHold(0.06, 0, time.Hour), rank: 1, want: 20 * time.Second},
		{name: "fewer: stopped at once", hold: autoHold(0.04, 0, time.Hour), rank: 1, want: 0},
		// The second idle worker needs two jobs within the boot.
		{name: "the second needs two jobs", hold: autoHold(0.06, 0, time.Hour), rank: 2, want: 0},
		{name: "at four jobs per boot, the third is kept", hold: autoHold(0.2, 0, time.Hour), rank: 3, want: 20 * time.Second},
		{name: "and the fourth is not", hold: autoHold(0.2, 0, time.Hour), rank: 4, want: 0},
		{name: "raised to idle_timeout_min", hold: autoHold(0.0001, 15*time.Second, time.Hour), rank: 1, want: 15 * time.Second},
		{name: "bounded by idle_timeout_max", hold: autoHold(1, 0, 10*time.Second), rank: 1, want: 10 * time.Second},
		{name: "no boot measured: the max", hold: idleHold(History{}, Settings{IdleTimeoutAuto: true, IdleTimeoutMax: 3 * time.Minute}), rank: 1, want: 3 * time.Minute},
		{name: "max defaults", hold: idleHold(History{}, Settings{IdleTimeoutAuto: true}), rank: 1, want: DefaultIdleTimeoutMax},
		{name: "fixed", hold: idleHold(History{}, Settings{IdleTimeout: 90 * time.Second}), rank: 5, want: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.hold.For(tt.rank, t0); got != tt.want {
				t.Errorf("hold %v, want %v", got, tt.want)
			}
		})
	}
}

// The hold takes the lower of the last minute's rate and the window's:
// right after a batch the last minute holds the batch's own jobs, after a
// burst has ended the window's average is still the burst's; holding
// pays only for jobs still to come.
func TestIdleHoldTakesTheLowerRate(t *testing.T) {
	s := Settings{IdleTimeoutAuto: true, IdleTimeoutMax: time.Hour}
	hold := func(long, recent float64) IdleHold {
		t.Helper()
		return idleHold(History{Arrivals: Rate{PerSecond: long, At: t0}, RecentArrivals: Rate{PerSecond: recent, At: t0}, Boots: fixedBoots(20 * time.Second)}, s)
	}
	tests := []struct {
		name         string
		long, recent float64
		after        time.Duration // since the last job
		want         time.Duration
	}{
		{name: "both a job per boot: kept", long: 0.06, recent: 0.06, want: 20 * time.Second},
		// The wait targets take the last minute here (0.5/s, far above
		// the window's noise); the hold does not.
		{name: "a batch just came, quiet otherwise: stopped", long: 0.01, recent: 0.5, want: 0},
		{name: "a burst has ended: stopped", long: 0.2, recent: 0.001, want: 0},
		{name: "the last minute within the window's noise: the window's", long: 0.2, recent: 0.15, want: 20 * time.Second},
		// 0.07/s, the last job 100 s ago: both averages are still above
		// a job per boot (the window's at 0.059/s, the last minute's within
		// its noise), but a rate above 3/100 s would have brought a job.
		{name: "no job for 100 s: stopped", long: 0.07, recent: 0.07, after: 100 * time.Second, want: 0},
		{name: "no job for 10 s: kept", long: 0.07, recent: 0.07, after: 10 * time.Second, want: 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hold(tt.long, tt.recent)
			if got := h.For(1, t0.Add(tt.after)); got != tt.want {
				at := t0.Add(tt.after)
				r, recent := h.History.arrivalRate(s, at)
				t.Errorf("hold %v, want %v (hold rate %.3f/s; the targets' rate %.3f/s, last minute %v)", got, tt.want, h.History.holdRate(s, at), r, recent)
			}
		})
	}
}

// Bursts at the same rate are fewer, larger arrivals: at four jobs per
// boot in batches (dispersion 4), two idle workers are worth keeping, not
// three.
func TestWorthHoldingUnderBursts(t *testing.T) {
	for rank, want := range map[int]bool{1: true, 2: true, 3: false} {
		if got := worthHolding(rank, 0.2, 4, 20); got != want {
			t.Errorf("rank %d: worth holding %v, want %v", rank, got, want)
		}
	}
	if worthHolding(1, 0, 1, 20) {
		t.Errorf("no arrivals: worth holding")
	}
}

// With no arrivals the rate decays, and a hold ends when the rate falls
// below the break-even: stopAt is that instant.
func TestIdleHoldStopAt(t *testing.T) {
	// Just above λB = 1: the long average falls to 0.05/s after
	// 600 s × ln(1.01) = 6 s (the integral's midpoint rule puts the
	// break-even a little lower).
	h := autoHold(0.0505, 0, time.Hour)
	since := t0.Add(-10 * time.Second)
	got := h.stopAt(1, since, t0)
	if d := got.Sub(t0); d < 5500*time.Millisecond || d > 7*time.Second {
		t.Errorf("stop at %v, want about 6s", d)
	}
	if h.For(1, got) != 0 || h.For(1, got.Add(-6*time.Second)) != 20*time.Second {
		t.Errorf("the hold does not end within 6 s before %v", got.Sub(t0))
	}
	// Well above it, the hold runs its course: one boot after since.
	if got := autoHold(0.1, 0, time.Hour).stopAt(1, since, t0); got.Sub(since) != 20*time.Second {
		t.Errorf("stop at %v after since, want 20s", got.Sub(since))
	}
	if got := (IdleHold{Fixed: time.Minute}).stopAt(1, since, t0); !got.Equal(since.Add(time.Minute)) {
		t.Errorf("fixed hold: stop at %v", got)
	}
}

// The plan stops the idle workers above the desired count whose hold has
// passed: the oldest ranks last (the shortest hold), the youngest first.
func TestMakePlanWithAnAutoHold(t *testing.T) {
	s := Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeoutAuto: true, IdleTimeoutMax: time.Hour, MaxConcurrentProvisioning: 1}
	d := Decision{Desired: 0, Hold: autoHold(0.2, 0, time.Hour)} // ranks 1-3 kept 20 s, 4 and up stopped at once
	idle := func(ago time.Duration, ids ...domain.WorkerID) []Candidate {
		var out []Candidate
		for _, id := range ids {
			out = append(out, Candidate{id, at(-ago)})
		}
		return out
	}
	tests := []struct {
		name     string
		idle     []Candidate
		wantStop []domain.WorkerID
	}{
		{name: "each by its rank", idle: idle(8*time.Second, "a", "b", "c", "d", "e"), wantStop: []domain.WorkerID{"a", "b"}},
		{name: "three are kept", idle: idle(8*time.Second, "a", "b", "c"), wantStop: nil},
		{name: "all past every hold", idle: idle(time.Minute, "a", "b", "c", "d"), wantStop: []domain.WorkerID{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(State{Idle: len(tt.idle)}, s, d, Supply{IdleOldestFirst: seq(tt.idle...)}, t0)
			if !slices.Equal(p.Stop, tt.wantStop) {
				t.Fatalf("stop %v, want %v", p.Stop, tt.wantStop)
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
	for rate, want := range map[float64]string{
		0.06: "desired 1 = pending 0 + running 1; idle_timeout auto: an idle worker above it is kept 20s, one boot (a job within it is likely enough)",
		0.01: "desired 1 = pending 0 + running 1; idle_timeout auto: an idle worker above it stops after 0s (a job within one boot, 20s, is too unlikely)",
	} {
		st := State{Busy: 2, Running: 1, History: History{Arrivals: Rate{PerSecond: rate, At: t0}, RecentArrivals: Rate{PerSecond: rate, At: t0}, Boots: fixedBoots(20 * time.Second)}}
		d := Decide(st, s, t0)
		if d.Reason != want || !d.Hold.Auto {
			t.Errorf("reason %q\nwant   %q", d.Reason, want)
		}
	}
}
