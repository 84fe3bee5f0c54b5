package sim

import (
	"math/rand/v2"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// The world is one pool in virtual time: jobs arrive, a simulated
// scheduler hands them to free worker slots, a simulated provider boots
// workers in a sampled provisioning time and stops them at once, and a
// controller (the engine, or an anchor formula) decides what to create and
// stop. The world is discrete-event: time jumps from one event to the
// next, so a week of jobs costs what its events cost.
//
// The simulated scheduler is FIFO over jobs and LIFO over workers: the
// oldest waiting job goes to the worker that became free most recently
// (a worker that finishes a job asks for the next one at once), and a
// worker with several slots fills them before another is used.

type evKind uint8

// At one instant: jobs finish (freeing slots), then workers become ready,
// then jobs arrive, then the controller's wake-up.
const (
	evFinish evKind = iota
	evReady
	evArrive
	evWake
)

type event struct {
	at   time.Duration
	kind evKind
	seq  uint64
	job  int32
	wk   *worker
}

func eventBefore(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return a.seq < b.seq
}

type wState uint8

const (
	wProvisioning wState = iota
	wReady
	wDraining // stops when its running jobs end
	wStopped
)

// worker is a simulated worker.
type worker struct {
	n       int
	id      domain.WorkerID // the engine's id, for the engine controller
	state   wState
	created time.Duration // provision requested (cost starts)
	stopped time.Duration // cost ends
	running int
	jobsRun int
	// idleSince is when running last dropped to 0 (or it became ready).
	idleSince time.Duration
	busySince time.Duration
	busy      time.Duration
	inFree    bool
}

// controller decides the pool's workers. The world calls it after every
// job and worker event, and reconcile once after all events of an instant.
type controller interface {
	queued(w *world, j int)
	started(w *world, j int, wk *worker)
	finished(w *world, j int, wk *worker)
	ready(w *world, wk *worker)
	// reconcile acts on the world and returns when it wants to be called
	// again with no new event (-1: not before the next event).
	reconcile(w *world) time.Duration
	// desired is the worker count the controller aims at (for the plot).
	desired() int
}

// Provisioning is the simulated provider's boot time: log-normal with this
// median and 95th percentile, or fixed at Median when P95 is not above it.
type Provisioning struct {
	Median time.Duration
	P95    time.Duration
}

func (p Provisioning) String() string {
	if p.P95 <= p.Median {
		return "fixed " + p.Median.String()
	}
	return "log-normal, median " + p.Median.String() + ", p95 " + p.P95.String()
}

// tail bounds how long after the last job a run is followed: workers a
// controller keeps for ever (min_workers) are charged up to here.
const tail = time.Hour

type world struct {
	start time.Time
	now   time.Duration
	slots int
	jobs  []Job

	boot func(*rand.Rand) time.Duration
	rng  *rand.Rand

	q      minHeap[event]
	seq    uint64
	wakeAt time.Duration

	startedAt []time.Duration // per job; -1 until started
	pending   []int32         // FIFO, from head
	head      int
	free      []*worker // ready workers with a free slot; top = most recently freed
	workers   []*worker

	provisioning, ready, draining int // workers by state
	running                       int // jobs running
	done                          int
	peak                          int

	ctl controller
	tl  *Timeline
}

func newWorld(tr *Trace, jobs []Job, slots int, prov Provisioning, seed uint64, ctl controller, tl *Timeline) *world {
	w := &world{
		start: tr.Start, slots: max(slots, 1), jobs: jobs,
		boot: lognormal(prov.Median, prov.P95), rng: rand.New(rand.NewPCG(seed, 0x70726f76)),
		wakeAt: -1, startedAt: make([]time.Duration, len(jobs)), ctl: ctl, tl: tl,
	}
	w.q = minHeap[event]{items: make([]event, 0, 1024), less: eventBefore}
	// The controller starts at 0, before any job: min_workers and warm
	// workers boot then, as they do when the daemon starts.
	w.wakeAt = 0
	w.push(event{at: 0, kind: evWake})
	for i := range jobs {
		w.startedAt[i] = -1
		w.push(event{at: jobs[i].Queued, kind: evArrive, job: int32(i)})
	}
	return w
}

func (w *world) push(e event) {
	w.seq++
	e.seq = w.seq
	w.q.push(e)
}

// at is the wall-clock time of the current instant.
func (w *world) at() time.Time { return w.start.Add(w.now) }

func (w *world) alive() int       { return w.provisioning + w.ready + w.draining }
func (w *world) pendingJobs() int { return len(w.pending) - w.head }

// create asks the simulated provider for a worker; it is ready after a
// sampled provisioning time.
func (w *world) create() *worker {
	wk := &worker{n: len(w.workers), created: w.now, state: wProvisioning}
	w.workers = append(w.workers, wk)
	w.provisioning++
	w.peak = max(w.peak, w.alive())
	w.push(event{at: w.now + max(w.boot(w.rng), 0), kind: evReady, wk: wk})
	return wk
}

// stop ends a worker now, or when its running jobs end.
func (w *world) stop(wk *worker) {
	switch wk.state {
	case wStopped, wDraining:
		return
	case wProvisioning:
		w.provisioning--
	case wReady:
		w.ready--
		if wk.running > 0 {
			wk.state = wDraining
			w.draining++
			return
		}
	}
	wk.state, wk.stopped = wStopped, w.now
}

func (w *world) pushFree(wk *worker) {
	if !wk.inFree {
		wk.inFree = true
		w.free = append(w.free, wk)
	}
}

// usable reports whether a worker can take a job now.
func (w *world) usable(wk *worker) bool { return wk.state == wReady && wk.running < w.slots }

// popFree returns the most recently freed usable worker, or nil.
func (w *world) popFree() *worker {
	for len(w.free) > 0 {
		wk := w.free[len(w.free)-1]
		if w.usable(wk) {
			return wk
		}
		wk.inFree = false
		w.free = w.free[:len(w.free)-1]
	}
	return nil
}

// idleOldestFirst calls fn for each idle ready worker, longest idle first,
// until fn returns false. Entries no longer free are dropped on the way.
func (w *world) idleOldestFirst(fn func(*worker) bool) {
	kept := w.free[:0]
	stop := false
	for _, wk := range w.free {
		if !w.usable(wk) {
			wk.inFree = false
			continue
		}
		if !stop && wk.running == 0 && !fn(wk) {
			stop = true
		}
		if w.usable(wk) {
			kept = append(kept, wk)
		} else {
			wk.inFree = false
		}
	}
	clear(w.free[len(kept):])
	w.free = kept
}

func (w *world) assign() {
	for w.pendingJobs() > 0 {
		wk := w.popFree()
		if wk == nil {
			return
		}
		j := int(w.pending[w.head])
		w.head++
		if w.head > 4096 && w.head*2 > len(w.pending) {
			w.pending = append(w.pending[:0], w.pending[w.head:]...)
			w.head = 0
		}
		w.startedAt[j] = w.now
		if wk.running == 0 {
			wk.busySince = w.now
		}
		wk.running++
		wk.jobsRun++
		w.running++
		if !w.usable(wk) {
			wk.inFree = false
			w.free = w.free[:len(w.free)-1]
		}
		w.push(event{at: w.now + w.jobs[j].Duration, kind: evFinish, job: int32(j), wk: wk})
		w.ctl.started(w, j, wk)
	}
}

func (w *world) apply(e event) {
	switch e.kind {
	case evArrive:
		w.pending = append(w.pending, e.job)
		w.ctl.queued(w, int(e.job))
	case evReady:
		wk := e.wk
		if wk.state != wProvisioning {
			return // stopped before it booted
		}
		wk.state, wk.idleSince = wReady, w.now
		w.provisioning--
		w.ready++
		w.pushFree(wk)
		w.ctl.ready(w, wk)
	case evFinish:
		wk := e.wk
		w.running--
		w.done++
		wk.running--
		if wk.running == 0 {
			wk.busy += w.now - wk.busySince
			wk.idleSince = w.now
		}
		switch {
		case wk.state == wDraining && wk.running == 0:
			w.draining--
			wk.state, wk.stopped = wStopped, w.now
		case wk.state == wReady:
			w.pushFree(wk)
		}
		w.ctl.finished(w, int(e.job), wk)
	case evWake:
		// Nothing happens; the controller reconciles below.
	}
}

// run plays the trace to its end: every job finished and every worker
// stopped, or tail after the last job finished, whichever comes first.
func (w *world) run() time.Duration {
	var allDone time.Duration = -1
	for w.q.len() > 0 {
		t := w.q.top().at
		if allDone >= 0 && t > allDone+tail {
			w.now = allDone + tail
			break
		}
		w.now = t
		for w.q.len() > 0 && w.q.top().at == t {
			e := w.q.pop()
			if e.kind == evWake && e.at != w.wakeAt {
				continue // superseded
			}
			w.apply(e)
		}
		w.assign()
		wake := w.ctl.reconcile(w)
		if wake >= 0 {
			wake = max(wake, w.now+time.Millisecond)
			if wake != w.wakeAt {
				w.wakeAt = wake
				w.push(event{at: wake, kind: evWake})
			}
		} else {
			w.wakeAt = -1
		}
		w.peak = max(w.peak, w.alive())
		if w.tl != nil {
			w.tl.record(w.now, w.pendingJobs(), w.running, w.ctl.desired(), w.alive())
		}
		if w.done == len(w.jobs) {
			if allDone < 0 {
				allDone = w.now
			}
			if w.alive() == 0 {
				break
			}
		}
	}
	if allDone >= 0 && w.alive() > 0 && w.q.len() == 0 {
		// Nothing will ever stop them: charge them the whole tail.
		w.now = max(w.now, allDone+tail)
	}
	return w.now
}
