package engine

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// pending answers the creates in ops with workers that are still
// booting, and returns their ids; boot makes them ready.
func (h *harness) pending(ops []Op) []domain.WorkerID {
	var ids []domain.WorkerID
	for _, o := range ops {
		if o.Kind == OpCreate {
			h.e.OpDone(testPool, OpCreate, o.Worker, domain.Worker{ID: o.Worker, Pool: testPool, Phase: domain.PhasePending}, nil, h.now)
			ids = append(ids, o.Worker)
		}
	}
	return ids
}

func (h *harness) boot(ids ...domain.WorkerID) {
	for _, id := range ids {
		h.e.ObserveChange(testPool, domain.WorkerChange{ID: id, Worker: domain.Worker{ID: id, Pool: testPool, Phase: domain.PhaseReady}}, h.now)
	}
}

// The engine measures what idle_workers: auto needs from the events it
// already sees: the arrival rate from queued events at their stream time,
// the boot times from create to ready, and the decision's reason shows
// both (idle_workers: auto with a wait target).
func TestEngineV2AutoWarmFromMeasuredRateAndProvisioning(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.IdleAuto = true
		c.Settings.TargetWaitP95 = 5 * time.Second
		c.Settings.ArrivalWindow = time.Minute
		c.Settings.IdleTimeout = 10 * time.Minute
	})
	h.start()
	// The first job: no boot measured yet, no warm worker.
	h.job(domain.JobQueued, "j0", "")
	fx := h.reconcile()
	if n := count(fx.Ops, OpCreate); n != 1 {
		t.Fatalf("creates %d, want 1", n)
	}
	if d, _ := h.e.Pool(testPool).LastDecision(); !strings.Contains(d.Reason, "no boot time measured yet") {
		t.Fatalf("reason %q", d.Reason)
	}
	ws := h.pending(fx.Ops)
	h.advance(20 * time.Second)
	h.boot(ws...)
	h.job(domain.JobStarted, "j0", ws[0])
	h.reconcile()
	st := h.state()
	if st.History.Boots.N != 1 || st.History.Boots.Median() != 20*time.Second {
		t.Fatalf("boot times measured %+v, want one sample of 20s", st.History.Boots)
	}

	// One job every 5 s for two minutes, events stamped by the stream:
	// 0.2/s × 20 s = 4 jobs per boot.
	for i := 1; i <= 24; i++ {
		h.advance(5 * time.Second)
		h.job(domain.JobQueued, fmt.Sprintf("j%d", i), "")
		h.job(domain.JobFinished, fmt.Sprintf("j%d", i), "") // cancelled at once: only the rate counts
	}
	h.reconcile()
	d, _ := h.e.Pool(testPool).LastDecision()
	rate := h.state().History.Arrivals.Value(h.now, time.Minute)
	if rate < 0.17 || rate > 0.2 {
		t.Fatalf("measured rate %.3f/s, want about 0.2", rate)
	}
	// 0.2/s over the 15 s a job would wait beyond the target: 3 jobs on
	// average; the slots that pay at 400 worker-s a late job, raised by a
	// third by the first job's 20 s wait: 8 (policy's TestPricedBuffer
	// works such numbers).
	if d.Warm < 6 || d.Warm > 9 {
		t.Fatalf("warm %d for about 3 jobs per 15 s, want 6 to 9 (reason %q)", d.Warm, d.Reason)
	}
	for _, want := range []string{"target_wait_p95 5s: arrivals 0.1", "boots median 20s p95 20s", "free keep P(wait > 5s)", "from 1 waits, 100% above"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason %q lacks %q", d.Reason, want)
		}
	}
	if d.Desired != 1+d.Warm {
		t.Errorf("desired %d, want running 1 + warm %d", d.Desired, d.Warm)
	}
	// With no arrivals the rate decays and the engine wakes itself to
	// shrink the buffer.
	if wake := h.e.Pool(testPool).NextWake(); wake.IsZero() || !wake.After(h.now) {
		t.Fatalf("next wake %v: the decaying buffer must be rechecked", wake)
	}
}

// A pending job that starts reports its wait, queued to started in stream
// time, to the wait targets' correction; a redelivered started or a
// started with no queued (its wait unknown) does not.
func TestEngineV2MeasuredWaitsCorrectTheWaitTarget(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.IdleAuto, c.Settings.TargetWaitP95 = true, 10*time.Second
	})
	h.start()
	h.job(domain.JobQueued, "late", "")
	h.job(domain.JobQueued, "quick", "")
	ws := h.pending(h.reconcile().Ops)
	h.advance(3 * time.Second)
	h.boot(ws...)
	h.job(domain.JobStarted, "quick", ws[0]) // waited 3 s
	h.advance(27 * time.Second)
	h.job(domain.JobStarted, "late", ws[1]) // waited 30 s
	h.job(domain.JobStarted, "late", ws[1]) // a duplicate
	h.job(domain.JobStarted, "unseen", ws[1])
	g := h.state().History.Waits95
	if g.Waits != 2 || g.Target != 10*time.Second {
		t.Fatalf("wait goal %+v: want the two waits of jobs seen queued", g)
	}
	want := policy.WaitGoal{Target: 10 * time.Second, Allowed: 0.05}.Observe(3 * time.Second).Observe(30 * time.Second)
	if math.Abs(g.LogPrice-want.LogPrice) > 1e-12 || g.Over == 0 {
		t.Errorf("goal %+v, want %+v: a wait of 3 s and one of 30 s", g, want)
	}
}

// Events of the retained stream folded at start carry their stream time:
// the rate is what the stream says, not what the fold took.
func TestEngineV2ArrivalRateUsesStreamTime(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.ArrivalWindow = time.Minute })
	past := h.now.Add(-10 * time.Minute)
	for i := range 120 { // one per second, ten minutes ago
		at := past.Add(time.Duration(i) * time.Second)
		h.e.ApplyJob(domain.JobEvent{Kind: domain.JobQueued, Pool: testPool, JobID: domain.JobID(fmt.Sprint(i)), Time: at, Stored: at}, h.now)
	}
	r := h.e.Pool(testPool).State().History.Arrivals
	if !r.At.Equal(past.Add(119 * time.Second)) {
		t.Fatalf("rate stamped %v, want the last event's stream time", r.At)
	}
	if v := r.Value(r.At, time.Minute); v < 0.8 {
		t.Fatalf("rate at the last event %.2f/s, want about 0.86 (1/s for two minutes)", v)
	}
	if v := r.Value(h.now, time.Minute); v > 0.01 {
		t.Fatalf("rate now %.3f/s: eight idle minutes must have decayed it", v)
	}
}

func TestEngineV2RetiresAfterMaxJobsPerWorker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		dryRun  bool
		jobs    int // run one after another on one worker
		retired bool
	}{
		{name: "ephemeral: retired after its job", max: 1, jobs: 1, retired: true},
		{name: "retired after the third job", max: 3, jobs: 3, retired: true},
		{name: "not before", max: 3, jobs: 2},
		{name: "no limit", max: 0, jobs: 5},
		{name: "dry run never stops", max: 1, jobs: 1, dryRun: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *PoolConfig) {
				c.Settings.MaxJobsPerWorker = tc.max
				c.Settings.IdleTimeout = time.Hour
			})
			h.start()
			h.job(domain.JobQueued, "j0", "")
			ws := h.ready(h.reconcile().Ops)
			if tc.dryRun { // flip after the worker exists, to see retirement alone
				h.e.Pool(testPool).cfg.DryRun = true
			}
			var fx Effects
			for i := range tc.jobs {
				id := fmt.Sprintf("j%d", i)
				if i > 0 {
					h.job(domain.JobQueued, id, "")
				}
				h.job(domain.JobStarted, id, ws[0])
				h.reconcile()
				h.advance(time.Minute)
				h.job(domain.JobFinished, id, "")
				fx = h.reconcile()
			}
			stops := count(fx.Ops, OpStop)
			drains := lifecycles(fx, domain.LifecycleDraining)
			// Retirement happens as the finished event is applied; its
			// effects are in the reconcile pass's effects too.
			if tc.retired {
				if stops != 1 || len(drains) != 1 || !strings.Contains(drains[0].Reason, "max_jobs_per_worker") {
					t.Fatalf("ops %+v lifecycle %+v: want one stop with a max_jobs_per_worker reason", fx.Ops, fx.Lifecycle)
				}
				if s, _ := h.e.Pool(testPool).WorkerState(ws[0]); s != domain.StateDraining {
					t.Fatalf("worker %s, want draining", s)
				}
			} else if stops != 0 {
				t.Fatalf("worker stopped: %+v", fx.Ops)
			}
		})
	}
}

// A retired worker is replaced when demand needs it.
func TestEngineV2RetiredWorkerIsReplaced(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.MaxJobsPerWorker = 1 })
	h.start()
	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobQueued, "b", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobStarted, "a", ws[0])
	h.reconcile()
	h.job(domain.JobFinished, "a", "")
	fx := h.reconcile()
	if count(fx.Ops, OpStop) != 1 || count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("ops %+v: want the retired worker stopped, b served by the other", fx.Ops)
	}
	h.job(domain.JobStarted, "b", ws[1])
	h.job(domain.JobQueued, "c", "")
	fx = h.reconcile()
	if count(fx.Ops, OpCreate) != 1 {
		t.Fatalf("ops %+v: c needs a new worker", fx.Ops)
	}
}

func TestEngineV2StabilizationHoldsIdleWorkers(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.StabilizationWindow = 5 * time.Minute
		c.Settings.IdleTimeout = 0
	})
	h.start()
	for i := range 4 {
		h.job(domain.JobQueued, fmt.Sprint(i), "")
	}
	ws := h.ready(h.reconcile().Ops)
	for i := range 4 {
		h.job(domain.JobStarted, fmt.Sprint(i), ws[i])
	}
	h.reconcile()
	h.advance(time.Minute)
	for i := range 4 {
		h.job(domain.JobFinished, fmt.Sprint(i), "")
	}
	fx := h.reconcile()
	d, _ := h.e.Pool(testPool).LastDecision()
	if count(fx.Ops, OpStop) != 0 || d.Desired != 4 || d.Bound != policy.BoundStabilization {
		t.Fatalf("ops %+v decision %+v: the window's highest (4) must hold", fx.Ops, d)
	}
	if wake := h.e.Pool(testPool).NextWake(); !wake.Equal(h.now.Add(4 * time.Minute)) {
		t.Fatalf("wake %v, want when the recommendation of 4 leaves the window (in 4m)", wake.Sub(h.now))
	}
	h.advance(4 * time.Minute)
	if fx := h.reconcile(); count(fx.Ops, OpStop) != 4 {
		t.Fatalf("after the window: ops %+v, want all four stopped", fx.Ops)
	}
}

func TestEngineV2ScaleUpRateLimitAndCooldown(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.ScaleUp = policy.Behavior{Limit: policy.RateLimit{Workers: 3, Period: time.Minute}}
		c.Settings.ScaleDown = policy.Behavior{Cooldown: 2 * time.Minute}
		c.Settings.IdleTimeout = 0
	})
	h.start()
	for i := range 10 {
		h.job(domain.JobQueued, fmt.Sprint(i), "")
	}
	fx := h.reconcile()
	if n := count(fx.Ops, OpCreate); n != 3 {
		t.Fatalf("creates %d, want 3 (scale_up.max 3 per 1m)", n)
	}
	if d, _ := h.e.Pool(testPool).LastDecision(); d.Bound != policy.BoundRateLimit || !strings.Contains(d.Reason, "scale_up.max 3 per 1m0s") {
		t.Fatalf("decision %+v", d)
	}
	h.advance(30 * time.Second)
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("within the period: %+v", fx.Ops)
	}
	h.advance(30 * time.Second) // the engine had asked to be woken now
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 3 {
		t.Fatalf("next period: %+v", fx.Ops)
	}
	// Demand vanishes: nothing holds the count (no scale-up cooldown is
	// set), and the creates are in the history.
	for i := range 10 {
		h.job(domain.JobFinished, fmt.Sprint(i), "")
	}
	fx = h.reconcile()
	if d, _ := h.e.Pool(testPool).LastDecision(); d.Desired != 0 {
		t.Fatalf("desired %d, want 0: %s", d.Desired, d.Reason)
	}
	st := h.state()
	if st.History.LastScaleUp.IsZero() || len(st.History.Added) == 0 {
		t.Fatalf("history %+v: the engine must record its creates", st.History)
	}
}

func TestEngineV2CooldownAfterScaleDown(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.ScaleDown = policy.Behavior{Cooldown: 2 * time.Minute}
		c.Settings.IdleTimeout = 0
	})
	h.start()
	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobQueued, "b", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobStarted, "a", ws[0])
	h.job(domain.JobStarted, "b", ws[1])
	h.job(domain.JobFinished, "a", "")
	fx := h.reconcile()
	if count(fx.Ops, OpStop) != 1 {
		t.Fatalf("ops %+v, want one stop", fx.Ops)
	}
	h.done(fx.Ops, OpStop, nil)
	h.advance(time.Second)
	h.job(domain.JobQueued, "c", "")
	fx = h.reconcile()
	if count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("created within the scale-down cooldown: %+v", fx.Ops)
	}
	if wake := h.e.Pool(testPool).NextWake(); !wake.Equal(h.now.Add(2*time.Minute - time.Second)) {
		t.Fatalf("wake in %v, want at the cooldown's end", wake.Sub(h.now))
	}
	h.advance(2*time.Minute - time.Second)
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 1 {
		t.Fatalf("after the cooldown: %+v", fx.Ops)
	}
}

// A schedule changes the count at its boundary with no event: the engine
// asks to be woken then.
func TestEngineV2ScheduleWakesAtItsBoundary(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.Schedules = []policy.Schedule{{Name: "office", Start: 8 * time.Hour, End: 18 * time.Hour, Location: loc, MinWorkers: &three}}
		c.Settings.IdleTimeout = 0
	})
	h.now = time.Date(2026, 3, 29, 5, 0, 0, 0, time.UTC) // Sunday 07:00 CEST, the day clocks went forward
	h.start()
	if wake := h.e.Pool(testPool).NextWake(); !wake.Equal(time.Date(2026, 3, 29, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("wake %v, want 08:00 CEST = 06:00 UTC", wake)
	}
	h.now = h.e.Pool(testPool).NextWake()
	fx := h.reconcile()
	if n := count(fx.Ops, OpCreate); n != 3 {
		t.Fatalf("creates %d at the window's start, want 3", n)
	}
	d, _ := h.e.Pool(testPool).LastDecision()
	if d.Schedule != "office" || !strings.Contains(d.Reason, `raised to min_workers 3 (schedule "office")`) {
		t.Fatalf("decision %+v", d)
	}
}
