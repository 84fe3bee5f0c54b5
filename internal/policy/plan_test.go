package policy

import (
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

func seq(cs ...Candidate) iter.Seq[Candidate] { return slices.Values(cs) }

func TestMakePlan(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	s := Settings{MinWorkers: 0, MaxWorkers: 10, JobsPerWorker: 1,
		IdleTimeout: time.Minute, ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: 3}

	tests := []struct {
		name         string
		st           State
		desired      int
		sup          Supply
		wantCreate   int
		wantStop     []domain.WorkerID
		wantTimedOut []domain.WorkerID
		wantWake     time.Time
		wantBlocked  bool
		// wantBlockedAs is the exact reason, when it matters.
		wantBlockedAs string
		wantCancel    []domain.WorkerID
		// boot, when set, is the measured median boot.
		boot time.Duration
	}{
		{name: "steady", st: State{Busy: 2}, desired: 2},
		{name: "scale up within the concurrency bound", desired: 2, wantCreate: 2},
		{name: "scale up bounded by max_concurrent_provisioning", desired: 8, wantCreate: 3},
		{name: "provisioning counts against the bound", st: State{Provisioning: 2}, desired: 8, wantCreate: 1,
			sup:      Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(time.Second)}, Candidate{"p2", ago(time.Second)})},
			wantWake: ago(time.Second).Add(5 * time.Minute)},
		{name: "provisioning counts as supply", st: State{Provisioning: 2}, desired: 2,
			sup: Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(time.Minute)}, Candidate{"p2", ago(time.Second)})}, wantWake: ago(time.Minute).Add(5 * time.Minute)},
		{name: "backoff holds creates", desired: 2, sup: Supply{CreateBlockedUntil: now.Add(10 * time.Second)},
			wantCreate: 0, wantBlocked: true, wantWake: now.Add(10 * time.Second)},
		{name: "backoff in the past is ignored", desired: 1, sup: Supply{CreateBlockedUntil: now.Add(-time.Second)}, wantCreate: 1},
		{name: "an unavailable provider holds creates with no wake-up", desired: 2, sup: Supply{Unavailable: "provider docker unavailable: x"},
			wantCreate: 0, wantBlocked: true, wantBlockedAs: "provider docker unavailable: x"},
		{name: "unavailable wins over a backoff", desired: 2, sup: Supply{Unavailable: "down", CreateBlockedUntil: now.Add(time.Minute)},
			wantCreate: 0, wantBlocked: true, wantBlockedAs: "down"},
		{name: "unavailable does not hold a scale-down", st: State{Idle: 1}, desired: 0,
			sup: Supply{Unavailable: "down", IdleOldestFirst: seq(Candidate{"i1", ago(5 * time.Minute)})}, wantStop: []domain.WorkerID{"i1"}},
		{name: "stop only idle past idle_timeout, longest idle first", st: State{Idle: 3, Busy: 1}, desired: 1,
			sup: Supply{IdleOldestFirst: seq(
				Candidate{"i1", ago(5 * time.Minute)}, Candidate{"i2", ago(2 * time.Minute)}, Candidate{"i3", ago(10 * time.Second)})},
			wantStop: []domain.WorkerID{"i1", "i2"}, wantWake: ago(10 * time.Second).Add(time.Minute)},
		{name: "stop no more than the excess", st: State{Idle: 3}, desired: 2,
			sup:      Supply{IdleOldestFirst: seq(Candidate{"i1", ago(5 * time.Minute)}, Candidate{"i2", ago(5 * time.Minute)}, Candidate{"i3", ago(5 * time.Minute)})},
			wantStop: []domain.WorkerID{"i1"}},
		{name: "young idle workers wait", st: State{Idle: 2}, desired: 0,
			sup:      Supply{IdleOldestFirst: seq(Candidate{"i1", ago(30 * time.Second)}, Candidate{"i2", ago(time.Second)})},
			wantWake: ago(30 * time.Second).Add(time.Minute)},
		{name: "busy workers are never stopped", st: State{Busy: 4}, desired: 0, sup: Supply{IdleOldestFirst: seq()}},
		{name: "provision timeout", st: State{Provisioning: 2}, desired: 2,
			sup:          Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(6 * time.Minute)}, Candidate{"p2", ago(time.Minute)})},
			wantTimedOut: []domain.WorkerID{"p1"}, wantWake: ago(time.Minute).Add(5 * time.Minute)},
		{name: "timed-out workers are replaced by the next plan, not this one", st: State{Provisioning: 1}, desired: 1,
			sup: Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(6 * time.Minute)})}, wantTimedOut: []domain.WorkerID{"p1"}},
		{name: "surplus booting workers stop, newest first", st: State{Provisioning: 3, Busy: 1}, desired: 2,
			sup: Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(30 * time.Second)}, Candidate{"p2", ago(20 * time.Second)}, Candidate{"p3", ago(time.Second)}),
				CancellableNewestFirst: seq(Candidate{"p3", ago(time.Second)}, Candidate{"p2", ago(20 * time.Second)}, Candidate{"p1", ago(30 * time.Second)})},
			wantCancel: []domain.WorkerID{"p3", "p2"}, wantWake: ago(30 * time.Second).Add(5 * time.Minute)},
		{name: "held idle workers stay, booting ones stop instead", st: State{Idle: 1, Provisioning: 2}, desired: 1,
			sup: Supply{IdleOldestFirst: seq(Candidate{"i1", ago(10 * time.Second)}),
				CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})},
			wantCancel: []domain.WorkerID{"p2", "p1"}, wantWake: ago(10 * time.Second).Add(time.Minute)},
		{name: "due idle workers stop first, then booting ones", st: State{Idle: 1, Provisioning: 2}, desired: 1,
			sup: Supply{IdleOldestFirst: seq(Candidate{"i1", ago(2 * time.Minute)}),
				CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})},
			wantStop: []domain.WorkerID{"i1"}, wantCancel: []domain.WorkerID{"p2"}},
		{name: "a hold no longer than the measured boot: booting workers boot", st: State{Provisioning: 2}, desired: 0, boot: 2 * time.Minute,
			sup: Supply{CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})}},
		{name: "a hold longer than the measured boot: they stop", st: State{Provisioning: 2}, desired: 1, boot: 20 * time.Second,
			sup: Supply{CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})}, wantCancel: []domain.WorkerID{"p2"}},
		{name: "timed-out workers are not stopped twice and leave the excess", st: State{Provisioning: 3}, desired: 1,
			sup: Supply{ProvisioningOldestFirst: seq(Candidate{"p1", ago(6 * time.Minute)}, Candidate{"p2", ago(time.Minute)}, Candidate{"p3", now}),
				CancellableNewestFirst: seq(Candidate{"p3", now}, Candidate{"p2", ago(time.Minute)}, Candidate{"p1", ago(6 * time.Minute)})},
			wantTimedOut: []domain.WorkerID{"p1"}, wantCancel: []domain.WorkerID{"p3"}, wantWake: ago(time.Minute).Add(5 * time.Minute)},
		{name: "the caller's candidates only: none given, none stopped", st: State{Provisioning: 2}, desired: 0,
			sup: Supply{CancellableNewestFirst: seq()}},
		{name: "no sequence: booting workers are never stopped", st: State{Provisioning: 2}, desired: 0},
		{name: "a scale-up stops none", st: State{Provisioning: 2}, desired: 3, wantCreate: 1,
			sup: Supply{CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			if tt.boot > 0 {
				for range 5 {
					st.History.Boots = st.History.Boots.Add(tt.boot)
				}
			}
			got := MakePlan(st, s, Decision{Desired: tt.desired}, tt.sup, now)
			if !slices.Equal(got.Cancel, tt.wantCancel) {
				t.Errorf("Cancel = %v, want %v", got.Cancel, tt.wantCancel)
			}
			if (len(got.Cancel) > 0) != strings.HasPrefix(got.CancelReason, "stopped while booting: surplus") {
				t.Errorf("CancelReason = %q with %d cancelled", got.CancelReason, len(got.Cancel))
			}
			if got.Create != tt.wantCreate {
				t.Errorf("Create = %d, want %d", got.Create, tt.wantCreate)
			}
			if !slices.Equal(got.Stop, tt.wantStop) {
				t.Errorf("Stop = %v, want %v", got.Stop, tt.wantStop)
			}
			if !slices.Equal(got.TimedOut, tt.wantTimedOut) {
				t.Errorf("TimedOut = %v, want %v", got.TimedOut, tt.wantTimedOut)
			}
			if !got.NextWake.Equal(tt.wantWake) {
				t.Errorf("NextWake = %v, want %v", got.NextWake, tt.wantWake)
			}
			if (got.Blocked != "") != tt.wantBlocked || (tt.wantBlockedAs != "" && got.Blocked != tt.wantBlockedAs) {
				t.Errorf("Blocked = %q, want blocked %v %q", got.Blocked, tt.wantBlocked, tt.wantBlockedAs)
			}
		})
	}
}

func TestMakePlanReadsOnlyWhatItNeeds(t *testing.T) {
	now := time.Now()
	read := 0
	many := func(yield func(Candidate) bool) {
		for i := range 100000 {
			read++
			if !yield(Candidate{ID: domain.WorkerID(rune('a' + i%26)), Since: now.Add(-time.Hour)}) {
				return
			}
		}
	}
	s := Settings{MaxWorkers: 200000, JobsPerWorker: 1, IdleTimeout: time.Minute, MaxConcurrentProvisioning: 1}
	p := MakePlan(State{Idle: 100000}, s, Decision{Desired: 99998}, Supply{IdleOldestFirst: many}, now)
	if len(p.Stop) != 2 || read != 3 {
		t.Fatalf("stopped %d after reading %d idle workers; want 2 stops reading at most 3", len(p.Stop), read)
	}
}

// With idle_timeout: auto the hold is at most one boot, so a booting
// worker above the desired count boots (and stops as it becomes ready if
// a job within a boot is unlikely): stopping it earlier was measured to
// cost more. An idle_timeout_min above the boot holds it longer, and then
// it stops while booting.
func TestMakePlanAutoHoldAndBootingWorkers(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var h History
	for range 5 {
		h.Boots = h.Boots.Add(20 * time.Second)
	}
	sup := Supply{CancellableNewestFirst: seq(Candidate{"p2", now}, Candidate{"p1", now})}
	for _, tt := range []struct {
		name     string
		min      time.Duration
		boots    bool
		want     int
		inReason string
	}{
		{name: "auto: they boot", boots: true},
		{name: "auto, no boot measured yet: they boot", boots: false, min: time.Minute},
		{name: "auto with idle_timeout_min 1m: they stop", boots: true, min: time.Minute, want: 2, inReason: "would idle 1m0s above the desired count, longer than the 20s boot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeoutAuto: true, IdleTimeoutMin: tt.min, IdleTimeoutMax: 5 * time.Minute,
				ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: 3}
			st := State{Provisioning: 2}
			if tt.boots {
				st.History = h
			}
			d := Decide(st, s, now)
			p := MakePlan(st, s, d, sup, now)
			if len(p.Cancel) != tt.want || !strings.Contains(p.CancelReason, tt.inReason) {
				t.Fatalf("Cancel %v (%q), want %d containing %q", p.Cancel, p.CancelReason, tt.want, tt.inReason)
			}
		})
	}
}
