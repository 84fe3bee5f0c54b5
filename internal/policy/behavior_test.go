package policy

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestDecideStabilization(t *testing.T) {
	s := Settings{MaxWorkers: 50, JobsPerWorker: 1, StabilizationWindow: 5 * time.Minute}
	hist := History{Recent: []Sample{{at(-6 * time.Minute), 20}, {at(-4 * time.Minute), 9}, {at(-time.Minute), 6}}}
	tests := []struct {
		name      string
		st        State
		s         func(*Settings)
		want      int
		wantBound string
		wantWake  time.Time
		reason    string
	}{
		{name: "down to the highest recommendation within the window, not below", st: State{Busy: 12, Running: 2, History: hist},
			want: 9, wantBound: BoundStabilization, wantWake: at(time.Minute),
			reason: "desired 9 = pending 0 + running 2 = 2, held at 9 by scale_down.stabilization_window 5m0s (highest recommendation within it: 9)"},
		{name: "never above the current count", st: State{Busy: 7, Running: 2, History: hist}, want: 7, wantBound: BoundStabilization},
		{name: "scale-up is not stabilized", st: State{Busy: 1, Pending: 30, History: hist}, want: 30},
		{name: "a recommendation above the window's is taken as is", st: State{Busy: 8, Pending: 8, Running: 2, History: hist}, want: 10},
		{name: "window off", st: State{Busy: 12, Running: 2, History: hist}, s: func(s *Settings) { s.StabilizationWindow = 0 }, want: 2},
		{name: "samples out of the window are ignored", st: State{Busy: 12, Running: 2, History: hist},
			s: func(s *Settings) { s.StabilizationWindow = 2 * time.Minute }, want: 6, wantBound: BoundStabilization, wantWake: at(time.Minute)},
		{name: "empty history", st: State{Busy: 12, Running: 2}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s
			if tt.s != nil {
				tt.s(&s)
			}
			d := Decide(tt.st, s, t0)
			if d.Desired != tt.want || d.Bound != tt.wantBound {
				t.Errorf("Desired %d bound %q, want %d %q (reason %q)", d.Desired, d.Bound, tt.want, tt.wantBound, d.Reason)
			}
			if !tt.wantWake.IsZero() && !d.RecheckAt.Equal(tt.wantWake) {
				t.Errorf("RecheckAt %v, want %v", d.RecheckAt, tt.wantWake)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.reason)
			}
		})
	}
}

// Remember keeps a monotonic queue: the window's highest is always first.
func TestHistoryRememberIsAMaxQueue(t *testing.T) {
	s := Settings{StabilizationWindow: 5 * time.Minute}
	var h History
	for i, v := range []int{3, 8, 5, 5, 2, 7} {
		h.Remember(Decision{Recommended: v}, s, at(time.Duration(i)*time.Minute))
	}
	want := []Sample{{at(time.Minute), 8}, {at(5 * time.Minute), 7}}
	if len(h.Recent) != len(want) || h.Recent[0] != want[0] || h.Recent[1] != want[1] {
		t.Fatalf("Recent = %v, want %v", h.Recent, want)
	}
	h.Remember(Decision{Recommended: 1}, s, at(6*time.Minute+time.Second)) // 8 expires
	if top, _ := h.highestSince(at(6*time.Minute + time.Second - 5*time.Minute)); top != 7 {
		t.Fatalf("highest = %d, want 7 (%v)", top, h.Recent)
	}
	for i := range 10000 {
		h.Remember(Decision{Recommended: i % 50}, s, at(time.Hour+time.Duration(i)*time.Second))
	}
	if len(h.Recent) > 50 {
		t.Fatalf("Recent grew to %d samples; at most one per distinct value", len(h.Recent))
	}
	h.Remember(Decision{Recommended: 3}, Settings{}, at(2*time.Hour))
	if len(h.Recent) != 0 {
		t.Fatalf("window off: Recent = %v, want empty", h.Recent)
	}
}

func TestDecideCooldowns(t *testing.T) {
	s := Settings{MaxWorkers: 50, JobsPerWorker: 1,
		ScaleUp: Behavior{Cooldown: 2 * time.Minute}, ScaleDown: Behavior{Cooldown: 5 * time.Minute}}
	tests := []struct {
		name      string
		st        State
		want      int
		wantBound string
		wantWake  time.Time
	}{
		{name: "after a scale-up, no further scale-up", st: State{Busy: 4, Pending: 3, Running: 4, History: History{LastScaleUp: at(-time.Minute)}},
			want: 4, wantBound: BoundCooldown, wantWake: at(time.Minute)},
		{name: "after a scale-up, no scale-down either", st: State{Idle: 4, History: History{LastScaleUp: at(-time.Minute)}},
			want: 4, wantBound: BoundCooldown, wantWake: at(time.Minute)},
		{name: "scale-up cooldown over", st: State{Busy: 4, Pending: 3, Running: 4, History: History{LastScaleUp: at(-2 * time.Minute)}}, want: 7},
		{name: "after a scale-down, its own (longer) cooldown", st: State{Busy: 2, Pending: 3, Running: 2, History: History{LastScaleDown: at(-4 * time.Minute)}},
			want: 2, wantBound: BoundCooldown, wantWake: at(time.Minute)},
		{name: "the later of two cooldowns holds", st: State{Idle: 5, History: History{LastScaleUp: at(-time.Minute), LastScaleDown: at(-2 * time.Minute)}},
			want: 5, wantBound: BoundCooldown, wantWake: at(3 * time.Minute)},
		{name: "no change, no cooldown needed", st: State{Busy: 3, Running: 3, History: History{LastScaleUp: at(-time.Second)}}, want: 3},
		{name: "never scaled", st: State{Pending: 3}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.st, s, t0)
			if d.Desired != tt.want || d.Bound != tt.wantBound {
				t.Errorf("Desired %d bound %q, want %d %q (reason %q)", d.Desired, d.Bound, tt.want, tt.wantBound, d.Reason)
			}
			if !d.RecheckAt.Equal(tt.wantWake) {
				t.Errorf("RecheckAt %v, want %v", d.RecheckAt, tt.wantWake)
			}
			if tt.wantBound == BoundCooldown && !strings.Contains(d.Reason, "cooldown") {
				t.Errorf("reason %q does not name the cooldown", d.Reason)
			}
		})
	}
}

func TestDecideRateLimits(t *testing.T) {
	up := func(w, p int) Settings {
		return Settings{MaxWorkers: 500, JobsPerWorker: 1, ScaleUp: Behavior{Limit: RateLimit{Workers: w, Percent: p, Period: time.Minute}}}
	}
	down := func(w, p int) Settings {
		return Settings{MaxWorkers: 500, JobsPerWorker: 1, ScaleDown: Behavior{Limit: RateLimit{Workers: w, Percent: p, Period: time.Minute}}}
	}
	added := func(n int, ago time.Duration) History { return History{Added: Steps{{at(-ago), n}}} }
	removed := func(n int, ago time.Duration) History { return History{Removed: Steps{{at(-ago), n}}} }
	tests := []struct {
		name      string
		s         Settings
		st        State
		want      int
		wantBound string
		wantWake  time.Time
		reason    string
	}{
		{name: "up: N workers per period", s: up(4, 0), st: State{Busy: 2, Running: 2, Pending: 20}, want: 6, wantBound: BoundRateLimit,
			reason: "desired 6 = pending 20 + running 2 = 22, limited to 6 by scale_up.max 4 per 1m0s (0 added within it)"},
		{name: "up: what was added in the period counts", s: up(4, 0), st: State{Busy: 5, Running: 5, Pending: 20, History: added(3, 20*time.Second)},
			want: 6, wantBound: BoundRateLimit, wantWake: at(40 * time.Second)},
		{name: "up: additions older than the period do not", s: up(4, 0), st: State{Busy: 5, Running: 5, Pending: 20, History: added(3, time.Minute)},
			want: 9, wantBound: BoundRateLimit},
		{name: "up: percent of the count at the period's start", s: up(0, 50), st: State{Busy: 10, Running: 10, Pending: 20}, want: 15, wantBound: BoundRateLimit},
		{name: "up: percent rounds up", s: up(0, 50), st: State{Busy: 3, Running: 3, Pending: 20}, want: 5, wantBound: BoundRateLimit},
		{name: "up: percent still allows one from zero", s: up(0, 100), st: State{Pending: 20}, want: 1, wantBound: BoundRateLimit},
		{name: "up: within the limit", s: up(4, 0), st: State{Busy: 2, Running: 2, Pending: 3}, want: 5},
		{name: "up: replacements above the limit hold the count, never cut it", s: up(2, 0), st: State{Busy: 5, Running: 5, Pending: 3, History: added(5, time.Second)},
			want: 5, wantBound: BoundRateLimit},
		{name: "down: N workers per period", s: down(2, 0), st: State{Idle: 10}, want: 8, wantBound: BoundRateLimit,
			reason: "desired 8 = pending 0 + running 0 = 0, limited to 8 by scale_down.max 2 per 1m0s (0 removed within it)"},
		{name: "down: what was removed in the period counts", s: down(2, 0), st: State{Idle: 9, History: removed(1, 30*time.Second)},
			want: 8, wantBound: BoundRateLimit, wantWake: at(30 * time.Second)},
		{name: "down: percent", s: down(0, 50), st: State{Idle: 10}, want: 5, wantBound: BoundRateLimit},
		{name: "down: percent allows at least one", s: down(0, 10), st: State{Idle: 3}, want: 2, wantBound: BoundRateLimit},
		{name: "down: within the limit", s: down(5, 0), st: State{Idle: 3}, want: 0},
		{name: "max_workers still wins", s: func() Settings { s := down(1, 0); s.MaxWorkers = 4; return s }(), st: State{Idle: 10}, want: 4, wantBound: BoundMaxWorkers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.st, tt.s, t0)
			if d.Desired != tt.want || d.Bound != tt.wantBound {
				t.Errorf("Desired %d bound %q, want %d %q (reason %q)", d.Desired, d.Bound, tt.want, tt.wantBound, d.Reason)
			}
			if !tt.wantWake.IsZero() && !d.RecheckAt.Equal(tt.wantWake) {
				t.Errorf("RecheckAt %v, want %v", d.RecheckAt, tt.wantWake)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestHistoryScaled(t *testing.T) {
	s := Settings{ScaleUp: Behavior{Limit: RateLimit{Workers: 1, Period: time.Minute}}, ScaleDown: Behavior{Limit: RateLimit{Workers: 1, Period: time.Minute}}}
	var h History
	h.Scaled(2, 0, s, at(0))
	h.Scaled(1, 0, s, at(0))
	h.Scaled(0, 3, s, at(10*time.Second))
	h.Scaled(4, 0, s, at(90*time.Second)) // the first steps leave the window
	if n, _ := h.Added.since(at(30 * time.Second)); n != 4 || len(h.Added) != 1 {
		t.Errorf("Added = %v", h.Added)
	}
	if n, _ := h.Removed.since(at(0)); n != 3 {
		t.Errorf("Removed = %v", h.Removed)
	}
	if !h.LastScaleUp.Equal(at(90*time.Second)) || !h.LastScaleDown.Equal(at(10*time.Second)) {
		t.Errorf("last scale times %v %v", h.LastScaleUp, h.LastScaleDown)
	}
	h.Scaled(0, 0, s, at(time.Hour))
	if !h.LastScaleUp.Equal(at(90 * time.Second)) {
		t.Errorf("a plan that did nothing moved LastScaleUp")
	}
}

func TestDecideOrderOfRules(t *testing.T) {
	// Stabilization holds at 9, then the down rate limit allows only 2 of
	// the 3 removals: 10 -> 9 is within it.
	s := Settings{MaxWorkers: 50, JobsPerWorker: 1, StabilizationWindow: 5 * time.Minute,
		ScaleDown: Behavior{Limit: RateLimit{Workers: 2, Period: time.Minute}}}
	st := State{Idle: 10, History: History{Recent: []Sample{{at(-time.Minute), 9}}}}
	if d := Decide(st, s, t0); d.Desired != 9 || d.Bound != BoundStabilization {
		t.Errorf("Desired %d bound %s: %s", d.Desired, d.Bound, d.Reason)
	}
	st.History.Recent = []Sample{{at(-time.Minute), 5}}
	d := Decide(st, s, t0)
	if d.Desired != 8 || d.Bound != BoundRateLimit || d.Recommended != 0 {
		t.Errorf("Desired %d bound %s recommended %d: %s", d.Desired, d.Bound, d.Recommended, d.Reason)
	}
	if want := "desired 8 = pending 0 + running 0 = 0, held at 5 by scale_down.stabilization_window 5m0s (highest recommendation within it: 5), limited to 8 by scale_down.max 2 per 1m0s (0 removed within it)"; d.Reason != want {
		t.Errorf("Reason = %q\nwant     %q", d.Reason, want)
	}
}

func TestRetire(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		jobsRun int
		want    bool
	}{
		{"no limit", 0, 1000, false},
		{"ephemeral after its job", 1, 1, true},
		{"below the limit", 5, 4, false},
		{"at the limit", 5, 5, true},
		{"above it (adopted or moved jobs)", 5, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Retire(Settings{MaxJobsPerWorker: tt.max}, tt.jobsRun)
			if got != tt.want || (got && !strings.Contains(why, "max_jobs_per_worker")) {
				t.Errorf("Retire = %v %q, want %v", got, why, tt.want)
			}
		})
	}
}

func TestMakePlanUsesTheDecisionsIdleTimeout(t *testing.T) {
	s := Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeout: 5 * time.Minute, MaxConcurrentProvisioning: 1}
	sup := Supply{IdleOldestFirst: seq(Candidate{"i1", at(-30 * time.Second)}, Candidate{"i2", at(-10 * time.Second)})}
	p := MakePlan(State{Idle: 2}, s, Decision{Desired: 0, Hold: IdleHold{Fixed: 20 * time.Second}}, sup, t0)
	if len(p.Stop) != 1 || p.Stop[0] != "i1" || !p.NextWake.Equal(at(10*time.Second)) {
		t.Errorf("Stop %v NextWake %v: want i1 stopped and i2 due in 10s", p.Stop, p.NextWake)
	}
	p = MakePlan(State{Idle: 2}, s, Decision{Desired: 0}, sup, t0)
	if len(p.Stop) != 0 || !p.NextWake.Equal(at(270*time.Second)) {
		t.Errorf("without it: Stop %v NextWake %v, want idle_timeout", p.Stop, p.NextWake)
	}
}
