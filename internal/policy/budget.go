package policy

import (
	"fmt"
	"slices"
)

// Budget is a capacity shared by several pools: at most Workers workers,
// CPUMillis of CPU and MemoryMB of memory at once, counted from each
// worker's resources. A zero limit is no limit on that dimension.
type Budget struct {
	Name      string
	Workers   int
	CPUMillis int64
	MemoryMB  int64
}

// Limits reports whether the budget limits anything.
func (b Budget) Limits() bool { return b.Workers > 0 || b.CPUMillis > 0 || b.MemoryMB > 0 }

func (b Budget) String() string {
	s := "budget " + b.Name + " ("
	sep := ""
	if b.Workers > 0 {
		s += fmt.Sprintf("%d workers", b.Workers)
		sep = ", "
	}
	if b.CPUMillis > 0 {
		s += fmt.Sprintf("%s%dm cpu", sep, b.CPUMillis)
		sep = ", "
	}
	if b.MemoryMB > 0 {
		s += fmt.Sprintf("%s%dMB memory", sep, b.MemoryMB)
	}
	return s + ")"
}

// Claim is one pool's call on a budget.
type Claim struct {
	// Want is the workers the pool would have without the budget.
	Want int
	// Floor is the workers that cannot be taken back: every worker that is
	// not idle (busy, provisioning, draining, failed). The allocation is
	// never below it, even when the floors alone exceed the budget.
	Floor int
	// Priority (0-100, higher first), Weight (1-100, the fair share among
	// equal priorities) and Guaranteed (workers the pool always gets when
	// it wants them, before any share).
	Priority   int
	Weight     int
	Guaranteed int
	// CPUMillis and MemoryMB are one worker's cost (0: none).
	CPUMillis int64
	MemoryMB  int64
}

// Share is what the budget grants one pool.
type Share struct {
	Workers int
	// Bounded is set when the budget gave less than the pool wanted.
	Bounded bool
	// Reason names the budget and the share that bounded the pool.
	Reason string
}

// Allocate shares the budget among the claims (same order in and out):
//
//  1. every pool keeps its floor (capacity is only taken back from idle
//     workers: a busy worker is never stopped to make room);
//  2. a pool below its guaranteed share gets up to it (what it wants, at
//     most the guarantee), higher priority first;
//  3. the rest goes by priority, highest first; among equal priorities by
//     weighted fair share (water-filling: the next worker goes to the
//     pool with the lowest dominant share per weight, ties to the higher
//     weight, then to the earlier claim), so weights 2:1 of 6 give 4 and 2.
//
// A worker fits when the budget has a worker, the CPU and the memory it
// costs left. The result is deterministic: the same claims give the same
// shares.
func Allocate(b Budget, claims []Claim) []Share {
	a := allocator{b: b, claims: claims, got: make([]int, len(claims))}
	for i, c := range claims {
		a.got[i] = max(c.Floor, 0)
		a.take(i, a.got[i])
	}
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return claims[y].Priority - claims[x].Priority })
	for _, i := range order {
		c := claims[i]
		for a.got[i] < min(c.Want, c.Guaranteed) && a.fits(i) {
			a.got[i]++
			a.take(i, 1)
		}
	}
	for lo := 0; lo < len(order); {
		hi := lo
		for hi < len(order) && claims[order[hi]].Priority == claims[order[lo]].Priority {
			hi++
		}
		a.fill(order[lo:hi])
		lo = hi
	}
	out := make([]Share, len(claims))
	for i, c := range claims {
		out[i] = a.share(i, c)
	}
	return out
}

type allocator struct {
	b      Budget
	claims []Claim
	got    []int
	used   Budget // what the grants so far use
}

func (a *allocator) take(i, n int) {
	c := a.claims[i]
	a.used.Workers += n
	a.used.CPUMillis += int64(n) * c.CPUMillis
	a.used.MemoryMB += int64(n) * c.MemoryMB
}

// fits reports whether one more worker of claim i fits in the budget.
func (a *allocator) fits(i int) bool {
	c := a.claims[i]
	return (a.b.Workers <= 0 || a.used.Workers+1 <= a.b.Workers) &&
		(a.b.CPUMillis <= 0 || a.used.CPUMillis+c.CPUMillis <= a.b.CPUMillis) &&
		(a.b.MemoryMB <= 0 || a.used.MemoryMB+c.MemoryMB <= a.b.MemoryMB)
}

// dominant is the largest fraction of a budget dimension one worker of
// claim i costs: the unit of its share (dominant resource fairness).
func (a *allocator) dominant(i int) float64 {
	c := a.claims[i]
	d := 0.0
	if a.b.Workers > 0 {
		d = 1 / float64(a.b.Workers)
	}
	if a.b.CPUMillis > 0 {
		d = max(d, float64(c.CPUMillis)/float64(a.b.CPUMillis))
	}
	if a.b.MemoryMB > 0 {
		d = max(d, float64(c.MemoryMB)/float64(a.b.MemoryMB))
	}
	if d == 0 {
		d = 1
	}
	return d
}

// fill water-fills the room left among pools of one priority.
func (a *allocator) fill(level []int) {
	for {
		best := -1
		var bestShare float64
		for _, i := range level {
			c := a.claims[i]
			if a.got[i] >= c.Want || !a.fits(i) {
				continue
			}
			s := float64(a.got[i]+1) * a.dominant(i) / float64(max(c.Weight, 1))
			if best < 0 || s < bestShare || (s == bestShare && c.Weight > a.claims[best].Weight) {
				best, bestShare = i, s
			}
		}
		if best < 0 {
			return
		}
		a.got[best]++
		a.take(best, 1)
	}
}

func (a *allocator) share(i int, c Claim) Share {
	sh := Share{Workers: a.got[i]}
	want := max(c.Want, c.Floor)
	if a.got[i] >= want {
		sh.Reason = fmt.Sprintf("within %s: %d of it in use by all pools", a.b, a.used.Workers)
		return sh
	}
	sh.Bounded = true
	sh.Reason = fmt.Sprintf("%s: share %d of %d wanted (priority %d, weight %d", a.b, a.got[i], want, c.Priority, max(c.Weight, 1))
	if c.Guaranteed > 0 {
		sh.Reason += fmt.Sprintf(", guaranteed %d", c.Guaranteed)
	}
	if a.got[i] == max(c.Floor, 0) && c.Floor > 0 {
		sh.Reason += "; kept its busy and starting workers"
	}
	sh.Reason += ")"
	return sh
}
