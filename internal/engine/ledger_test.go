package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

type step struct {
	kind   domain.JobKind
	job    domain.JobID
	worker domain.WorkerID
	want   Result
}

func q(j domain.JobID, want Result) step { return step{domain.JobQueued, j, "", want} }
func s(j domain.JobID, w domain.WorkerID, want Result) step {
	return step{domain.JobStarted, j, w, want}
}
func f(j domain.JobID, want Result) step { return step{domain.JobFinished, j, "", want} }

func applyStep(l *Ledger, st step, at time.Time) Change {
	switch st.kind {
	case domain.JobQueued:
		return l.Queued(st.job, at)
	case domain.JobStarted:
		return l.Started(st.job, st.worker, at)
	default:
		return l.Finished(st.job, st.worker, at)
	}
}

func TestLedgerFold(t *testing.T) {
	tests := []struct {
		name        string
		steps       []step
		pending     int
		running     int
		on          map[domain.WorkerID]int
		tombstones  int
		jobsHeldNow int
	}{
		{name: "queued", steps: []step{q("a", Applied), q("b", Applied)}, pending: 2, jobsHeldNow: 2},
		{name: "full lifecycle", steps: []step{q("a", Applied), s("a", "w1", Applied), f("a", Applied)}, tombstones: 1},
		{name: "started moves pending to running",
			steps:   []step{q("a", Applied), q("b", Applied), s("a", "w1", Applied)},
			pending: 1, running: 1, on: map[domain.WorkerID]int{"w1": 1}, jobsHeldNow: 2},
		{name: "duplicates change nothing",
			steps: []step{q("a", Applied), q("a", Duplicate), s("a", "w1", Applied), s("a", "w1", Duplicate),
				q("a", Duplicate), f("a", Applied), f("a", Duplicate), s("a", "w1", Duplicate), q("a", Duplicate)},
			tombstones: 1},
		{name: "finished before queued leaves a tombstone",
			steps:      []step{f("a", Applied), q("a", Duplicate), s("a", "w1", Duplicate)},
			tombstones: 1},
		{name: "started before queued runs",
			steps:   []step{s("a", "w1", Applied), q("a", Duplicate)},
			running: 1, on: map[domain.WorkerID]int{"w1": 1}, jobsHeldNow: 1},
		{name: "redelivery moves the job to the new worker",
			steps:   []step{q("a", Applied), s("a", "w1", Applied), s("a", "w2", Applied)},
			running: 1, on: map[domain.WorkerID]int{"w2": 1}, jobsHeldNow: 1},
		{name: "finished pending job (cancelled before start)",
			steps:      []step{q("a", Applied), f("a", Applied)},
			tombstones: 1},
		{name: "several jobs on one worker",
			steps:   []step{q("a", Applied), q("b", Applied), s("a", "w1", Applied), s("b", "w1", Applied), f("a", Applied)},
			running: 1, on: map[domain.WorkerID]int{"w1": 1}, tombstones: 1, jobsHeldNow: 1},
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger()
			for i, st := range tt.steps {
				if got := applyStep(l, st, at.Add(time.Duration(i)*time.Second)).Result; got != st.want {
					t.Fatalf("step %d (%s %s): result %s, want %s", i, st.kind, st.job, got, st.want)
				}
			}
			if l.Pending() != tt.pending || l.Running() != tt.running {
				t.Errorf("pending %d running %d, want %d %d", l.Pending(), l.Running(), tt.pending, tt.running)
			}
			for _, w := range []domain.WorkerID{"w1", "w2"} {
				if got := l.JobsOn(w); got != tt.on[w] {
					t.Errorf("JobsOn(%s) = %d, want %d", w, got, tt.on[w])
				}
			}
			jobs, tombs := l.Size()
			if tombs != tt.tombstones || jobs != tt.jobsHeldNow {
				t.Errorf("size: %d jobs, %d tombstones; want %d, %d", jobs, tombs, tt.jobsHeldNow, tt.tombstones)
			}
		})
	}
}

// Folding the same events in the same order gives the same ledger, and
// folding a log with every event repeated gives the same ledger as
// folding it once (idempotence, which makes restarts safe).
func TestLedgerDeterministicAndIdempotent(t *testing.T) {
	var log []step
	for i := range 200 {
		j := domain.JobID(fmt.Sprintf("j%d", i))
		w := domain.WorkerID(fmt.Sprintf("w%d", i%7))
		log = append(log, q(j, 0))
		if i%3 != 0 {
			log = append(log, s(j, w, 0))
		}
		if i%2 == 0 {
			log = append(log, f(j, 0))
		}
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	fold := func(steps []step, twice bool) *Ledger {
		l := NewLedger()
		for _, st := range steps {
			applyStep(l, st, at)
			if twice {
				applyStep(l, st, at)
			}
		}
		return l
	}
	a, b, c := fold(log, false), fold(log, false), fold(log, true)
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
	// 200 jobs: 100 finished; of the other 100, those with i%3 != 0 run.
	if a.Pending()+a.Running() != 100 {
		t.Fatalf("open jobs = %d, want 100", a.Pending()+a.Running())
	}
}

func TestLedgerExpire(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	l := NewLedger()
	l.Queued("old-pending", t0)
	l.Started("old-running", "w1", t0.Add(time.Minute))
	l.Queued("done", t0.Add(2*time.Minute))
	l.Finished("done", "", t0.Add(3*time.Minute))
	l.Queued("young", t0.Add(2*time.Hour))

	got := l.Expire(t0.Add(time.Hour))
	ids := make([]domain.JobID, 0, len(got))
	for _, x := range got {
		ids = append(ids, x.ID)
	}
	if !slices.Equal(ids, []domain.JobID{"old-pending", "old-running"}) {
		t.Fatalf("expired %v", ids)
	}
	if got[1].Worker != "w1" {
		t.Errorf("expired running job worker = %q, want w1", got[1].Worker)
	}
	if l.Pending() != 1 || l.Running() != 0 || l.JobsOn("w1") != 0 {
		t.Errorf("after expiry pending %d running %d on w1 %d", l.Pending(), l.Running(), l.JobsOn("w1"))
	}
	// A late event for an expired job is recognised, not new demand.
	if r := l.Queued("old-pending", t0.Add(90*time.Minute)).Result; r != Duplicate {
		t.Errorf("late queued for expired job: %s, want duplicate", r)
	}
	// The tombstone of "done" (3 min) is forgotten once past the cutoff;
	// the expired jobs' tombstones date from the expiry.
	if _, tombs := l.Size(); tombs != 2 {
		t.Errorf("tombstones = %d, want 2 (old-pending, old-running)", tombs)
	}
	l.Expire(t0.Add(4 * time.Hour))
	if jobs, tombs := l.Size(); jobs != 0 || tombs != 1 {
		t.Errorf("after full expiry: %d jobs, %d tombstones; want 0, 1 (young, just expired)", jobs, tombs)
	}
}

func BenchmarkLedgerFold(b *testing.B) {
	// One queued, started and finished per job: three events per job.
	const jobs = 4096
	ids := make([]domain.JobID, jobs)
	workers := make([]domain.WorkerID, 64)
	for i := range ids {
		ids[i] = domain.JobID(fmt.Sprintf("job-%08d", i))
	}
	for i := range workers {
		workers[i] = domain.NewWorkerID()
	}
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	l := NewLedger()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		i := n % jobs
		switch (n / jobs) % 3 {
		case 0:
			l.Queued(ids[i], at)
		case 1:
			l.Started(ids[i], workers[i%len(workers)], at)
		case 2:
			l.Finished(ids[i], "", at)
			if i == jobs-1 { // start the next round with fresh tombstones
				l.Expire(at.Add(time.Nanosecond))
			}
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
