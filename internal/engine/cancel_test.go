package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// A batch's jobs end (here: cancelled) while its workers boot: the
// booting workers above the desired count are stopped, newest first, but
// only once their creates have returned, and the reason says why.
func TestEngineStopsSurplusBootingWorkers(t *testing.T) {
	h := newHarness(t, nil) // idle_timeout 1m: a surplus worker would idle longer than a boot
	h.start()
	for i := range 3 {
		h.job(domain.JobQueued, fmt.Sprint("j", i), "")
	}
	fx := h.reconcile()
	if n := count(fx.Ops, OpCreate); n != 3 {
		t.Fatalf("%d creates, want 3", n)
	}
	h.job(domain.JobFinished, "j1", "")
	h.job(domain.JobFinished, "j2", "")
	if got := h.reconcile(); len(got.Ops) != 0 {
		t.Fatalf("creates still in flight: ops %+v, want none (a stop now would find nothing to stop)", got.Ops)
	}
	ids := h.pending(fx.Ops)
	fx = h.reconcile()
	var stopped []domain.WorkerID
	for _, o := range fx.Ops {
		if o.Kind != OpStop {
			t.Fatalf("op %+v, want only stops", o)
		}
		stopped = append(stopped, o.Worker)
	}
	if want := []domain.WorkerID{ids[2], ids[1]}; !slices.Equal(stopped, want) {
		t.Fatalf("stopped %v, want the two newest booting workers %v", stopped, want)
	}
	dr := lifecycles(fx, domain.LifecycleDraining)
	if len(dr) != 2 || !strings.Contains(dr[0].Reason, "stopped while booting: surplus, desired 1 < 3 workers (3 booting") ||
		!strings.Contains(dr[0].Reason, "longer than the") {
		t.Fatalf("draining events %+v, want two saying why a booting worker stopped", dr)
	}
	h.done(fx.Ops, OpStop, nil)
	h.reconcile()
	if st := h.state(); st.Provisioning != 1 || st.Current() != 1 || st.Draining != 0 {
		t.Fatalf("state %+v, want the one booting worker j0 needs", st)
	}
	checkWorkers(t, h.e.Pool(testPool))
}

func TestEngineBootingWorkerRules(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*PoolConfig)
		// queued jobs, then how many of them end while their workers boot
		queued, ended int
		// a job starts on the first worker before its create returns
		startOnFirst bool
		// a worker booted in 20 s before the jobs came
		measuredBoot bool
		wantStops    int
	}{
		{name: "a fixed idle_timeout longer than a boot: surplus booting workers stop", queued: 4, ended: 3, wantStops: 3},
		{name: "idle_timeout no longer than a boot: they boot and stop as idle workers", queued: 4, ended: 3,
			mod: func(c *PoolConfig) { c.Settings.IdleTimeout = 0 }},
		{name: "idle_timeout auto (at most one boot): they boot", queued: 4, ended: 3, measuredBoot: true,
			mod: func(c *PoolConfig) { c.Settings.IdleTimeoutAuto = true }},
		{name: "idle_timeout auto before a boot is measured: they boot", queued: 4, ended: 3,
			mod: func(c *PoolConfig) { c.Settings.IdleTimeoutAuto = true }},
		{name: "idle_timeout auto with idle_timeout_min above the boot: they stop", queued: 4, ended: 3, wantStops: 3, measuredBoot: true,
			mod: func(c *PoolConfig) {
				c.Settings.IdleTimeoutAuto, c.Settings.IdleTimeoutMin, c.Settings.IdleTimeoutMax = true, time.Minute, 5*time.Minute
			}},
		{name: "no surplus: none stops", queued: 4, ended: 0},
		{name: "the warm buffer counts: the workers above demand and it stop", queued: 4, ended: 3, wantStops: 3,
			mod: func(c *PoolConfig) { c.Settings.IdleWorkers = 2 }},
		{name: "a worker that took a job is never stopped", queued: 2, ended: 1, startOnFirst: true, wantStops: 1},
		{name: "dry run stops nothing", queued: 4, ended: 3, mod: func(c *PoolConfig) { c.DryRun = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.mod)
			h.start()
			h.pending(h.fx.Ops) // the warm buffer's
			if tt.measuredBoot {
				h.job(domain.JobQueued, "first", "")
				ids := h.pending(h.reconcile().Ops)
				h.advance(20 * time.Second)
				h.boot(ids...)
				h.job(domain.JobStarted, "first", ids[0])
				h.job(domain.JobFinished, "first", ids[0])
				h.reconcile()
				h.advance(20 * time.Minute)
				h.reconcile()
				if st := h.state(); st.Current() != 0 {
					t.Fatalf("state %+v before the jobs, want no worker", st)
				}
			}
			for i := range tt.queued {
				h.job(domain.JobQueued, fmt.Sprint("j", i), "")
			}
			fx := h.reconcile()
			creates := fx.Ops
			if tt.startOnFirst {
				h.job(domain.JobStarted, "j0", creates[0].Worker)
			}
			h.pending(creates)
			for i := range tt.ended {
				h.job(domain.JobFinished, fmt.Sprint("j", tt.queued-1-i), "")
			}
			fx = h.reconcile()
			if d, _ := h.e.Pool(testPool).LastDecision(); tt.wantStops > 0 && h.state().Current() != d.Desired {
				t.Fatalf("%d workers left, desired %d: want the desired count left", h.state().Current(), d.Desired)
			}
			if n := count(fx.Ops, OpStop); n != tt.wantStops {
				t.Fatalf("%d stops (ops %+v), want %d", n, fx.Ops, tt.wantStops)
			}
			if tt.wantStops > 0 && (len(fx.Decisions) != 1 || fx.Decisions[0].Direction != "down" ||
				!strings.Contains(fx.Decisions[0].Data.Reason, fmt.Sprintf("; stopping %d booting worker(s): surplus, desired", tt.wantStops))) {
				t.Fatalf("decisions %+v, want one down saying why booting workers stop", fx.Decisions)
			}
			for _, o := range fx.Ops {
				if tt.startOnFirst && o.Worker == creates[0].Worker {
					t.Fatalf("the worker running j0 was stopped")
				}
			}
			checkWorkers(t, h.e.Pool(testPool))
		})
	}
}

// A tiered pool stops its last tier's booting workers first, newest
// first within each tier; a pool with one provider has no tier states
// and walks its booting workers alone.
func TestCancellableOrder(t *testing.T) {
	for _, tiered := range []bool{false, true} {
		t.Run(fmt.Sprint("tiered ", tiered), func(t *testing.T) {
			h := newHarness(t, func(c *PoolConfig) {
				if tiered {
					c.Tiers = []TierConfig{{Name: "docker", Provider: "docker", MaxWorkers: 2}, {Name: "kubernetes", Provider: "kubernetes", MaxWorkers: 8}}
				}
			})
			h.start()
			var ids []domain.WorkerID
			if tiered { // the first two go to kubernetes, the next two to docker
				h.e.SetTierUp(testPool, 0, false, "down")
			}
			for i := range 4 {
				if i == 2 && tiered {
					h.e.SetTierUp(testPool, 0, true, "")
				}
				h.job(domain.JobQueued, fmt.Sprint("j", i), "")
				h.advance(time.Second)
				fx := h.reconcile()
				ids = append(ids, h.pending(fx.Ops)...)
			}
			p := h.e.Pool(testPool)
			var got []domain.WorkerID
			for c := range p.cancellable(h.now) {
				got = append(got, c.ID)
			}
			want := []domain.WorkerID{ids[3], ids[2], ids[1], ids[0]}
			if tiered { // the last tier's first
				want = []domain.WorkerID{ids[1], ids[0], ids[3], ids[2]}
				if a, _ := p.WorkerTier(ids[0]); a != 1 {
					t.Fatalf("worker 0 on tier %d, want 1", a)
				}
				if b, _ := p.WorkerTier(ids[3]); b != 0 {
					t.Fatalf("worker 3 on tier %d, want 0", b)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("cancellable %v, want %v", got, want)
			}
		})
	}
}
