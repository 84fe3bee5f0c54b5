package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// checkWorkers asserts what setState keeps true: the counts are the
// workers' states, and the idle and provisioning lists hold exactly the
// workers in those states, oldest first.
func checkWorkers(t *testing.T, p *Pool) {
	t.Helper()
	var want [len(domain.WorkerStates)]int
	for _, w := range p.workers {
		want[stateIndex(w.state)]++
	}
	if want != p.count {
		t.Fatalf("counts %v, workers' states %v", p.count, want)
	}
	for _, l := range []struct {
		list  *workerList
		state domain.WorkerState
	}{{&p.idle, domain.StateIdle}, {&p.provisioning, domain.StateProvisioning}} {
		n := 0
		for w := l.list.head; w != nil; w = w.next {
			n++
			if w.state != l.state || p.workers[w.id] != w {
				t.Fatalf("%s list holds %s in state %q", l.state, w.id, w.state)
			}
			if w.next != nil && w.next.since.Before(w.since) {
				t.Fatalf("%s list out of order: %v before %v", l.state, w.since, w.next.since)
			}
		}
		if n != l.list.n || n != p.Count(l.state) {
			t.Fatalf("%s list has %d (n %d), count %d", l.state, n, l.list.n, p.Count(l.state))
		}
	}
}

// Whatever happens to the workers, in any order, their counts and lists
// stay right: every state change goes through one method.
func TestWorkerStateMachineKeepsCountsAndLists(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		h := newHarness(t, func(c *PoolConfig) { c.Settings.MaxWorkers = 8; c.Settings.IdleTimeout = 10 * time.Second })
		p := h.e.Pool(testPool)
		h.start(domain.Worker{ID: domain.NewWorkerID(), Pool: testPool, Phase: domain.PhasePending, CreatedAt: h.now.Add(-time.Minute)})
		jobs := 0
		for range 300 {
			h.advance(time.Duration(r.IntN(5000)) * time.Millisecond)
			ids := make([]domain.WorkerID, 0, len(p.workers))
			for id := range p.workers {
				ids = append(ids, id)
			}
			var id domain.WorkerID
			if len(ids) > 0 {
				id = ids[r.IntN(len(ids))]
			}
			switch r.IntN(8) {
			case 0, 1:
				jobs++
				h.job(domain.JobQueued, fmt.Sprint("j", jobs), "")
			case 2:
				h.job(domain.JobStarted, fmt.Sprint("j", r.IntN(jobs+1)), id)
			case 3:
				h.job(domain.JobFinished, fmt.Sprint("j", r.IntN(jobs+1)), "")
			case 4:
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: id, Worker: domain.Worker{ID: id, Pool: testPool, Phase: domain.PhaseReady}}, h.now)
			case 5:
				ph := []domain.Phase{domain.PhaseFailed, domain.PhaseExited}[r.IntN(2)]
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: id, Worker: domain.Worker{ID: id, Pool: testPool, Phase: ph}}, h.now)
			case 6:
				h.e.ObserveChange(testPool, domain.WorkerChange{ID: id, Gone: true}, h.now)
			case 7:
				h.e.ObserveList(testPool, nil, h.now.Add(-time.Second), h.now)
			}
			checkWorkers(t, p)
			// Answer every call the reconcile asks for, some with errors.
			for _, o := range h.reconcile().Ops {
				var err error
				if r.IntN(4) == 0 {
					err = errors.New("provider said no")
				}
				got := domain.Worker{ID: o.Worker, Pool: testPool, Phase: domain.PhasePending}
				h.e.OpDone(testPool, o.Kind, o.Worker, got, err, h.now)
				checkWorkers(t, p)
			}
		}
	}
}

// A provider that is down holds creates with its own reason, and the pool
// sets no wake-up for it: no backoff text is written and then replaced.
func TestEngineProviderUnavailableIsAPlanInput(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.job(domain.JobQueued, "a", "")
	fx := h.reconcile()
	h.done(fx.Ops, OpCreate, errors.New("engine unreachable")) // a failure: the pool backs off
	h.e.SetProviderUp(testPool, false, "connection refused")
	h.job(domain.JobQueued, "b", "")
	if fx := h.reconcile(); count(fx.Ops, OpCreate) != 0 {
		t.Fatalf("creates while the provider is down: %+v", fx.Ops)
	}
	p := h.e.Pool(testPool)
	if b := p.Blocked(); b != "provider test unavailable: connection refused" {
		t.Fatalf("blocked = %q", b)
	}
	if w := p.NextWake(); !w.IsZero() && w.After(h.now.Add(time.Hour)) {
		t.Fatalf("next wake %v: a sentinel date leaked", w)
	}
}
