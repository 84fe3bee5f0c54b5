package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Runs. A run is one worker running one job. The ledger holds at most one
// open run per job (a started from a second worker for a running job is a
// redelivery: the run moves), and a worker is busy while any of its runs
// is open (JobsOn). What makes runs more than jobs:
//
//   - a started for a job already finished (its tombstone names the
//     worker that finished it) from another worker opens a new run: the
//     job is running again, on that worker (a redelivery after a crash of
//     the bus lost the first run's ack), and Change.Rerun says so;
//   - a finished naming a worker closes only that worker's run (Finished).
//
// Both stay a deterministic, idempotent fold: the same started or
// finished applied again finds the run open or the tombstone naming its
// worker, and changes nothing.

// rerun applies a started for a job with tombstone t and no open run.
func (l *Ledger) rerun(id domain.JobID, t tomb, w domain.WorkerID, at time.Time) Change {
	if t.by == "" || t.by == w {
		// The finished named no worker (or the job expired): this started
		// is the late one of the run it ended. Or the same worker's
		// started again: the run that finished.
		return Change{Result: Duplicate}
	}
	l.jobs[id] = job{state: jobRunning, worker: w, since: at}
	l.jobAges = append(l.jobAges, aged{id, instantOf(at)})
	l.running++
	l.byWorker[w]++
	return Change{Result: Applied, To: w, Rerun: true}
}

// tomb records that job id finished at at, closed by worker w.
func (l *Ledger) tomb(id domain.JobID, at time.Time, w domain.WorkerID) {
	i := instantOf(at)
	l.tombstones[id] = tomb{at: i, by: w}
	l.tombAges = append(l.tombAges, aged{id, i})
}

// Knows reports whether the ledger holds job id, open or finished.
func (l *Ledger) Knows(id domain.JobID) bool {
	if _, ok := l.jobs[id]; ok {
		return true
	}
	_, ok := l.tombstones[id]
	return ok
}
