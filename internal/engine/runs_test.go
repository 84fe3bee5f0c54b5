package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

func fw(j domain.JobID, w domain.WorkerID, want Result) step {
	return step{domain.JobFinished, j, w, want}
}

// Runs: a started after the job's finished from another worker opens a
// run (counted), a finished naming a worker closes only its run.
func TestLedgerRuns(t *testing.T) {
	tests := []struct {
		name    string
		steps   []step
		running int
		on      map[domain.WorkerID]int
		reruns  int
	}{
		{name: "rerun after a crash lost the ack: the second started opens a run",
			steps:   []step{q("a", Applied), s("a", "w1", Applied), fw("a", "w1", Applied), s("a", "w2", Applied)},
			running: 1, on: map[domain.WorkerID]int{"w2": 1}, reruns: 1},
		{name: "the rerun's events again change nothing",
			steps: []step{q("a", Applied), s("a", "w1", Applied), fw("a", "w1", Applied), s("a", "w2", Applied),
				s("a", "w2", Duplicate), fw("a", "w1", Duplicate), q("a", Duplicate)},
			running: 1, on: map[domain.WorkerID]int{"w2": 1}, reruns: 1},
		{name: "the rerun's finished closes it",
			steps:  []step{q("a", Applied), s("a", "w1", Applied), fw("a", "w1", Applied), s("a", "w2", Applied), fw("a", "w2", Applied), s("a", "w2", Duplicate)},
			reruns: 1},
		{name: "redelivery moved the job: the first run's finished leaves the second open",
			steps:   []step{q("a", Applied), s("a", "w1", Applied), s("a", "w2", Applied), fw("a", "w1", Applied)},
			running: 1, on: map[domain.WorkerID]int{"w2": 1}},
		{name: "then the second run's finished closes it",
			steps: []step{q("a", Applied), s("a", "w1", Applied), s("a", "w2", Applied), fw("a", "w1", Applied), fw("a", "w2", Applied)}},
		{name: "a finished naming a worker not running the job closes nothing",
			steps:   []step{q("a", Applied), s("a", "w1", Applied), fw("a", "w2", Applied), fw("a", "w2", Duplicate)},
			running: 1, on: map[domain.WorkerID]int{"w1": 1}},
		{name: "a finished without a worker closes the job's run",
			steps: []step{q("a", Applied), s("a", "w1", Applied), fw("a", "", Applied), s("a", "w1", Duplicate)}},
		{name: "a started after a finished without worker is its late started",
			steps: []step{fw("a", "", Applied), s("a", "w1", Duplicate)}},
		{name: "a finished from a worker before its started: the started is late",
			steps: []step{fw("a", "w1", Applied), s("a", "w1", Duplicate)}},
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger()
			reruns := 0
			for i, st := range tt.steps {
				ch := applyStep(l, st, at.Add(time.Duration(i)*time.Second))
				if ch.Result != st.want {
					t.Fatalf("step %d (%s %s %s): result %s, want %s", i, st.kind, st.job, st.worker, ch.Result, st.want)
				}
				if ch.Rerun {
					reruns++
				}
			}
			if l.Running() != tt.running || reruns != tt.reruns {
				t.Errorf("running %d reruns %d, want %d %d", l.Running(), reruns, tt.running, tt.reruns)
			}
			for _, w := range []domain.WorkerID{"w1", "w2"} {
				if got := l.JobsOn(w); got != tt.on[w] {
					t.Errorf("JobsOn(%s) = %d, want %d", w, got, tt.on[w])
				}
			}
		})
	}
}

// The fold with runs stays deterministic and idempotent: a log of
// redeliveries and reruns folded once, again, and with every event twice
// gives the same ledger.
func TestLedgerRunsIdempotent(t *testing.T) {
	var log []step
	for i := range 300 {
		j := domain.JobID(fmt.Sprintf("j%d", i%50))
		w := domain.WorkerID(fmt.Sprintf("w%d", i%7))
		switch i % 4 {
		case 0:
			log = append(log, q(j, 0))
		case 1, 2:
			log = append(log, s(j, w, 0))
		case 3:
			log = append(log, fw(j, w, 0))
		}
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	fold := func(twice bool) *Ledger {
		l := NewLedger()
		for _, st := range log {
			applyStep(l, st, at)
			if twice {
				applyStep(l, st, at)
			}
		}
		return l
	}
	a, b, c := fold(false), fold(false), fold(true)
	for _, l := range []*Ledger{b, c} {
		if l.Pending() != a.Pending() || l.Running() != a.Running() {
			t.Fatalf("pending/running %d/%d differ from %d/%d", l.Pending(), l.Running(), a.Pending(), a.Running())
		}
		for i := range 7 {
			w := domain.WorkerID(fmt.Sprintf("w%d", i))
			if l.JobsOn(w) != a.JobsOn(w) {
				t.Fatalf("JobsOn(%s) %d != %d", w, l.JobsOn(w), a.JobsOn(w))
			}
		}
	}
}

// A started or finished whose pool contradicts the worker's or the job's
// pool is refused with its reason and moves no worker.
func TestCrossPoolEventsRefused(t *testing.T) {
	mk := func(name domain.PoolName) PoolConfig {
		return PoolConfig{Name: name, Provider: "test",
			Settings:  policy.Settings{MaxWorkers: 10, JobsPerWorker: 1, IdleTimeout: time.Hour, ProvisionTimeout: 2 * time.Minute, MaxConcurrentProvisioning: 10},
			StopGrace: 5 * time.Second, RetryInitial: time.Second, RetryMax: time.Minute}
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := NewEngine([]PoolConfig{mk("a"), mk("b")}, 24*time.Hour)
	wa, wb := domain.NewWorkerID(), domain.NewWorkerID()
	e.ObserveList("a", []domain.Worker{{ID: wa, Pool: "a", Phase: domain.PhaseReady}}, now, now)
	e.ObserveList("b", []domain.Worker{{ID: wb, Pool: "b", Phase: domain.PhaseReady}}, now, now)
	e.CaughtUp(now)
	seq := uint64(0)
	apply := func(pool domain.PoolName, kind domain.JobKind, job string, w domain.WorkerID) (Result, string) {
		seq++
		return e.ApplyJob(domain.JobEvent{Kind: kind, Seq: seq, Pool: pool, JobID: domain.JobID(job), WorkerID: w, Time: now, Stored: now, Outcome: domain.OutcomeSucceeded}, now)
	}
	apply("a", domain.JobQueued, "ja", "")
	apply("a", domain.JobStarted, "ja", wa)
	apply("b", domain.JobQueued, "jb", "")
	cases := []struct {
		name     string
		pool     domain.PoolName
		kind     domain.JobKind
		job      string
		worker   domain.WorkerID
		reason   string
		busyA    bool
		busyB    bool
		pendingB int
	}{
		{"finished on b naming a's busy worker", "b", domain.JobFinished, "ja", wa, domain.ReasonWorkerPoolMismatch, true, false, 1},
		{"started on b naming a's worker", "b", domain.JobStarted, "jb", wa, domain.ReasonWorkerPoolMismatch, true, false, 1},
		{"started on a for b's job naming a's worker", "a", domain.JobStarted, "jb", wa, domain.ReasonJobPoolMismatch, true, false, 1},
		{"finished on b for a's job, no worker", "b", domain.JobFinished, "ja", "", domain.ReasonJobPoolMismatch, true, false, 1},
		{"a valid started on b applies", "b", domain.JobStarted, "jb", wb, "", true, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, reason := apply(c.pool, c.kind, c.job, c.worker)
			if reason != c.reason {
				t.Fatalf("reason %q, want %q", reason, c.reason)
			}
			sa, _ := e.Pool("a").WorkerState(wa)
			sb, _ := e.Pool("b").WorkerState(wb)
			if (sa == domain.StateBusy) != c.busyA || (sb == domain.StateBusy) != c.busyB {
				t.Fatalf("a's worker %s, b's worker %s; want busy %v %v", sa, sb, c.busyA, c.busyB)
			}
			if got := e.Pool("b").Ledger().Pending(); got != c.pendingB {
				t.Fatalf("b pending %d, want %d", got, c.pendingB)
			}
		})
	}
}

// A rerun makes its worker busy and is reported as an effect.
func TestRerunEffect(t *testing.T) {
	h := newHarness(t, func(c *PoolConfig) { c.Settings.IdleTimeout = time.Hour })
	w1, w2 := domain.NewWorkerID(), domain.NewWorkerID()
	h.start(domain.Worker{ID: w1, Pool: testPool, Phase: domain.PhaseReady}, domain.Worker{ID: w2, Pool: testPool, Phase: domain.PhaseReady})
	h.job(domain.JobQueued, "a", "")
	h.job(domain.JobStarted, "a", w1)
	h.job(domain.JobFinished, "a", w1)
	h.e.Take()
	if res, _ := h.job(domain.JobStarted, "a", w2); res != Applied {
		t.Fatalf("rerun started: %s", res)
	}
	if st, _ := h.e.Pool(testPool).WorkerState(w2); st != domain.StateBusy {
		t.Fatalf("rerun worker %s, want busy", st)
	}
	fx := h.e.Take()
	if len(fx.Reruns) != 1 || fx.Reruns[0].Worker != w2 || fx.Reruns[0].Job != "a" {
		t.Fatalf("reruns %+v", fx.Reruns)
	}
	// The first run's finished again (a redelivered event) leaves w2 busy.
	h.job(domain.JobFinished, "a", w1)
	if st, _ := h.e.Pool(testPool).WorkerState(w2); st != domain.StateBusy {
		t.Fatalf("after w1's finished again, w2 %s", st)
	}
}
