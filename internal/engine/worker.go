package engine

import (
	"iter"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// worker is the engine's record of one worker.
type worker struct {
	id    domain.WorkerID
	state domain.WorkerState
	phase domain.Phase
	// reason is the provider's last word on the worker (why it is still
	// pending, say), quoted when it times out.
	reason string
	// since is when provisioning started (provisioning) or when the worker
	// last became idle (idle); it orders the lists below.
	since   time.Time
	readyAt time.Time
	seenAt  time.Time // last time the provider confirmed it exists
	jobs    int       // jobs running on it, while it is alive
	jobsRun int
	op      OpKind    // provider call in flight
	retryAt time.Time // when a failed stop/delete may be tried again
	adopted bool
	tier    int // index of the pool's tier it runs on (tiers.go)
	// hbAt and hbJobs are the worker's last heartbeat: when, and how many
	// jobs it said it runs (heartbeat.go).
	hbAt   time.Time
	hbJobs int

	list       *workerList
	prev, next *worker
}

// alive reports whether the worker can run jobs or is finishing them.
func (w *worker) alive() bool { return w.state != domain.StateFailed }

// workerList is an intrusive doubly linked list kept in order of since,
// oldest first: workers enter a state at the tail (now is the latest
// since), so the order holds without sorting, and removal is O(1).
type workerList struct {
	head, tail *worker
	n          int
}

func (l *workerList) remove(w *worker) {
	if w.list != l {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.list, w.prev, w.next = nil, nil, nil
	l.n--
}

// candidates yields the list oldest first, lazily.
func (l *workerList) candidates() iter.Seq[policy.Candidate] {
	return func(yield func(policy.Candidate) bool) {
		for w := l.head; w != nil; w = w.next {
			if !yield(policy.Candidate{ID: w.id, Since: w.since}) {
				return
			}
		}
	}
}

// insert places w by since, scanning from the tail: O(1) for a worker
// entering the state now, a short scan for an adopted worker whose since
// lies in the past. Equal times keep their arrival order.
func (l *workerList) insert(w *worker) {
	at := l.tail
	for at != nil && at.since.After(w.since) {
		at = at.prev
	}
	// Link w after at, or as the new head when at is nil.
	var next *worker
	if at != nil {
		next, at.next = at.next, w
	} else {
		next, l.head = l.head, w
	}
	if next != nil {
		next.prev = w
	} else {
		l.tail = w
	}
	w.list, w.prev, w.next = l, at, next
	l.n++
}
