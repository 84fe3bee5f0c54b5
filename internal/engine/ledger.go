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

// tomb is a finished job: when, and which worker's finished closed it
// ("" when the finished named none, or the job expired). A started from
// another worker after it is a new run of the job (runs.go).
type tomb struct {
	at instant
	by domain.WorkerID
}

type aged struct {
	id    domain.JobID
	since instant
}

// instant is a time's instant (Unix seconds and nanoseconds) without its
// location or monotonic reading: what a tombstone and an age entry keep
// and compare. 16 bytes and no pointer instead of time.Time's 24 with
// one, for entries held for every job of a retention period: smaller
// tables to grow while a retained stream is folded, and a pointer less
// per entry for the collector to follow. The ledger's times are the
// stream's (the server's timestamps, which have no monotonic reading)
// and cutoffs derived from the clock, which time.Time compares by their
// instants too.
type instant struct {
	sec  int64
	nsec int64
}

func instantOf(t time.Time) instant { return instant{t.Unix(), int64(t.Nanosecond())} }

func (i instant) before(j instant) bool {
	return i.sec < j.sec || (i.sec == j.sec && i.nsec < j.nsec)
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
	tombstones map[domain.JobID]tomb
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
		tombstones: map[domain.JobID]tomb{},
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
	// Rerun is set when a started opened a run of a job already finished
	// (runs.go).
	Rerun bool
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
	l.jobAges = append(l.jobAges, aged{id, instantOf(at)})
	l.pending++
	return Change{Result: Applied}
}

// Started records that worker w runs the job. A started without a queued
// (it arrived first, or was retained longer) creates a running job; a
// started for another worker than before moves the job (a redelivery).
func (l *Ledger) Started(id domain.JobID, w domain.WorkerID, at time.Time) Change {
	j, ok := l.jobs[id]
	if t, done := l.tombstones[id]; done && !ok {
		return l.rerun(id, t, w, at)
	}
	switch {
	case !ok:
		l.jobs[id] = job{state: jobRunning, worker: w, since: at}
		l.jobAges = append(l.jobAges, aged{id, instantOf(at)})
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

// Finished records the end of a job's run and leaves a tombstone. A
// finished naming worker w closes only w's run: the job keeps running on
// the worker the ledger has it on when that is another one (a forged or
// late finished, or the first run's finished after a redelivery moved the
// job). One without a worker closes the job's run, as before runs.
func (l *Ledger) Finished(id domain.JobID, w domain.WorkerID, at time.Time) Change {
	j, ok := l.jobs[id]
	t, done := l.tombstones[id]
	if ok && w != "" && j.state == jobRunning && j.worker != w {
		if done {
			return Change{Result: Duplicate}
		}
		l.tomb(id, at, w)
		return Change{Result: Applied} // not w's run: it stays open
	}
	if !ok {
		if done {
			return Change{Result: Duplicate}
		}
		l.tomb(id, at, w)
		return Change{Result: Applied} // before its queued: tombstone only
	}
	if done { // a rerun's end: the tombstone stays, naming this worker
		t.by = w
		l.tombstones[id] = t
	} else {
		l.tomb(id, at, w)
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
	cut := instantOf(cutoff)
	i := 0
	for ; i < len(l.jobAges); i++ {
		a := l.jobAges[i]
		if !a.since.before(cut) {
			break
		}
		j, ok := l.jobs[a.id]
		if !ok || instantOf(j.since) != a.since {
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
		l.tombstones[a.id] = tomb{at: cut}
		l.tombAges = append(l.tombAges, aged{a.id, cut})
		out = append(out, Expired{ID: a.id, Worker: j.worker, Since: j.since})
	}
	l.jobAges = compact(l.jobAges, i)
	i = 0
	for ; i < len(l.tombAges); i++ {
		a := l.tombAges[i]
		if !a.since.before(cut) {
			break
		}
		if t, ok := l.tombstones[a.id]; ok && t.at == a.since {
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
