package policy

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	base := Settings{MinWorkers: 0, MaxWorkers: 10, JobsPerWorker: 1}
	tests := []struct {
		name       string
		st         State
		s          func(*Settings)
		want       int
		wantReason string
	}{
		{name: "no demand", want: 0, wantReason: "desired 0 = pending 0 + running 0"},
		{name: "one job per worker", st: State{Pending: 3, Running: 2}, want: 5, wantReason: "desired 5 = pending 3 + running 2"},
		{name: "slots round up", st: State{Pending: 5}, s: func(s *Settings) { s.JobsPerWorker = 2 }, want: 3,
			wantReason: "desired 3 = ceil((pending 5 + running 0) / 2)"},
		{name: "slots exact", st: State{Pending: 4, Running: 2}, s: func(s *Settings) { s.JobsPerWorker = 3 }, want: 2},
		{name: "warm buffer on top", st: State{Pending: 2}, s: func(s *Settings) { s.IdleWorkers = 2 }, want: 4,
			wantReason: "desired 4 = pending 2 + running 0 + warm 2"},
		{name: "warm buffer alone", s: func(s *Settings) { s.IdleWorkers = 1 }, want: 1},
		{name: "capped by max", st: State{Pending: 9, Running: 3}, s: func(s *Settings) { s.JobsPerWorker = 2; s.IdleWorkers = 1; s.MaxWorkers = 6 }, want: 6,
			wantReason: "desired 6 = ceil((pending 9 + running 3) / 2) + warm 1 = 7, capped by max_workers 6"},
		{name: "raised to min", st: State{Pending: 1}, s: func(s *Settings) { s.MinWorkers = 3 }, want: 3,
			wantReason: "desired 3 = pending 1 + running 0 = 1, raised to min_workers 3"},
		{name: "min equals max", st: State{Pending: 100}, s: func(s *Settings) { s.MinWorkers = 4; s.MaxWorkers = 4 }, want: 4},
		{name: "workers do not count as demand", st: State{Idle: 5, Busy: 2, Provisioning: 3}, want: 0},
		{name: "zero slots treated as one", st: State{Pending: 2}, s: func(s *Settings) { s.JobsPerWorker = 0 }, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.s != nil {
				tt.s(&s)
			}
			got := Decide(tt.st, s, now)
			if got.Desired != tt.want {
				t.Errorf("Desired = %d, want %d (reason %q)", got.Desired, tt.want, got.Reason)
			}
			if tt.wantReason != "" && got.Reason != tt.wantReason {
				t.Errorf("Reason = %q, want %q", got.Reason, tt.wantReason)
			}
		})
	}
}
