package lease

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

func poolNames(n int) []domain.PoolName {
	out := make([]domain.PoolName, n)
	for i := range out {
		out[i] = domain.PoolName(fmt.Sprintf("pool-%04d", i))
	}
	return out
}

func counts(a map[domain.PoolName]string) map[string]int {
	c := map[string]int{}
	for _, m := range a {
		c[m]++
	}
	return c
}

// checkBalanced fails unless every pool is assigned to a member and every
// member has floor or ceil of pools/members.
func checkBalanced(t *testing.T, pools []domain.PoolName, members []string, a map[domain.PoolName]string) {
	t.Helper()
	if len(a) != len(pools) {
		t.Fatalf("assigned %d pools, want %d", len(a), len(pools))
	}
	for _, p := range pools {
		if !slices.Contains(members, a[p]) {
			t.Fatalf("pool %s assigned to %q, not a member", p, a[p])
		}
	}
	lo, hi := len(pools)/len(members), (len(pools)+len(members)-1)/len(members)
	for _, m := range members {
		if n := counts(a)[m]; n < lo || n > hi {
			t.Errorf("member %s has %d pools, want %d..%d (counts %v)", m, n, lo, hi, counts(a))
		}
	}
}

// moves counts pools taken from a member that held them.
func moves(members []string, held, a map[domain.PoolName]string) int {
	n := 0
	for p, m := range held {
		if slices.Contains(members, m) && a[p] != m {
			n++
		}
	}
	return n
}

func TestAssignFromScratchIsWithinOne(t *testing.T) {
	for _, tc := range []struct{ pools, members int }{{10, 3}, {1000, 3}, {7, 7}, {3, 5}, {0, 2}, {1, 1}, {1000, 2}, {64, 4}} {
		t.Run(fmt.Sprintf("%d pools over %d", tc.pools, tc.members), func(t *testing.T) {
			pools := poolNames(tc.pools)
			var members []string
			for i := range tc.members {
				members = append(members, fmt.Sprintf("r%d", i))
			}
			checkBalanced(t, pools, members, Assign(pools, members, nil))
		})
	}
}

// holdings builds a held map giving member m the next n pools, in order.
func holdings(pools []domain.PoolName, spec ...any) map[domain.PoolName]string {
	held := map[domain.PoolName]string{}
	i := 0
	for k := 0; k < len(spec); k += 2 {
		m, n := spec[k].(string), spec[k+1].(int)
		for range n {
			held[pools[i]] = m
			i++
		}
	}
	return held
}

func TestAssignMovesOnlyWhatBalanceNeeds(t *testing.T) {
	pools := poolNames(1000)
	for _, tc := range []struct {
		name      string
		members   []string
		held      map[domain.PoolName]string
		wantMoves int
	}{
		{"balanced holdings stay", []string{"a", "b", "c"}, holdings(pools, "a", 334, "b", 333, "c", 333), 0},
		{"off by one stays", []string{"a", "b", "c"}, holdings(pools, "c", 334, "a", 333, "b", 333), 0},
		{"a joiner gets a third, taken from the two", []string{"a", "b", "c"}, holdings(pools, "a", 500, "b", 500), 333},
		{"a leaver's pools spread, nothing else moves", []string{"a", "b"}, holdings(pools, "a", 334, "b", 333, "c", 333), 0},
		{"off by two moves one", []string{"a", "b", "c"}, holdings(pools, "a", 335, "b", 333, "c", 332), 1},
		{"one member holding everything gives two thirds", []string{"a", "b", "c"}, holdings(pools, "a", 1000), 666},
		{"holdings of non-members are free", []string{"a", "b"}, holdings(pools, "x", 600, "a", 200, "b", 200), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Assign(pools, tc.members, tc.held)
			checkBalanced(t, pools, tc.members, a)
			if got := moves(tc.members, tc.held, a); got != tc.wantMoves {
				t.Errorf("%d pools move, want %d", got, tc.wantMoves)
			}
		})
	}
}

// The same holdings give the same assignment however the inputs are
// ordered, so every replica computes the same one.
func TestAssignIsDeterministic(t *testing.T) {
	pools := poolNames(300)
	held := holdings(pools, "b", 150, "c", 20)
	want := Assign(pools, []string{"a", "b", "c"}, held)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		ps, ms := slices.Clone(pools), []string{"c", "a", "b", "a"}
		rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		if got := Assign(ps, ms, maps.Clone(held)); !maps.Equal(got, want) {
			t.Fatal("assignment depends on input order")
		}
	}
}

// Random holdings: always balanced within one, and the number of pools
// that move is the least any balanced assignment needs (the excess of
// every member over its share).
func TestAssignPropertyMinimalMoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		pools := poolNames(1 + rng.IntN(200))
		members := []string{"a", "b", "c", "d", "e"}[:1+rng.IntN(5)]
		held := map[domain.PoolName]string{}
		for _, p := range pools {
			if rng.IntN(4) > 0 {
				held[p] = members[rng.IntN(len(members))]
			}
		}
		a := Assign(pools, members, held)
		checkBalanced(t, pools, members, a)
		// Least moves: sort members by holdings; the largest n mod M may keep ceil.
		c := counts(held)
		order := slices.Clone(members)
		slices.SortStableFunc(order, func(x, y string) int { return c[y] - c[x] })
		least := 0
		share, extra := len(pools)/len(members), len(pools)%len(members)
		for i, m := range order {
			q := share
			if i < extra {
				q++
			}
			least += max(0, c[m]-q)
		}
		if got := moves(members, held, a); got != least {
			t.Fatalf("trial %d: %d moves, want the least, %d (held counts %v)", trial, got, least, c)
		}
	}
}

// Rendezvous hashing: with nothing held, which member a pool goes to does
// not depend on the other pools, so it scatters evenly instead of in
// runs.
func TestScoreSpreadsPools(t *testing.T) {
	pools := poolNames(3000)
	first := map[string]int{}
	for _, p := range pools {
		best, bs := "", uint64(0)
		for _, m := range []string{"a", "b", "c"} {
			if s := score(p, m); best == "" || s > bs {
				best, bs = m, s
			}
		}
		first[best]++
	}
	for m, n := range first {
		if n < 900 || n > 1100 {
			t.Errorf("member %s ranks first for %d of 3000 pools; a fair hash gives about 1000", m, n)
		}
	}
}

// Replicas act one at a time, in any order, each deciding on holdings as
// they were up to 40 turns ago (their views lag) and acting on the bucket as
// it is (one release or one acquisition per turn): going from 50/50 to
// three members moves the least any balanced end needs (33), whatever the
// interleaving. When the larger share went to whoever held most at the
// moment, two shrinking members with lagging views each kept the smaller
// share and one pool went back and forth.
func TestAssignTransitionMovesTheLeast(t *testing.T) {
	pools := poolNames(100)
	members := []string{"a", "b", "c"}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		held := holdings(pools, "a", 50, "b", 50)
		history := []map[domain.PoolName]string{maps.Clone(held)}
		released := 0
		for turn := 0; ; turn++ {
			if turn > 100_000 {
				t.Fatalf("seed %d: no balance after %d turns", seed, turn)
			}
			if a := Assign(pools, members, held); len(held) == len(pools) && maps.Equal(a, held) {
				break
			}
			m := members[rng.IntN(len(members))]
			view := history[max(0, len(history)-1-rng.IntN(40))]
			a := Assign(pools, members, view)
			var give, take []domain.PoolName
			for _, p := range pools {
				switch h, ok := held[p]; {
				case ok && h == m && a[p] != m:
					give = append(give, p)
				case !ok && a[p] == m:
					take = append(take, p)
				}
			}
			switch {
			case len(give) > 0:
				delete(held, give[rng.IntN(len(give))])
				released++
			case len(take) > 0:
				held[take[rng.IntN(len(take))]] = m
			}
			history = append(history, maps.Clone(held))
		}
		if released != 33 {
			t.Errorf("seed %d: %d pools released on the way to balance, want 33", seed, released)
		}
	}
}
