package sim

import (
	"cmp"
	"slices"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Oracle is the physical limit of a trace: a scheduler that knows every
// arrival in advance, with workers that take exactly boot to provision.
//
//   - No job waits: a worker is started exactly one provisioning time
//     before the job that needs it arrives.
//   - Each job goes to the free worker whose idle gap before it is the
//     shortest (the one freed most recently before the job arrives).
//   - A worker is kept through an idle gap only when the gap is shorter
//     than one provisioning time; otherwise it stops when it becomes free
//     and another boots later, which costs one provisioning time instead.
//
// Its worker-seconds (booting + running + kept gaps) are the reference
// cost. The issue's wording assigns each job to "the worker that becomes
// free earliest"; for any two free workers, taking the one freed last
// never costs more (the cost of a gap, min(gap, boot), is concave, so the
// pair of gaps it leaves is the cheaper one), so the reference is the
// lower, tighter one. With jobs_per_worker k > 1 the oracle fills slots
// and charges each slot-second 1/k of a worker-second: a lower bound
// where jobs are perfectly packed.
func Oracle(jobs []Job, boot time.Duration, slots int) Result {
	k := float64(max(slots, 1))
	r := Result{Run: "oracle", Jobs: len(jobs)}
	if len(jobs) == 0 {
		return r
	}
	var lives []incarnation
	// busy: min-heap of (free time, incarnation); free: freed workers in
	// order of free time, oldest at head.
	type slot struct {
		free time.Duration
		life int
	}
	busy := minHeap[slot]{less: func(a, b *slot) bool { return a.free < b.free }}
	var free []slot
	head := 0
	var cost, busySecs time.Duration
	for _, j := range jobs {
		a := j.Queued
		for busy.len() > 0 && busy.top().free <= a {
			free = append(free, busy.pop()) // in order of free time
		}
		// Workers idle for a provisioning time or more are better stopped
		// at their free time (and never reused: gaps only grow).
		for head < len(free) && a-free[head].free >= boot {
			lives[free[head].life].to = free[head].free
			head++
		}
		if head > 1024 && head*2 > len(free) {
			free = append(free[:0], free[head:]...)
			head = 0
		}
		var s slot
		if head < len(free) {
			s = free[len(free)-1]
			free = free[:len(free)-1]
			cost += a - s.free
		} else {
			s.life = len(lives)
			lives = append(lives, incarnation{from: a - boot})
			cost += boot
		}
		cost += j.Duration
		busySecs += j.Duration
		s.free = a + j.Duration
		busy.push(s)
	}
	for _, s := range free[head:] {
		lives[s.life].to = s.free
	}
	for _, s := range busy.items {
		lives[s.life].to = s.free
	}
	// Peak: sweep the incarnations' boot and stop instants.
	type edge struct {
		at time.Duration
		d  int
	}
	edges := make([]edge, 0, 2*len(lives))
	for _, l := range lives {
		edges = append(edges, edge{l.from, 1}, edge{l.to, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.d, b.d) // stops before starts at one instant
	})
	n, peak := 0, 0
	for _, e := range edges {
		n += e.d
		peak = max(peak, n)
	}
	r.WorkerSeconds = cost.Seconds() / k
	r.BusySeconds = busySecs.Seconds() / k
	r.Utilization = r.BusySeconds / r.WorkerSeconds
	r.Started = policy.WorkersFor(len(lives), int(k))
	r.Stopped = r.Started
	r.Peak = policy.WorkersFor(peak, int(k))
	r.waits = []float64{0}
	r.lives, r.slots = lives, int(k)
	return r
}

// incarnation is the life of one of the oracle's workers (of one slot,
// with several slots per worker).
type incarnation struct{ from, to time.Duration }

// oracleTimeline draws the oracle's workers over a timeline's window.
func oracleTimeline(r Result, tl *Timeline) *Timeline {
	if tl == nil || len(r.lives) == 0 {
		return nil
	}
	out := &Timeline{From: tl.From, Step: tl.Step, buckets: tl.buckets}
	type edge struct {
		at time.Duration
		d  int
	}
	edges := make([]edge, 0, 2*len(r.lives))
	for _, l := range r.lives {
		edges = append(edges, edge{l.from, 1}, edge{l.to, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.d, b.d) // stops before starts at one instant
	})
	n := 0
	for _, e := range edges {
		n += e.d
		out.record(e.at, 0, 0, 0, policy.WorkersFor(n, r.slots))
	}
	out.finish()
	return out
}

// OracleUnder is the oracle under max_workers: the same when its peak fits
// within maxWorkers (0: no bound); otherwise jobs wait for a slot as they
// must under the cap. Then a first-come first-served queue on maxWorkers ×
// slots job slots, with workers booted in advance (no job waits for a
// boot), sets each job's start, and the oracle's rules run on those
// starts: the least a policy held to the same max_workers can cost, and
// the least its jobs can wait in the same queue. CappedAt says it was.
func OracleUnder(jobs []Job, boot time.Duration, slots, maxWorkers int) Result {
	r := Oracle(jobs, boot, slots)
	if maxWorkers <= 0 || r.Peak <= maxWorkers {
		return r
	}
	free := minHeap[time.Duration]{less: func(a, b *time.Duration) bool { return *a < *b }}
	for range maxWorkers * max(slots, 1) {
		free.push(0)
	}
	started := make([]Job, len(jobs))
	waits := make([]float64, len(jobs))
	for i, j := range jobs {
		start := max(j.Queued, free.pop())
		free.push(start + j.Duration)
		started[i] = j
		started[i].Queued = start
		waits[i] = (start - j.Queued).Seconds()
	}
	c := Oracle(started, boot, slots)
	c.WaitP50, c.WaitP95, c.WaitP99, c.WaitMax = percentiles(waits)
	c.waits = keepWaits(waits)
	c.CappedAt = maxWorkers
	return c
}
