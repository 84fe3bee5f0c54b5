package sim

// minHeap is a binary min-heap of T ordered by less: the world's event
// queue and the oracle's busy workers. Generic rather than container/heap
// so that the hot path makes no interface call and boxes nothing.
type minHeap[T any] struct {
	items []T
	less  func(a, b *T) bool
}

func (h *minHeap[T]) len() int { return len(h.items) }

// top is the least item; the heap must not be empty.
func (h *minHeap[T]) top() *T { return &h.items[0] }

func (h *minHeap[T]) push(x T) {
	h.items = append(h.items, x)
	q := h.items
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(&q[i], &q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

// pop removes and returns the least item; the heap must not be empty.
func (h *minHeap[T]) pop() T {
	q := h.items
	least := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(&q[l], &q[m]) {
			m = l
		}
		if r < n && h.less(&q[r], &q[m]) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	h.items = q
	return least
}
