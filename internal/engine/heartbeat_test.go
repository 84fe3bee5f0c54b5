package engine

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// A worker reporting a running job is busy whatever the ledger says, and
// is not stopped; its word is believed for the heartbeat timeout only.
func TestHeartbeatKeepsWorkerBusy(t *testing.T) {
	cases := []struct {
		name      string
		forge     bool // a finished without worker_id closes the ledger's run
		hbJobs    int
		wait      time.Duration // after the finished, with Ticks
		keep      bool          // the worker keeps reporting
		wantState domain.WorkerState
		wantStops int
	}{
		{"forged finished, heartbeat keeps saying 1 job: busy, never stopped", true, 1, 10 * time.Minute, true, domain.StateBusy, 0},
		{"forged finished, heartbeat stops: idle and stopped after the timeout", true, 1, 3 * time.Minute, false, noState, 1},
		{"heartbeat with no job, ledger busy: busy", false, 0, 10 * time.Minute, true, domain.StateBusy, 0},
		{"ledger idle, heartbeat with no job: stopped at idle timeout", true, 0, 3 * time.Minute, true, noState, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(pc *PoolConfig) {
				pc.Settings.IdleTimeout = time.Minute
				pc.Heartbeat = 30 * time.Second
				pc.DrainTimeout = time.Hour
			})
			w := domain.NewWorkerID()
			h.start(domain.Worker{ID: w, Pool: testPool, Phase: domain.PhaseReady})
			h.job(domain.JobQueued, "a", "")
			h.job(domain.JobStarted, "a", w)
			if res, reason := h.e.Heartbeat(testPool, w, c.hbJobs, h.now); res != Applied {
				t.Fatalf("heartbeat: %s %s", res, reason)
			}
			if c.forge {
				h.job(domain.JobFinished, "a", "")
			}
			stops := 0
			for el := time.Duration(0); el < c.wait; el += 5 * time.Second {
				h.advance(5 * time.Second)
				// the worker keeps reporting while the case says it runs
				if c.keep {
					h.e.Heartbeat(testPool, w, c.hbJobs, h.now)
				}
				h.e.Tick(h.now)
				stops += count(h.reconcile().Ops, OpStop)
			}
			st, _ := h.e.Pool(testPool).WorkerState(w)
			if c.wantStops > 0 {
				st = noState // drained: what matters is the stop
			}
			if st != c.wantState || stops != c.wantStops {
				t.Fatalf("state %q stops %d, want %q %d", st, stops, c.wantState, c.wantStops)
			}
		})
	}
}

// An idle worker whose heartbeat reports a job becomes busy; a heartbeat
// from another pool's worker is refused; stops carry the drain timeout.
func TestHeartbeatIdleToBusyAndStopCarriesDrainTimeout(t *testing.T) {
	h := newHarness(t, func(pc *PoolConfig) {
		pc.Settings.IdleTimeout = time.Minute
		pc.Heartbeat = 30 * time.Second
		pc.DrainTimeout = 2 * time.Hour
	})
	w := domain.NewWorkerID()
	h.start(domain.Worker{ID: w, Pool: testPool, Phase: domain.PhaseReady})
	h.e.Heartbeat(testPool, w, 2, h.now)
	if st, _ := h.e.Pool(testPool).WorkerState(w); st != domain.StateBusy {
		t.Fatalf("idle worker reporting 2 jobs: %s", st)
	}
	if res, reason := h.e.Heartbeat(testPool, domain.NewWorkerID(), 1, h.now); res != Ignored || reason != domain.ReasonUnknownWorker {
		t.Fatalf("unknown worker heartbeat: %s %s", res, reason)
	}
	h.e.Heartbeat(testPool, w, 0, h.now)
	var stop *Op
	for range 30 {
		h.advance(5 * time.Second)
		h.e.Tick(h.now)
		for _, o := range h.reconcile().Ops {
			if o.Kind == OpStop {
				stop = &o
			}
		}
	}
	if stop == nil || stop.Grace != 5*time.Second || stop.DrainTimeout != 2*time.Hour {
		t.Fatalf("stop op %+v, want grace 5s and drain timeout 2h", stop)
	}
}

// A report read from a stream (HeartbeatAt) is believed from when it was
// made: one older than the timeout is ignored, one made 20s ago (timeout
// 30s) keeps the worker busy 10s more, an older word than the one
// believed changes nothing, and one from the future counts from now.
func TestHeartbeatAtBelievedFromItsTime(t *testing.T) {
	cases := []struct {
		name     string
		age      time.Duration // now - the report's time
		wantRes  Result
		busyFor  time.Duration // how long the worker stays busy (0: not made busy)
		previous time.Duration // a report believed before, this old (0: none)
	}{
		{"made 40s ago, timeout 30s: old news", 40 * time.Second, Ignored, 0, 0},
		{"made 20s ago: busy for 10s more", 20 * time.Second, Applied, 10 * time.Second, 0},
		{"made now", 0, Applied, 30 * time.Second, 0},
		{"from the future: counts from now", -time.Hour, Applied, 30 * time.Second, 0},
		{"older than the word believed: ignored", 20 * time.Second, Ignored, 25 * time.Second, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(pc *PoolConfig) {
				pc.Settings.IdleTimeout = time.Hour
				pc.Heartbeat = 30 * time.Second
			})
			w := domain.NewWorkerID()
			h.start(domain.Worker{ID: w, Pool: testPool, Phase: domain.PhaseReady})
			if c.previous > 0 {
				if res, _ := h.e.HeartbeatAt(testPool, w, 1, h.now.Add(-c.previous), h.now); res != Applied {
					t.Fatalf("previous report: %s", res)
				}
			}
			if res, reason := h.e.HeartbeatAt(testPool, w, 1, h.now.Add(-c.age), h.now); res != c.wantRes || reason != "" {
				t.Fatalf("HeartbeatAt: %s %q, want %s", res, reason, c.wantRes)
			}
			busy := func() bool {
				st, _ := h.e.Pool(testPool).WorkerState(w)
				return st == domain.StateBusy
			}
			start := h.now
			for busy() && h.now.Sub(start) < time.Hour {
				h.advance(time.Second)
				h.e.Tick(h.now)
			}
			if got := h.now.Sub(start); (c.busyFor == 0 && got != 0) || (c.busyFor > 0 && (got < c.busyFor || got > c.busyFor+time.Second)) {
				t.Fatalf("busy for %s, want %s", got, c.busyFor)
			}
		})
	}
}
