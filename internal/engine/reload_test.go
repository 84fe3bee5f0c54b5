package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// jobSeq publishes a job event with an explicit stream sequence, as the
// consumer hands them over.
func (h *harness) jobSeq(seq uint64, pool domain.PoolName, kind domain.JobKind, id string, w domain.WorkerID) (Result, string) {
	h.t.Helper()
	return h.e.ApplyJob(domain.JobEvent{Kind: kind, ID: fmt.Sprint(seq), Seq: seq, Pool: pool, JobID: domain.JobID(id),
		WorkerID: w, Time: h.now, Stored: h.now, Outcome: domain.OutcomeSucceeded}, h.now)
}

func stops(ops []Op) []domain.WorkerID {
	var out []domain.WorkerID
	for _, o := range ops {
		if o.Kind == OpStop {
			out = append(out, o.Worker)
		}
	}
	return out
}

// Raising max_workers under load asks for every worker the new limit
// allows in the next reconcile; lowering it stops idle workers only.
func TestUpdatePoolMaxWorkers(t *testing.T) {
	cfg := func(max int) PoolConfig {
		return PoolConfig{Name: testPool, Provider: "test", StopGrace: time.Second, RetryInitial: time.Second, RetryMax: time.Minute,
			Settings: policy.Settings{MaxWorkers: max, JobsPerWorker: 1, IdleTimeout: time.Minute,
				ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 10}}
	}
	h := newHarness(t, func(c *PoolConfig) { *c = cfg(2) })
	h.start()
	for i := range 6 {
		h.job(domain.JobQueued, fmt.Sprint("j", i), "")
	}
	ws := h.ready(h.reconcile().Ops)
	if len(ws) != 2 {
		t.Fatalf("%d creates at max_workers 2", len(ws))
	}
	h.job(domain.JobStarted, "j0", ws[0])
	h.job(domain.JobStarted, "j1", ws[1])
	h.reconcile()

	if !h.e.UpdatePool(cfg(5)) {
		t.Fatal("UpdatePool of an existing pool returned false")
	}
	fx := h.reconcile()
	more := h.ready(fx.Ops)
	if len(more) != 3 || fx.Decisions[0].Data.Desired != 5 {
		t.Fatalf("after raising max_workers to 5: %d creates, decisions %+v; want 3 creates in one reconcile", len(more), fx.Decisions)
	}
	h.job(domain.JobStarted, "j2", more[0])
	h.reconcile()

	// Lowered to 1 with 3 busy and 2 idle workers: only the idle ones
	// stop (after idle_timeout), never a busy one.
	h.e.UpdatePool(cfg(1))
	h.reconcile()
	h.advance(2 * time.Minute)
	fx = h.reconcile()
	got := stops(fx.Ops)
	slices.Sort(got)
	want := []domain.WorkerID{more[1], more[2]}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stops after lowering max_workers to 1: %v, want the idle %v", got, want)
	}
	if st := h.state(); st.Busy != 3 {
		t.Errorf("busy workers %d, want 3 untouched", st.Busy)
	}
	if h.e.UpdatePool(PoolConfig{Name: "nope"}) {
		t.Error("UpdatePool of an unknown pool returned true")
	}
}

// A removed pool stops its idle workers at once, each busy one when its
// job finishes, keeps folding its events meanwhile, and goes when its last
// worker is gone; then its events are for an unknown pool.
func TestRemovePoolDrainsThenGoes(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobQueued, "b", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobStarted, "a", ws[0])
	h.job(domain.JobFinished, "b", "") // ws[1] stays idle
	h.reconcile()

	if !h.e.RemovePool(testPool) {
		t.Fatal("RemovePool returned false")
	}
	fx := h.reconcile()
	if got := stops(fx.Ops); len(got) != 1 || got[0] != ws[1] {
		t.Fatalf("stops on removal: %v, want only the idle %s", got, ws[1])
	}
	if d := fx.Decisions; len(d) != 1 || d[0].Data.Desired != 0 || d[0].Data.Reason != removedReason {
		t.Errorf("decision on removal: %+v", d)
	}
	if !h.e.Pool(testPool).Removing() {
		t.Error("pool not marked removing")
	}
	h.done(fx.Ops, OpStop, nil)
	h.advance(time.Hour)
	if fx := h.reconcile(); len(stops(fx.Ops)) != 0 || len(fx.Removed) != 0 {
		t.Fatalf("a busy worker was stopped or the pool went while it ran a job: %+v", fx)
	}
	h.job(domain.JobFinished, "a", ws[0])
	fx = h.reconcile()
	if got := stops(fx.Ops); len(got) != 1 || got[0] != ws[0] {
		t.Fatalf("stops after the job finished: %v, want %s", got, ws[0])
	}
	h.done(fx.Ops, OpStop, nil)
	fx = h.reconcile()
	if !slices.Equal(fx.Removed, []domain.PoolName{testPool}) || h.e.Pool(testPool) != nil || len(h.e.Pools()) != 0 {
		t.Fatalf("pool not gone after its last worker: removed %v", fx.Removed)
	}
	if res, reason := h.job(domain.JobQueued, "c", ""); res != Ignored || reason != domain.ReasonUnknownPool {
		t.Errorf("event for the removed pool: %v %q", res, reason)
	}
}

// Adding a pool back while it is being removed cancels the removal.
func TestAddPoolWhileRemovingKeepsIt(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.job(domain.JobQueued, "a", "")
	ws := h.ready(h.reconcile().Ops)
	h.job(domain.JobStarted, "a", ws[0])
	h.reconcile()
	h.e.RemovePool(testPool)
	h.reconcile()
	c := h.e.Pool(testPool).Config()
	c.Settings = policy.Settings{MaxWorkers: 4, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 4}
	h.e.AddPool(c)
	h.job(domain.JobQueued, "b", "")
	fx := h.reconcile()
	if h.e.Pool(testPool).Removing() || count(fx.Ops, OpCreate) != 1 {
		t.Fatalf("re-added pool: removing %v, %d creates for a new job", h.e.Pool(testPool).Removing(), count(fx.Ops, OpCreate))
	}
}

// A pool added by a reload takes the retained stream read again (its
// jobs queued before it existed are demand) and decides nothing until
// that fold is done; the pools that already had those messages skip them.
func TestAddPoolFoldsTheRetainedStreamAgain(t *testing.T) {
	h := newHarness(t, nil)
	const added = domain.PoolName("added")
	h.jobSeq(1, testPool, domain.JobQueued, "old", "")
	h.jobSeq(2, added, domain.JobQueued, "x", "")
	h.jobSeq(3, added, domain.JobQueued, "y", "")
	h.jobSeq(4, added, domain.JobFinished, "y", "")
	h.start()
	if n := h.state().Pending; n != 1 {
		t.Fatalf("pending %d before the add", n)
	}

	c := h.e.Pool(testPool).Config()
	c.Name = added
	h.e.AddPool(c)
	h.jobSeq(5, added, domain.JobQueued, "z", "") // live, before the refold reaches it
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("the added pool created workers before its fold: %+v", fx.Ops)
	}
	// The stream read again from its start.
	for _, e := range []struct {
		seq  uint64
		pool domain.PoolName
		kind domain.JobKind
		id   string
		want Result
	}{
		{1, testPool, domain.JobQueued, "old", Replayed},
		{2, added, domain.JobQueued, "x", Applied},
		{3, added, domain.JobQueued, "y", Applied},
		{4, added, domain.JobFinished, "y", Applied},
		{5, added, domain.JobQueued, "z", Duplicate},
	} {
		if res, _ := h.jobSeq(e.seq, e.pool, e.kind, e.id, ""); res != e.want {
			t.Errorf("seq %d (%s %s) read again: %v, want %v", e.seq, e.pool, e.kind, res, e.want)
		}
	}
	if n := h.state().Pending; n != 1 {
		t.Errorf("pending of the existing pool %d after the refold, want 1", n)
	}
	if !h.e.Replayed(4) || h.e.Replayed(6) || h.e.Replayed(6) != true {
		t.Error("Replayed does not remember what it has read")
	}
	if !h.e.CaughtUp(h.now) {
		t.Fatal("CaughtUp did not fold the added pool")
	}
	h.e.ObserveList(added, nil, h.now, h.now)
	fx := h.reconcile()
	n := 0
	for _, o := range fx.Ops {
		if o.Kind == OpCreate && o.Pool == added {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the added pool created %d workers after its fold, want 2 (x and z)", n)
	}
	if h.e.CaughtUp(h.now) {
		t.Error("CaughtUp reported a fold with nothing left to fold")
	}
}

// A removed pool stops its idle workers at once whatever its warm-buffer
// and idle-hold settings were (idle_workers: auto, wait targets,
// idle_timeout: auto).
func TestRemovePoolIgnoresWarmBufferAndIdleHold(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) {
		c.Settings.MinWorkers = 2
		c.Settings.IdleAuto, c.Settings.TargetWaitAuto = true, true
		c.Settings.IdleTimeoutAuto, c.Settings.IdleTimeoutMin = true, time.Hour
		c.Settings.IdleTimeout = time.Hour
	})
	h.start()
	ws := h.ready(h.fx.Ops)
	h.reconcile()
	if len(ws) < 2 {
		t.Fatalf("%d workers at min_workers 2", len(ws))
	}
	h.e.RemovePool(testPool)
	if got := stops(h.reconcile().Ops); len(got) != len(ws) {
		t.Errorf("removal stopped %d of %d idle workers", len(got), len(ws))
	}
}
