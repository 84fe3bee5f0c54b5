package reconciler

import (
	"sync"
	"time"
)

// Breaker is a per-pool circuit breaker around provider calls. After
// Threshold consecutive failures it opens: the engine stops calling the
// provider, and only a probe (Ping) is tried every Cooldown until one
// succeeds and closes it again. Any success closes it.
//
// It is shared by the operation goroutines and the pool's watcher, hence
// the mutex; the reconcile loop learns of transitions through onChange.
type Breaker struct {
	Threshold int
	Cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	open      bool
	openedAt  time.Time
	lastError string
	onChange  func(open bool, reason string)
}

// Open reports whether the breaker is open, and why.
func (b *Breaker) Open() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open, b.lastError
}

// ProbeDue reports whether an open breaker's cooldown has passed.
func (b *Breaker) ProbeDue(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open && now.Sub(b.openedAt) >= b.Cooldown
}

// Record counts the outcome of one provider call.
func (b *Breaker) Record(err error, now time.Time) {
	b.mu.Lock()
	var notify func(bool, string)
	var reason string
	if err == nil {
		b.failures = 0
		if b.open {
			b.open = false
			notify, reason = b.onChange, ""
		}
	} else {
		b.failures++
		b.lastError = err.Error()
		switch {
		case b.open:
			b.openedAt = now // a failed probe restarts the cooldown
		case b.failures >= b.Threshold:
			b.open, b.openedAt = true, now
			notify, reason = b.onChange, b.lastError
		}
	}
	b.mu.Unlock()
	if notify != nil {
		notify(err != nil, reason)
	}
}
