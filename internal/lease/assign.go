package lease

import (
	"cmp"
	"hash/fnv"
	"slices"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Assign spreads pools over members, given who holds what now (held maps
// a pool to the member that holds it; pools held by anyone else must not
// be in pools). Every member gets floor(P/M) or ceil(P/M) pools (see
// quotas for who gets the larger share). A member keeps what it holds up to its share, so when every
// member holds floor or ceil nothing moves; a member over its share gives
// up its pools that hash lowest for it. Pools left over go, in name order,
// to the member with room that ranks highest for the pool by rendezvous
// hashing, so every replica that sees the same holdings computes the same
// assignment, and a pool's place depends on the pool and the members, not
// on the order in which things happened.
func Assign(pools []domain.PoolName, members []string, held map[domain.PoolName]string) map[domain.PoolName]string {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) == 0 {
		return map[domain.PoolName]string{}
	}
	ps := slices.Clone(pools)
	slices.Sort(ps)
	ps = slices.Compact(ps)

	holds := make(map[string][]domain.PoolName, len(ms))
	for _, m := range ms {
		holds[m] = nil
	}
	for _, p := range ps {
		if m, ok := held[p]; ok {
			if _, member := holds[m]; member {
				holds[m] = append(holds[m], p)
			}
		}
	}

	quota := quotas(len(ps), ms, holds)
	out := make(map[domain.PoolName]string, len(ps))
	count := make(map[string]int, len(ms))
	for _, m := range ms {
		mine := holds[m]
		slices.SortFunc(mine, func(a, b domain.PoolName) int {
			return cmp.Or(cmp.Compare(score(b, m), score(a, m)), cmp.Compare(a, b))
		})
		for _, p := range mine[:min(len(mine), quota[m])] {
			out[p] = m
			count[m]++
		}
	}
	for _, p := range ps {
		if _, ok := out[p]; ok {
			continue
		}
		best, bestScore := "", uint64(0)
		for _, m := range ms {
			if count[m] >= quota[m] {
				continue
			}
			if s := score(p, m); best == "" || s > bestScore {
				best, bestScore = m, s
			}
		}
		out[p] = best
		count[best]++
	}
	return out
}

// quotas gives each member floor(n/M), and n mod M of them one more:
// first those already holding more than floor(n/M), in id order, then
// those holding the most. Any choice among the ones holding more moves
// the same number of pools; choosing them by id (not by how many each
// holds) keeps the choice from flipping while they give pools away, which
// would make them give away more than needed.
func quotas(n int, ms []string, holds map[string][]domain.PoolName) map[string]int {
	share, extra := n/len(ms), n%len(ms)
	order := slices.Clone(ms) // sorted by id
	over := func(m string) bool { return len(holds[m]) > share }
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case over(a) != over(b):
			if over(a) {
				return -1
			}
			return 1
		case over(a):
			return 0 // both over their share: id order
		}
		return cmp.Compare(len(holds[b]), len(holds[a]))
	})
	q := make(map[string]int, len(ms))
	for i, m := range order {
		q[m] = share
		if i < extra {
			q[m]++
		}
	}
	return q
}

// score ranks member m for pool p (rendezvous hashing): FNV-1a of both
// names, mixed by the splitmix64 finalizer so nearby names spread.
func score(p domain.PoolName, m string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m))
	h.Write([]byte{0})
	h.Write([]byte(p))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
