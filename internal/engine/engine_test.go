package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

const testPool = domain.PoolName("p")

// harness drives an Engine with a hand-moved clock and records effects.
type harness struct {
	t   *testing.T
	e   *Engine
	now time.Time
	fx  Effects // everything taken so far
	seq int
}

func newHarness(t *testing.T, mod func(*PoolConfig)) *harness {
	t.Helper()
	c := PoolConfig{
		Name: testPool, Provider: "test",
		Settings: policy.Settings{MinWorkers: 0, MaxWorkers: 10, JobsPerWorker: 1,
			IdleTimeout: time.Minute, ProvisionTimeout: 2 * time.Minute, MaxConcurrentProvisioning: 10},
		StopGrace: 5 * time.Second, RetryInitial: time.Second, RetryMax: time.Minute,
	}
	if mod != nil {
		mod(&c)
	}
	h := &harness{t: t, e: NewEngine([]PoolConfig{c}, 24*time.Hour), now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	return h
}

// start lists the (empty) provider and marks the stream folded.
func (h *harness) start(existing ...domain.Worker) {
	h.e.ObserveList(testPool, existing, h.now, h.now)
	h.e.CaughtUp(h.now)
	h.reconcile()
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

func (h *harness) job(kind domain.JobKind, id string, w domain.WorkerID) (Result, string) {
	h.t.Helper()
	h.seq++
	return h.e.ApplyJob(domain.JobEvent{Kind: kind, ID: fmt.Sprint(h.seq), Pool: testPool, JobID: domain.JobID(id),
		WorkerID: w, Time: h.now, Stored: h.now, Outcome: domain.OutcomeSucceeded}, h.now)
}

// reconcile runs the engine and returns the effects of this pass.
func (h *harness) reconcile() Effects {
	h.e.Reconcile(h.now)
	fx := h.e.Take()
	h.fx.Ops = append(h.fx.Ops, fx.Ops...)
	h.fx.Lifecycle = append(h.fx.Lifecycle, fx.Lifecycle...)
	h.fx.Decisions = append(h.fx.Decisions, fx.Decisions...)
	return fx
}

func (h *harness) state() policy.State { return h.e.Pool(testPool).State() }

// ready answers every create in ops as a ready worker.
func (h *harness) ready(ops []Op) []domain.WorkerID {
	var ids []domain.WorkerID
	for _, o := range ops {
		if o.Kind != OpCreate {
			continue
		}
		h.e.OpDone(testPool, OpCreate, o.Worker, domain.Worker{ID: o.Worker, Pool: testPool, Phase: domain.PhaseReady}, nil, h.now)
		ids = append(ids, o.Worker)
	}
	return ids
}

func (h *harness) done(ops []Op, kind OpKind, err error) {
	for _, o := range ops {
		if o.Kind == kind {
			h.e.OpDone(testPool, kind, o.Worker, domain.Worker{}, err, h.now)
		}
	}
}

func count(ops []Op, k OpKind) int {
	n := 0
	for _, o := range ops {
		if o.Kind == k {
			n++
		}
	}
	return n
}

func lifecycles(fx Effects, s domain.Lifecycle) []Lifecycle {
	var out []Lifecycle
	for _, l := range fx.Lifecycle {
		if l.State == s {
			out = append(out, l)
		}
	}
	return out
}

func TestEngineScalesUpAndDownAroundBusyWorkers(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.JobsPerWorker = 2 })
	h.start()
	for i := range 6 {
		h.job(domain.JobQueued, fmt.Sprintf("j%d", i), "")
	}
	fx := h.reconcile()
	if n := count(fx.Ops, OpCreate); n != 3 {
		t.Fatalf("6 jobs at 2 per worker: %d creates, want 3", n)
	}
	if n := len(lifecycles(fx, domain.LifecycleProvisioning)); n != 3 {
		t.Fatalf("%d provisioning events, want 3", n)
	}
	if len(fx.Decisions) != 1 || fx.Decisions[0].Data.Desired != 3 || fx.Decisions[0].Direction != "up" {
		t.Fatalf("decisions = %+v, want one up to 3", fx.Decisions)
	}
	for _, o := range fx.Ops {
		if len(o.Covers) != 2 {
			t.Errorf("create covers %d queued jobs, want 2", len(o.Covers))
		}
	}
	if fx := h.reconcile(); len(fx.Ops) != 0 || len(fx.Decisions) != 0 {
		t.Fatalf("second pass with nothing new: %+v", fx)
	}

	h.advance(2 * time.Second)
	ws := h.ready(fx.Ops)
	fx = h.reconcile()
	if n := len(lifecycles(fx, domain.LifecycleReady)); n != 3 {
		t.Fatalf("%d ready events, want 3", n)
	}
	if st := h.state(); st.Idle != 3 || st.Pending != 6 {
		t.Fatalf("state %+v, want 3 idle, 6 pending", st)
	}
	// Workers 0 and 1 take two jobs each, worker 2 one.
	h.job(domain.JobStarted, "j0", ws[0])
	h.job(domain.JobStarted, "j1", ws[0])
	h.job(domain.JobStarted, "j2", ws[1])
	h.job(domain.JobStarted, "j3", ws[1])
	h.job(domain.JobStarted, "j4", ws[2])
	if st := h.state(); st.Busy != 3 || st.Running != 5 || st.Pending != 1 {
		t.Fatalf("state %+v, want 3 busy, 5 running, 1 pending", st)
	}
	// Everything but j0 finishes, and j5 is cancelled.
	for _, j := range []string{"j1", "j2", "j3", "j4", "j5"} {
		h.job(domain.JobFinished, j, "")
	}
	fx = h.reconcile()
	if len(fx.Ops) != 0 {
		t.Fatalf("workers just went idle: ops %+v, want none before idle_timeout", fx.Ops)
	}
	if d, _ := h.e.Pool(testPool).LastDecision(); d.Desired != 1 {
		t.Fatalf("desired = %d, want 1 (j0 still runs)", d.Desired)
	}
	if wake := h.e.Pool(testPool).nextWake; !wake.Equal(h.now.Add(time.Minute)) {
		t.Fatalf("next wake %v, want idle_timeout from now", wake)
	}
	h.advance(time.Minute)
	fx = h.reconcile()
	if n := count(fx.Ops, OpStop); n != 2 {
		t.Fatalf("%d stops, want 2", n)
	}
	for _, o := range fx.Ops {
		if o.Worker == ws[0] {
			t.Fatalf("busy worker %s was stopped", ws[0])
		}
		if o.Grace != 5*time.Second {
			t.Errorf("stop grace %v, want 5s", o.Grace)
		}
	}
	if n := len(lifecycles(fx, domain.LifecycleDraining)); n != 2 {
		t.Fatalf("%d draining events, want 2", n)
	}
	h.done(fx.Ops, OpStop, nil)
	fx = h.reconcile()
	if n := len(lifecycles(fx, domain.LifecycleStopped)); n != 2 {
		t.Fatalf("%d stopped events, want 2", n)
	}
	if st := h.state(); st.Busy != 1 || st.Current() != 1 || st.Draining != 0 {
		t.Fatalf("state %+v, want only the busy worker", st)
	}
	// The last job ends; the last worker goes after idle_timeout.
	h.job(domain.JobFinished, "j0", "")
	h.reconcile()
	h.advance(time.Minute)
	fx = h.reconcile()
	if count(fx.Ops, OpStop) != 1 || fx.Ops[0].Worker != ws[0] {
		t.Fatalf("ops %+v, want the last worker stopped", fx.Ops)
	}
}

func TestEngineDecidesNothingBeforeCaughtUpAndListed(t *testing.T) {
	h := newHarness(t, nil)
	h.job(domain.JobQueued, "a", "")
	if fx := h.reconcile(); len(fx.Ops)+len(fx.Decisions) != 0 {
		t.Fatalf("before catch-up: %+v", fx)
	}
	h.e.CaughtUp(h.now)
	fx := h.reconcile()
	if len(fx.Ops) != 0 || h.e.Pool(testPool).Blocked() == "" {
		t.Fatalf("before the first listing: ops %+v blocked %q", fx.Ops, h.e.Pool(testPool).Blocked())
	}
	h.e.ObserveList(testPool, nil, h.now, h.now)
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 1 {
		t.Fatalf("after listing: ops %+v, want one create", fx.Ops)
	}
}

func TestEngineAdoptsExistingWorkersInsteadOfDuplicating(t *testing.T) {
	h := newHarness(t, nil)
	w1, w2, w3 := domain.NewWorkerID(), domain.NewWorkerID(), domain.NewWorkerID()
	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobQueued, "b", "")
	h.job(domain.JobQueued, "c", "")
	h.job(domain.JobStarted, "a", w1)
	h.e.ObserveList(testPool, []domain.Worker{
		{ID: w1, Phase: domain.PhaseReady},
		{ID: w2, Phase: domain.PhasePending, CreatedAt: h.now.Add(-time.Second)},
		{ID: w3, Phase: domain.PhaseFailed, Reason: "exited with code 1"},
	}, h.now, h.now)
	h.e.CaughtUp(h.now)
	fx := h.reconcile()
	// a runs on w1; b and c are pending: desired 3 = busy w1 + provisioning w2 + 1 new.
	if n := count(fx.Ops, OpCreate); n != 2 {
		t.Fatalf("creates %d, want 2 (one idempotent re-create of w2, one new)", n)
	}
	var recreated bool
	for _, o := range fx.Ops {
		if o.Kind == OpCreate && o.Worker == w2 {
			recreated = true
		}
	}
	if !recreated {
		t.Errorf("created-but-not-ready worker w2 was not re-created (started)")
	}
	if count(fx.Ops, OpDelete) != 1 {
		t.Errorf("the failed worker found at start was not deleted: %+v", fx.Ops)
	}
	if st := h.state(); st.Busy != 1 || st.Provisioning != 2 || st.Running != 1 || st.Pending != 2 {
		t.Errorf("state %+v", st)
	}
}

func TestEngineWorkerEndingOnItsOwnIsReportedAndReplaced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  domain.WorkerChange
		want    domain.Lifecycle
		backoff bool
	}{
		{name: "crashed", change: domain.WorkerChange{Worker: domain.Worker{Phase: domain.PhaseFailed, Reason: "exited with code 137 (killed)"}},
			want: domain.LifecycleFailed, backoff: true},
		{name: "exited cleanly", change: domain.WorkerChange{Worker: domain.Worker{Phase: domain.PhaseExited, Reason: "exited with code 0"}},
			want: domain.LifecycleStopped},
		{name: "removed out of band", change: domain.WorkerChange{Gone: true}, want: domain.LifecycleFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start()
			h.job(domain.JobQueued, "a", "")
			ws := h.ready(h.reconcile().Ops)
			h.job(domain.JobStarted, "a", ws[0])
			h.reconcile()

			c := tc.change
			c.ID, c.Worker.ID = ws[0], ws[0]
			h.e.ObserveChange(testPool, c, h.now)
			fx := h.reconcile()
			got := lifecycles(fx, tc.want)
			if len(got) != 1 || got[0].Worker != ws[0] {
				t.Fatalf("lifecycle %s events %+v", tc.want, fx.Lifecycle)
			}
			if tc.change.Worker.Reason != "" && !strings.Contains(got[0].Reason, tc.change.Worker.Reason) {
				t.Errorf("reason %q does not carry the provider's %q", got[0].Reason, tc.change.Worker.Reason)
			}
			// Its job is demand again.
			if st := h.state(); st.Pending != 1 || st.Running != 0 {
				t.Fatalf("state %+v, want the job pending again", st)
			}
			creates := count(fx.Ops, OpCreate)
			if tc.backoff {
				if creates != 0 {
					t.Fatalf("crash: replaced at once, want a backoff first")
				}
				h.advance(2 * time.Second)
				creates = count(h.reconcile().Ops, OpCreate)
			}
			if creates != 1 {
				t.Fatalf("replacement creates = %d, want 1", creates)
			}
		})
	}
}

func TestEngineProvisionTimeout(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.job(domain.JobQueued, "a", "")
	fx := h.reconcile()
	w := fx.Ops[0].Worker
	h.e.OpDone(testPool, OpCreate, w, domain.Worker{ID: w, Phase: domain.PhasePending, Reason: "pulling"}, nil, h.now)
	h.advance(2 * time.Minute)
	fx = h.reconcile()
	failed := lifecycles(fx, domain.LifecycleFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Reason, "provision_timeout") {
		t.Fatalf("failed events %+v", failed)
	}
	if count(fx.Ops, OpDelete) != 1 || count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("ops %+v, want a delete and no immediate replacement", fx.Ops)
	}
	if h.e.Pool(testPool).Blocked() == "" {
		t.Errorf("pool not backing off after a timeout")
	}
}

// A worker that fails at once must not be recreated in a hot loop: the
// delay between attempts doubles up to retry_max.
func TestEngineCrashLoopBacksOff(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.RetryMax = 32 * time.Second })
	h.start()
	h.job(domain.JobQueued, "a", "")
	var attempts []time.Time
	end := h.now.Add(2 * time.Minute)
	for h.now.Before(end) {
		fx := h.reconcile()
		for _, o := range fx.Ops {
			switch o.Kind {
			case OpCreate:
				attempts = append(attempts, h.now)
				h.e.OpDone(testPool, OpCreate, o.Worker, domain.Worker{ID: o.Worker, Phase: domain.PhaseFailed, Reason: "exited with code 2"}, nil, h.now)
			case OpDelete:
				h.e.OpDone(testPool, OpDelete, o.Worker, domain.Worker{}, nil, h.now)
			}
		}
		h.advance(100 * time.Millisecond)
	}
	// 1, 2, 4, 8, 16, 32, 32 s gaps: 7 or 8 attempts in two minutes.
	if len(attempts) > 8 || len(attempts) < 5 {
		t.Fatalf("%d attempts in 2 minutes: %v", len(attempts), attempts)
	}
	for i := 2; i < len(attempts); i++ {
		prev, gap := attempts[i-1].Sub(attempts[i-2]), attempts[i].Sub(attempts[i-1])
		if gap < prev && gap < 32*time.Second {
			t.Errorf("gap %d (%v) shorter than gap before (%v)", i, gap, prev)
		}
	}
}

func TestEngineProviderDownHoldsCreates(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.e.SetProviderUp(testPool, false, "connection refused")
	h.job(domain.JobQueued, "a", "")
	if fx := h.reconcile(); len(fx.Ops) != 0 {
		t.Fatalf("ops while provider down: %+v", fx.Ops)
	}
	if b := h.e.Pool(testPool).Blocked(); !strings.Contains(b, "connection refused") {
		t.Fatalf("blocked = %q", b)
	}
	h.e.SetProviderUp(testPool, true, "")
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 1 {
		t.Fatalf("ops after recovery: %+v", fx.Ops)
	}
}

func TestEngineIgnoresUnknownPoolStaleAndUnknownWorker(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	if r, why := h.e.ApplyJob(domain.JobEvent{Kind: domain.JobQueued, Pool: "nope", JobID: "x"}, h.now); r != Ignored || why != domain.ReasonUnknownPool {
		t.Errorf("unknown pool: %s %s", r, why)
	}
	old := h.now.Add(-25 * time.Hour)
	if r, why := h.e.ApplyJob(domain.JobEvent{Kind: domain.JobQueued, Pool: testPool, JobID: "x", Time: old, Stored: old}, h.now); r != Ignored || why != domain.ReasonStale {
		t.Errorf("stale: %s %s", r, why)
	}
	h.job(domain.JobQueued, "a", "")
	if r, why := h.job(domain.JobStarted, "a", domain.NewWorkerID()); r != Ignored || why != domain.ReasonUnknownWorker {
		t.Errorf("unknown worker: %s %s", r, why)
	}
	if st := h.state(); st.Pending != 1 || st.Running != 0 {
		t.Errorf("a job started on an unknown worker must stay demand: %+v", st)
	}
}

func TestEngineDecisionPublishedOnlyOnChange(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	if len(h.fx.Decisions) != 1 {
		t.Fatalf("first decision not published: %+v", h.fx.Decisions)
	}
	for i := range 5 {
		h.job(domain.JobQueued, fmt.Sprint(i), "")
		h.reconcile()
		h.advance(time.Second)
		h.e.Tick(h.now)
		h.reconcile()
	}
	if len(h.fx.Decisions) != 6 {
		t.Fatalf("%d decisions, want 6 (0 then 1..5)", len(h.fx.Decisions))
	}
	h.e.Pool(testPool).dirty = true
	if fx := h.reconcile(); len(fx.Decisions) != 0 {
		t.Fatalf("unchanged desired republished: %+v", fx.Decisions)
	}
}

func TestEngineDryRun(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.DryRun = true })
	h.start()
	h.job(domain.JobQueued, "a", "")
	fx := h.reconcile()
	if len(fx.Ops) != 0 {
		t.Fatalf("dry run made provider calls: %+v", fx.Ops)
	}
	if len(fx.Decisions) != 1 || !fx.Decisions[0].Data.DryRun || fx.Decisions[0].Data.Desired != 1 {
		t.Fatalf("decisions %+v", fx.Decisions)
	}
}

func TestEngineExpiresJobsWithoutFinished(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.IdleTimeout = 0 })
	h.start()
	h.job(domain.JobQueued, "lost", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobStarted, "lost", ws[0])
	h.reconcile()
	h.advance(25 * time.Hour)
	h.e.Tick(h.now)
	fx := h.reconcile()
	if len(fx.Expired) != 1 || fx.Expired[0].Job != "lost" {
		t.Fatalf("expired %+v", fx.Expired)
	}
	if count(fx.Ops, OpStop) != 1 {
		t.Fatalf("the worker of the expired job is not released: %+v", fx.Ops)
	}
}

func TestEngineStopFailureIsRetried(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.IdleTimeout = 0 })
	h.start()
	h.job(domain.JobQueued, "a", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobFinished, "a", "")
	fx := h.reconcile()
	if count(fx.Ops, OpStop) != 1 {
		t.Fatalf("ops %+v", fx.Ops)
	}
	h.e.OpDone(testPool, OpStop, ws[0], domain.Worker{}, fmt.Errorf("engine timeout"), h.now)
	if fx := h.reconcile(); len(fx.Ops) != 0 {
		t.Fatalf("retried at once: %+v", fx.Ops)
	}
	h.advance(time.Minute)
	if fx := h.reconcile(); count(fx.Ops, OpStop) != 1 {
		t.Fatalf("stop not retried: %+v", fx.Ops)
	}
}

func TestEngineListRaceDoesNotLoseNewWorkers(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	listedAt := h.now
	h.job(domain.JobQueued, "a", "")
	h.advance(time.Millisecond)
	ws := h.ready(h.reconcile().Ops)
	// A listing taken before the create completed does not contain it.
	h.e.ObserveList(testPool, nil, listedAt, h.now)
	if _, ok := h.e.Pool(testPool).WorkerState(ws[0]); !ok {
		t.Fatalf("worker created after the listing started was dropped")
	}
	// A later listing without it means it is gone.
	h.advance(time.Second)
	h.e.ObserveList(testPool, nil, h.now, h.now)
	if _, ok := h.e.Pool(testPool).WorkerState(ws[0]); ok {
		t.Fatalf("worker missing from a fresh listing was kept")
	}
}

// A worker stopped by the daemon may still show up for a moment: in a
// listing taken before the stop returned, or in an engine event about its
// removal. Such a sighting is not a new worker to adopt and report.
func TestEngineIgnoresLateSightingsOfRemovedWorkers(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.IdleTimeout = 0 })
	h.start()
	h.job(domain.JobQueued, "a", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobFinished, "a", "")
	fx := h.reconcile()
	if count(fx.Ops, OpStop) != 1 {
		t.Fatalf("ops %+v", fx.Ops)
	}
	listedAt := h.now
	h.advance(time.Second)
	h.done(fx.Ops, OpStop, nil)
	h.reconcile()

	for _, c := range []domain.WorkerChange{
		{ID: ws[0], Worker: domain.Worker{ID: ws[0], Phase: domain.PhaseExited, Reason: "being removed"}},
		{ID: ws[0], Worker: domain.Worker{ID: ws[0], Phase: domain.PhaseReady}},
	} {
		h.e.ObserveChange(testPool, c, h.now)
		h.e.ObserveList(testPool, []domain.Worker{c.Worker}, listedAt, h.now)
		if fx := h.reconcile(); len(fx.Ops)+len(fx.Lifecycle) != 0 {
			t.Fatalf("late sighting %+v caused %+v", c.Worker, fx)
		}
		if st := h.state(); st.Current()+st.Failed+st.Draining != 0 {
			t.Fatalf("late sighting adopted: %+v", st)
		}
	}
	// Long after, a worker with that id is real again (it was never
	// removed after all) and is adopted.
	h.advance(removedMemory)
	h.e.Tick(h.now)
	h.e.ObserveList(testPool, []domain.Worker{{ID: ws[0], Phase: domain.PhaseReady}}, h.now, h.now)
	if st := h.state(); st.Idle != 1 {
		t.Fatalf("a live worker seen long after its removal was not adopted: %+v", st)
	}
}
