package engine

import (
	"iter"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// OpKind is a provider call the engine asks for.
type OpKind uint8

const (
	OpNone OpKind = iota
	OpCreate
	OpStop
	OpDelete
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpStop:
		return "stop"
	case OpDelete:
		return "delete"
	}
	return "none"
}

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

	list       *workerList
	prev, next *worker
}

// alive reports whether the worker can run jobs or is finishing them.
func (w *worker) alive() bool { return w.state != domain.StateFailed }

// workerList is an intrusive doubly linked list kept in order of since,
// oldest first: workers are appended as they enter a state, so the order
// holds without sorting, and removal is O(1).
type workerList struct {
	head, tail *worker
	n          int
}

func (l *workerList) push(w *worker) {
	w.list, w.prev, w.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
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

// insertSorted places w by since, scanning from the tail: used for
// adopted workers whose since lies in the past.
func (l *workerList) insertSorted(w *worker) {
	at := l.tail
	for at != nil && at.since.After(w.since) {
		at = at.prev
	}
	if at == nil { // new head
		w.list, w.prev, w.next = l, nil, l.head
		if l.head != nil {
			l.head.prev = w
		} else {
			l.tail = w
		}
		l.head = w
		l.n++
		return
	}
	w.list, w.prev, w.next = l, at, at.next
	if at.next != nil {
		at.next.prev = w
	} else {
		l.tail = w
	}
	at.next = w
	l.n++
}
