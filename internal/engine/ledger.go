package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Result is what applying one event did. Its string labels the
// events_total metric.
type Result uint8

const (
	Applied   Result = iota + 1 // the event changed the ledger
	Duplicate                   // the ledger already reflected it
	Invalid                     // the event was rejected
	Ignored                     // valid but not ours (unknown pool, stale)
	// Replayed: a message read again to fold a pool added by a reload,
	// already applied to this pool (not counted in events_total).
	Replayed
)

func (r Result) String() string {
	switch r {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Invalid:
		return "invalid"
	case Ignored:
		return "ignored"
	case Replayed:
		return "replayed"
	}
	return "unknown"
}

type jobState uint8

const (
	jobPending jobState = iota + 1
	jobRunning
)

type job struct {
	state  jobState
	worker domain.WorkerID // when running
	since  time.Time       // when the ledger first saw the job (stream time)
}

type aged struct {
	id    domain.JobID
	since time.Time
}

// Ledger is one pool's exact picture of demand: which jobs wait, which run
// and on which worker. It is a deterministic fold of the job events: the
// same events in the same order give the same ledger, applying an event
// twice changes nothing, and a finished that arrives before its queued
// leaves a tombstone so the late queued creates no demand.
//
// Finished jobs are remembered as tombstones for the retention period
// (max_job_age), and jobs older than that are expired, so memory is bounded
// by the jobs of one retention period.
type Ledger struct {
	jobs       map[domain.JobID]job
	tombstones map[domain.JobID]time.Time
	byWorker   map[domain.WorkerID]int // running jobs per worker
	pending    int
	running    int

	// FIFOs in arrival order, for expiry without scanning the maps.
	// Entries whose job has moved on are skipped lazily.
	jobAges  []aged
	tombAges []aged
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		jobs:       map[domain.JobID]job{},
		tombstones: map[domain.JobID]time.Time{},
		byWorker:   map[domain.WorkerID]int{},
	}
}

// Pending is the number of jobs waiting for a worker.
func (l *Ledger) Pending() int { return l.pending }

// Running is the number of jobs running on any worker.
func (l *Ledger) Running() int { return l.running }

// JobsOn is the number of jobs running on worker w.
func (l *Ledger) JobsOn(w domain.WorkerID) int { return l.byWorker[w] }

// Change says which workers an event moved a job off and onto, so the
// caller can update their busy/idle state.
type Change struct {
	Result Result
	From   domain.WorkerID // the job left this worker (finished or moved)
	To     domain.WorkerID // the job now runs on this worker
	// WasPending is set when a pending job started or finished.
	WasPending bool
	// Waited is how long a pending job that started had waited, queued to
	// started in stream time.
	Waited time.Duration
}

// Queued records a job waiting for a worker. at is the stream time.
func (l *Ledger) Queued(id domain.JobID, at time.Time) Change {
	if _, ok := l.jobs[id]; ok {
		return Change{Result: Duplicate}
	}
	if _, ok := l.tombstones[id]; ok {
		return Change{Result: Duplicate}
	}
	l.jobs[id] = job{state: jobPending, since: at}
	l.jobAges = append(l.jobAges, aged{id, at})
	l.pending++
	return Change{Result: Applied}
}

// Started records that worker w runs the job. A started without a queued
// (it arrived first, or was retained longer) creates a running job; a
// started for another worker than before moves the job (a redelivery).
func (l *Ledger) Started(id domain.JobID, w domain.WorkerID, at time.Time) Change {
	if _, ok := l.tombstones[id]; ok {
		return Change{Result: Duplicate}
	}
	j, ok := l.jobs[id]
	switch {
	case !ok:
		l.jobs[id] = job{state: jobRunning, worker: w, since: at}
		l.jobAges = append(l.jobAges, aged{id, at})
		l.running++
		l.byWorker[w]++
		return Change{Result: Applied, To: w}
	case j.state == jobRunning && j.worker == w:
		return Change{Result: Duplicate}
	case j.state == jobRunning:
		from := j.worker
		l.release(from)
		j.worker = w
		l.jobs[id] = j
		l.byWorker[w]++
		return Change{Result: Applied, From: from, To: w}
	default: // pending
		l.pending--
		l.running++
		j.state, j.worker = jobRunning, w
		l.jobs[id] = j
		l.byWorker[w]++
		return Change{Result: Applied, To: w, WasPending: true, Waited: at.Sub(j.since)}
	}
}

// Finished records the end of a job and leaves a tombstone.
func (l *Ledger) Finished(id domain.JobID, at time.Time) Change {
	if _, ok := l.tombstones[id]; ok {
		return Change{Result: Duplicate}
	}
	l.tombstones[id] = at
	l.tombAges = append(l.tombAges, aged{id, at})
	j, ok := l.jobs[id]
	if !ok {
		return Change{Result: Applied} // before its queued: tombstone only
	}
	delete(l.jobs, id)
	if j.state == jobPending {
		l.pending--
		return Change{Result: Applied, WasPending: true}
	}
	l.running--
	l.release(j.worker)
	return Change{Result: Applied, From: j.worker}
}

func (l *Ledger) release(w domain.WorkerID) {
	if n := l.byWorker[w]; n <= 1 {
		delete(l.byWorker, w)
	} else {
		l.byWorker[w] = n - 1
	}
}

// Expired is a job dropped by Expire.
type Expired struct {
	ID     domain.JobID
	Worker domain.WorkerID // "" if it was pending
	Since  time.Time
}

// Expire drops jobs first seen before cutoff (their finished never came)
// and forgets tombstones older than cutoff. It costs O(expired).
func (l *Ledger) Expire(cutoff time.Time) []Expired {
	var out []Expired
	i := 0
	for ; i < len(l.jobAges); i++ {
		a := l.jobAges[i]
		if !a.since.Before(cutoff) {
			break
		}
		j, ok := l.jobs[a.id]
		if !ok || !j.since.Equal(a.since) {
			continue // finished already, or a newer incarnation
		}
		delete(l.jobs, a.id)
		if j.state == jobPending {
			l.pending--
		} else {
			l.running--
			l.release(j.worker)
		}
		// The tombstone dates from now (cutoff), not from the job, so a
		// late event for it is still recognised for a whole period.
		l.tombstones[a.id] = cutoff
		l.tombAges = append(l.tombAges, aged{a.id, cutoff})
		out = append(out, Expired{ID: a.id, Worker: j.worker, Since: j.since})
	}
	l.jobAges = compact(l.jobAges, i)
	i = 0
	for ; i < len(l.tombAges); i++ {
		a := l.tombAges[i]
		if !a.since.Before(cutoff) {
			break
		}
		if t, ok := l.tombstones[a.id]; ok && t.Equal(a.since) {
			delete(l.tombstones, a.id)
		}
	}
	l.tombAges = compact(l.tombAges, i)
	return out
}

// compact drops the first n entries, reusing the array when that frees
// at least half of it.
func compact(s []aged, n int) []aged {
	if n == 0 {
		return s
	}
	rest := s[n:]
	if n >= len(s)/2 {
		return append(s[:0:0], rest...)
	}
	return rest
}

// Size is the number of jobs and tombstones held, for tests and metrics.
func (l *Ledger) Size() (jobs, tombstones int) { return len(l.jobs), len(l.tombstones) }
