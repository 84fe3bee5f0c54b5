package engine

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// A standby pool (another replica holds its lease) folds the job stream
// and follows the provider, but decides nothing and asks for no call;
// becoming active it starts from what it followed and carries out what
// it kept.
func TestStandbyPoolFollowsButNeverActs(t *testing.T) {
	cases := []struct {
		name string
		// setup runs on the standby pool; then it becomes active.
		setup func(h *harness)
		// standby checks the effects taken while standby.
		standby func(t *testing.T, h *harness, fx Effects)
		// active checks the effects of becoming active and reconciling.
		active func(t *testing.T, h *harness, fx Effects)
	}{
		{"queued jobs create nothing until active",
			func(h *harness) {
				h.job(domain.JobQueued, "j1", "")
				h.job(domain.JobQueued, "j2", "")
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 || len(fx.Decisions) != 0 {
					t.Fatalf("standby acted: ops %v decisions %v", fx.Ops, fx.Decisions)
				}
				if st := h.state(); st.Pending != 2 {
					t.Fatalf("standby ledger pending %d, want 2 (it folds the stream)", st.Pending)
				}
			},
			func(t *testing.T, h *harness, fx Effects) {
				if n := count(fx.Ops, OpCreate); n != 2 {
					t.Fatalf("active creates %d, want 2", n)
				}
				if len(fx.Decisions) != 1 {
					t.Fatalf("decisions %d, want 1", len(fx.Decisions))
				}
			}},
		{"the holder's idle worker is adopted, never drained",
			func(h *harness) {
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: "w1", Worker: domain.Worker{ID: "w1", Pool: testPool, Phase: domain.PhaseReady}}, h.now)
				h.advance(time.Hour) // far past idle_timeout
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 {
					t.Fatalf("standby issued %v", fx.Ops)
				}
				if h.state().Idle != 1 {
					t.Fatalf("standby idle %d, want the holder's worker followed", h.state().Idle)
				}
			},
			func(t *testing.T, h *harness, fx Effects) {
				if n := count(fx.Ops, OpStop); n != 1 {
					t.Fatalf("active stops %d, want the idle worker stopped once it is this replica's", n)
				}
			}},
		{"a busy worker of the holder is never stopped",
			func(h *harness) {
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: "w1", Worker: domain.Worker{ID: "w1", Pool: testPool, Phase: domain.PhaseReady}}, h.now)
				h.job(domain.JobQueued, "j1", "")
				h.job(domain.JobStarted, "j1", "w1")
				h.advance(time.Hour)
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 || h.state().Busy != 1 {
					t.Fatalf("standby ops %v busy %d", fx.Ops, h.state().Busy)
				}
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 {
					t.Fatalf("active issued %v on a busy worker", fx.Ops)
				}
			}},
		{"a worker that ended is deleted only once active",
			func(h *harness) {
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: "w1", Worker: domain.Worker{ID: "w1", Pool: testPool, Phase: domain.PhaseReady}}, h.now)
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: "w1", Worker: domain.Worker{ID: "w1", Pool: testPool, Phase: domain.PhaseFailed, Reason: "oom"}}, h.now)
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 {
					t.Fatalf("standby issued %v", fx.Ops)
				}
			},
			func(t *testing.T, h *harness, fx Effects) {
				if n := count(fx.Ops, OpDelete); n != 1 {
					t.Fatalf("active deletes %d, want 1", n)
				}
			}},
		{"a worker created but not started is created again once active",
			func(h *harness) {
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: "w1", Worker: domain.Worker{ID: "w1", Pool: testPool, Phase: domain.PhasePending}}, h.now)
			},
			func(t *testing.T, h *harness, fx Effects) {
				if len(fx.Ops) != 0 {
					t.Fatalf("standby issued %v", fx.Ops)
				}
			},
			func(t *testing.T, h *harness, fx Effects) {
				if n := count(fx.Ops, OpCreate); n < 1 || fx.Ops[0].Worker != "w1" {
					t.Fatalf("active ops %v, want w1 created again (idempotent) first", fx.Ops)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if !h.e.SetActive(testPool, false, h.now) {
				t.Fatal("SetActive(false) changed nothing")
			}
			h.start()
			c.setup(h)
			h.e.StopIdle(h.now) // a shutdown of the standby stops nothing either
			fx := h.reconcile()
			c.standby(t, h, fx)
			if !h.e.SetActive(testPool, true, h.now) {
				t.Fatal("SetActive(true) changed nothing")
			}
			fx = h.e.Take()
			h.e.Reconcile(h.now)
			more := h.e.Take()
			fx.Ops = append(fx.Ops, more.Ops...)
			fx.Decisions = append(fx.Decisions, more.Decisions...)
			c.active(t, h, fx)
		})
	}
}
