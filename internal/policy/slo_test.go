package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

// fixedBoots is a boot-time distribution of a single value.
func fixedBoots(d time.Duration) BootTimes { return BootTimes{N: 10, LogMean: math.Log(d.Seconds())} }

// With a fixed 20 s boot and a 10 s target, a job waits too long when n
// or more jobs arrived in the 10 s before it: N ~ Poisson(rate × 10 s).
func TestMissCurveFixedBoot(t *testing.T) {
	m := newMissCurve(arrivals{rate: 0.05, disp: 1}, fixedBoots(20*time.Second).points(), 10*time.Second)
	x := 0.5
	want := []float64{1, 1 - math.Exp(-x), 1 - math.Exp(-x)*(1+x), 1 - math.Exp(-x)*(1+x+x*x/2)}
	for n, w := range want {
		if got := m.next(); math.Abs(got-w) > 1e-12 {
			t.Errorf("miss(%d) = %.6f, want %.6f", n, got, w)
		}
	}
}

func TestPricedBuffer(t *testing.T) {
	boots := fixedBoots(20 * time.Second).points()
	tests := []struct {
		name    string
		a       arrivals
		target  time.Duration
		price   float64
		limit   int
		want    int
		wantMis float64
	}{
		// miss = 1, .3935, .0902, .0144, .0018: the n-th slot saves
		// 400 × 0.05 × (miss(n−1) − miss(n)) = 12.1, 6.1, 1.5, 0.25 of its
		// cost: three are worth it.
		{name: "three slots pay", a: arrivals{0.05, 1}, target: 10 * time.Second, price: 400, limit: 100, want: 3, wantMis: 0.0144},
		{name: "a cheaper late job: one", a: arrivals{0.05, 1}, target: 10 * time.Second, price: 40, limit: 100, want: 1, wantMis: 0.3935},
		{name: "bounded", a: arrivals{0.05, 1}, target: 10 * time.Second, price: 400, limit: 2, want: 2, wantMis: 0.0902},
		{name: "every boot within the target: none", a: arrivals{0.05, 1}, target: 20 * time.Second, price: 400, limit: 100, want: 0},
		{name: "no arrivals: none", a: arrivals{0, 1}, target: 10 * time.Second, price: 400, limit: 100, want: 0, wantMis: 1},
		// Bursts: at the same rate, pipelines of several jobs at once
		// put more weight on many arrivals within a boot.
		{name: "Poisson arrivals at 0.2/s", a: arrivals{0.2, 1}, target: 10 * time.Second, price: 400, limit: 100, want: 6},
		{name: "bursty arrivals at 0.2/s need more", a: arrivals{0.2, 4}, target: 10 * time.Second, price: 400, limit: 100, want: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, miss, next := pricedBuffer(tt.a, boots, tt.target, tt.price, tt.limit)
			if n != tt.want {
				t.Errorf("buffer %d, want %d (miss %.4f)", n, tt.want, miss)
			}
			if tt.wantMis > 0 && math.Abs(miss-tt.wantMis) > 5e-5 {
				t.Errorf("miss %.5f, want %.4f", miss, tt.wantMis)
			}
			if n < tt.limit && next >= 1 {
				t.Errorf("stopped at %d although the next slot is worth %.2f of its cost", n, next)
			}
		})
	}
}

// The tail of the boot times, not their median, sets the buffer: with
// the same median, slower slow boots need more.
func TestBootTailRaisesTheBuffer(t *testing.T) {
	narrow := BootTimes{N: 10, LogMean: math.Log(20), LogVar: math.Pow(math.Log(1.2)/normalQuantile(0.95), 2)}
	wide := BootTimes{N: 10, LogMean: math.Log(20), LogVar: math.Pow(math.Log(3)/normalQuantile(0.95), 2)}
	a := arrivals{0.05, 1}
	n1, _, _ := pricedBuffer(a, narrow.points(), 20*time.Second, 400, 100)
	n2, _, _ := pricedBuffer(a, wide.points(), 20*time.Second, 400, 100)
	if n2 <= n1 {
		t.Errorf("buffer %d with p95 boots of 24s, %d with 60s: the tail must count", n1, n2)
	}
}

// Each measured wait corrects the price: above the target it rises,
// within it falls, and it settles where 90 % of the allowed share is
// above (4.5 % for a p95): at the allowance itself it still rises.
func TestWaitGoalCorrection(t *testing.T) {
	g := WaitGoal{Target: 10 * time.Second, Allowed: 0.05}
	if p := g.Price(20 * time.Second); p != 400 {
		t.Fatalf("starting price %g, want 20 s / 5%% = 400", p)
	}
	up := g.Observe(30 * time.Second)
	down := g.Observe(5 * time.Second)
	if up.LogPrice <= 0 || down.LogPrice >= 0 || up.Waits != 1 || up.Over != 1 || down.Over != 0 {
		t.Fatalf("after one late wait %+v, after one on time %+v", up, down)
	}
	share := func(g WaitGoal, every, n int) WaitGoal {
		t.Helper()
		for i := range n {
			w := 5 * time.Second
			if i%every == 0 {
				w = 30 * time.Second
			}
			g = g.Observe(w)
		}
		return g
	}
	tests := []struct {
		name   string
		every  int // one wait in every late
		lo, hi float64
	}{
		// 1 in 22 = 4.55 %, the aim (4.5 %): back near the start.
		{name: "at the aim: settles", every: 22, lo: -3 * sloFeedbackRate, hi: 3 * sloFeedbackRate},
		// 1 in 20 = 5 %: 0.5 % above the aim, +0.3 × 0.005 a wait.
		{name: "at the allowance: still rises", every: 20, lo: 2, hi: 4},
		// 1 in 25 = 4 %: falls.
		{name: "under the aim: falls", every: 25, lo: -4, hi: -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := share(g, tt.every, 2000)
			if s.LogPrice < tt.lo || s.LogPrice > tt.hi {
				t.Errorf("log price %.3f after 2000 waits, want within [%.1f, %.1f]", s.LogPrice, tt.lo, tt.hi)
			}
		})
	}
}

// Every wait late: the correction is bounded, sixteenfold for the default
// target, 256-fold for one set in the config.
func TestWaitGoalCorrectionBounds(t *testing.T) {
	tests := []struct {
		name     string
		explicit bool
		want     float64
	}{
		{name: "auto: 16", explicit: false, want: 16},
		{name: "set in the config: 256", explicit: true, want: 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := WaitGoal{Target: 10 * time.Second, Allowed: 0.05, Explicit: tt.explicit}
			for range 1000 {
				g = g.Observe(time.Minute)
			}
			if math.Abs(g.LogPrice-math.Log(tt.want)) > 1e-9 {
				t.Errorf("price ×%.3f after 1000 late waits, want ×%g", math.Exp(g.LogPrice), tt.want)
			}
			for range 2000 {
				g = g.Observe(0)
			}
			if math.Abs(g.LogPrice+math.Log(tt.want)) > 1e-9 {
				t.Errorf("price ×%.5f after 2000 waits on time, want ×1/%g", math.Exp(g.LogPrice), tt.want)
			}
		})
	}
}

// History.Waited and the goals mark a target set in the config as
// explicit, auto (one median boot) as not.
func TestWaitGoalsExplicit(t *testing.T) {
	boots := BootTimes{N: 10, LogMean: math.Log(20)}
	tests := []struct {
		name     string
		s        Settings
		p95, p99 bool // explicit
		goals    int
	}{
		{name: "no target: auto", s: Settings{IdleAuto: true}, goals: 1},
		{name: "target_wait_p95 10s", s: Settings{IdleAuto: true, TargetWaitP95: 10 * time.Second}, p95: true, goals: 1},
		{name: "auto p95 and a p99", s: Settings{IdleAuto: true, TargetWaitAuto: true, TargetWaitP99: 40 * time.Second}, p99: true, goals: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Boots: boots}
			h.Waited(time.Minute, tt.s)
			gs := h.goals(tt.s)
			if len(gs) != tt.goals {
				t.Fatalf("%d goals, want %d", len(gs), tt.goals)
			}
			if gs[0].Explicit != tt.p95 || h.Waits95.Explicit != tt.p95 {
				t.Errorf("p95 goal explicit %v (history %v), want %v", gs[0].Explicit, h.Waits95.Explicit, tt.p95)
			}
			if tt.goals == 2 && (!gs[1].Explicit || !h.Waits99.Explicit) {
				t.Errorf("p99 goal not explicit: %+v", gs[1])
			}
		})
	}
}

func TestHistoryWaitedFeedsOnlyTheTargetsSet(t *testing.T) {
	var h History
	h.Waited(30*time.Second, Settings{TargetWaitP95: 20 * time.Second})
	if h.Waits95.Waits != 1 || h.Waits99.Waits != 0 || h.Waits95.LogPrice <= 0 {
		t.Errorf("p95 goal %+v, p99 goal %+v", h.Waits95, h.Waits99)
	}
	h.Waited(15*time.Second, Settings{TargetWaitP95: 20 * time.Second, TargetWaitP99: 10 * time.Second})
	if h.Waits95.Waits != 2 || h.Waits99.Waits != 1 || h.Waits99.Over != 1 {
		t.Errorf("p95 goal %+v, p99 goal %+v", h.Waits95, h.Waits99)
	}
}

// The arrival rate the targets use is the long average, unless the last
// minute is clearly different: during a burst and in the lull after it.
func TestArrivalRateTakesTheLastMinuteOnlyWhenItDiffers(t *testing.T) {
	s := Settings{}
	var h History
	for i := range 120 { // an hour at one job per 30 s
		h.Queued(at(time.Duration(i)*30*time.Second), s)
	}
	now := at(3600 * time.Second)
	if rate, recent := h.arrivalRate(s, now); recent || math.Abs(rate-1.0/30) > 0.01 {
		t.Errorf("steady: rate %.4f (recent %v), want the long average about 0.033", rate, recent)
	}
	for i := range 100 { // a burst: 100 jobs in 20 s
		h.Queued(now.Add(time.Duration(i)*200*time.Millisecond), s)
	}
	burst := now.Add(20 * time.Second)
	if rate, recent := h.arrivalRate(s, burst); !recent || rate < 1 {
		t.Errorf("burst: rate %.3f (recent %v), want the last minute's, above 1/s", rate, recent)
	}
	lull := burst.Add(5 * time.Minute)
	long := h.Arrivals.Value(lull, DefaultArrivalWindow)
	if rate, recent := h.arrivalRate(s, lull); !recent || rate > long/10 {
		t.Errorf("five quiet minutes after: rate %.4f (recent %v) against the long average %.4f", rate, recent, long)
	}
}

func TestDecideWithAWaitTarget(t *testing.T) {
	hist := func(rate float64, boots BootTimes) History {
		return History{Arrivals: Rate{PerSecond: rate, At: t0}, RecentArrivals: Rate{PerSecond: rate, At: t0}, Boots: boots}
	}
	base := Settings{MaxWorkers: 50, JobsPerWorker: 1, IdleAuto: true, TargetWaitP95: 10 * time.Second, IdleTimeout: time.Minute}
	tests := []struct {
		name     string
		st       State
		s        func(*Settings)
		want     int
		wantWarm int
		reason   []string
		wake     bool
	}{
		{name: "no boot measured: no buffer", st: State{Pending: 2}, want: 2,
			reason: []string{"desired 2 = pending 2 + running 0 + warm 0 (target_wait_p95 10s: arrivals 0.000/s, no boot time measured yet)"}},
		{name: "the buffer the price pays for", st: State{Running: 3, History: hist(0.05, fixedBoots(20*time.Second))}, want: 6, wantWarm: 3, wake: true,
			reason: []string{"desired 6 = pending 0 + running 3 + warm 3 (target_wait_p95 10s: arrivals 0.050/s, boots median 20s p95 20s: 3 free keep P(wait > 10s) at 1.4%, one more would save 0.25 of its cost at 400 worker-s per late job)"}},
		{name: "per job slot: free slots of partly used workers count", st: State{Running: 3, History: hist(0.05, fixedBoots(20*time.Second))},
			s: func(s *Settings) { s.JobsPerWorker = 2 }, want: 3, wantWarm: 1, wake: true}, // ceil((3+3)/2) = 3 workers, 1 above ceil(3/2)
		{name: "capped by max_idle_workers", st: State{History: hist(0.05, fixedBoots(20*time.Second))},
			s: func(s *Settings) { s.MaxIdleWorkers = 2 }, want: 2, wantWarm: 2, wake: true, reason: []string{"capped by max_idle_workers 2"}},
		{name: "a p99 target too: the larger buffer", st: State{History: hist(0.05, fixedBoots(20*time.Second))},
			s: func(s *Settings) { s.TargetWaitP99 = 5 * time.Second }, want: 4, wantWarm: 4, wake: true,
			reason: []string{"target_wait_p95 10s, target_wait_p99 5s:", "P(wait > 5s)"}},
		{name: "auto: one median boot", st: State{History: hist(0.05, BootTimes{N: 10, LogMean: math.Log(20), LogVar: 0.06})},
			s: func(s *Settings) { s.TargetWaitP95, s.TargetWaitAuto = 0, true }, want: 2, wantWarm: 2, wake: true,
			reason: []string{"target_wait_p95 auto (20s, one median boot): arrivals 0.050/s, boots median 20s p95 30s: 2 free keep P(wait > 20s) at 1.5%"}},
		{name: "auto before any boot: none", st: State{History: hist(0.05, BootTimes{})},
			s: func(s *Settings) { s.TargetWaitP95, s.TargetWaitAuto = 0, true }, want: 0, reason: []string{"target_wait_p95 auto: arrivals 0.050/s, no boot time measured yet"}},
		{name: "a target no boot exceeds: none", st: State{History: hist(0.05, fixedBoots(20*time.Second))},
			s: func(s *Settings) { s.TargetWaitP95 = 30 * time.Second }, want: 0},
		{name: "a fixed idle_workers ignores the target", st: State{History: hist(0.05, fixedBoots(20*time.Second))},
			s: func(s *Settings) { s.IdleAuto = false; s.IdleWorkers = 1 }, want: 1, wantWarm: 1, reason: []string{"desired 1 = pending 0 + running 0 + warm 1"}},
		{name: "the price corrected by measured waits", st: State{History: func() History {
			h := hist(0.05, fixedBoots(20*time.Second))
			h.Waits95 = WaitGoal{LogPrice: math.Log(0.1), Waits: 300, Over: 0.01}
			return h
		}()}, want: 1, wantWarm: 1, wake: true, reason: []string{"at 40 worker-s per late job (×0.10 from 300 waits, 1.0% above)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.s != nil {
				tt.s(&s)
			}
			d := Decide(tt.st, s, t0)
			if d.Desired != tt.want || d.Warm != tt.wantWarm {
				t.Errorf("desired %d warm %d, want %d %d (reason %q)", d.Desired, d.Warm, tt.want, tt.wantWarm, d.Reason)
			}
			for _, r := range tt.reason {
				if !strings.Contains(d.Reason, r) {
					t.Errorf("reason %q\nlacks    %q", d.Reason, r)
				}
			}
			if tt.wake != !d.RecheckAt.IsZero() {
				t.Errorf("RecheckAt %v, want a wake-up: %v", d.RecheckAt, tt.wake)
			}
		})
	}
}

// With no arrivals the buffer shrinks one slot at a time, each at the
// instant RecheckAt names, and reaches zero.
func TestTargetBufferDecaysToZero(t *testing.T) {
	s := Settings{MaxWorkers: 50, JobsPerWorker: 1, IdleAuto: true, TargetWaitP95: 10 * time.Second}
	st := State{History: History{Arrivals: Rate{PerSecond: 0.2, At: t0}, RecentArrivals: Rate{PerSecond: 0.2, At: t0}, Boots: fixedBoots(20 * time.Second)}}
	now := t0
	prev := Decide(st, s, now).Warm
	if prev < 4 {
		t.Fatalf("initial warm %d at 0.2 jobs/s", prev)
	}
	// The recheck comes after the buffer changes, by at most 1 % of the
	// rate's time constant (6 s here), and finds it changed.
	for steps := 0; prev > 0; steps++ {
		d := Decide(st, s, now)
		if d.RecheckAt.IsZero() || !d.RecheckAt.After(now) {
			t.Fatalf("warm %d with recheck %v", d.Warm, d.RecheckAt)
		}
		if before := Decide(st, s, d.RecheckAt.Add(-6*time.Second)).Warm; before != d.Warm {
			t.Fatalf("warm changed to %d more than 6s before the recheck at %v", before, d.RecheckAt.Sub(t0))
		}
		now = d.RecheckAt
		next := Decide(st, s, now).Warm
		if next >= prev {
			t.Fatalf("at %v warm went %d -> %d", now.Sub(t0), prev, next)
		}
		prev = next
		if steps > 60 {
			t.Fatal("does not converge")
		}
	}
}
