package reconciler

import "sync"

// results is the queue of provider call results from the calls'
// goroutines to the loop. A push never blocks (the queue holds at most
// one result per call in flight); ready has a value whenever results may
// be waiting, and take empties the queue in the order of the pushes.
//
// It replaces a buffered channel, whose senders blocked once it was full:
// in a burst of hundreds of creates the loop was still busy with the
// burst's deliveries, so the calls' goroutines stayed alive, waiting, and
// competed with the loop for the CPU (BENCHMARKS.md, row 2b).
type results struct {
	mu    sync.Mutex
	queue []opResult
	ready chan struct{} // cap 1
}

func newResults() results { return results{ready: make(chan struct{}, 1)} }

func (q *results) push(res opResult) {
	q.mu.Lock()
	q.queue = append(q.queue, res)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns the results pushed so far and empties the queue.
func (q *results) take() []opResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.queue
	q.queue = nil
	return out
}
