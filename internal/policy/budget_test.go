package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestAllocate(t *testing.T) {
	six := Budget{Name: "shared", Workers: 6}
	tests := []struct {
		name   string
		b      Budget
		claims []Claim
		want   []int
	}{
		{"under budget: everyone gets what it wants", six,
			[]Claim{{Want: 2, Weight: 1}, {Want: 3, Weight: 1}}, []int{2, 3}},
		{"higher priority first", six,
			[]Claim{{Want: 10, Priority: 1, Weight: 1}, {Want: 10, Priority: 10, Weight: 1}}, []int{0, 6}},
		{"high priority drained: low takes the room", six,
			[]Claim{{Want: 10, Priority: 1, Weight: 1}, {Want: 0, Priority: 10, Weight: 1}}, []int{6, 0}},
		{"high priority wants some: low gets the rest", six,
			[]Claim{{Want: 10, Priority: 1, Weight: 1}, {Want: 2, Priority: 10, Weight: 1}}, []int{4, 2}},
		{"weights 2:1 of 6 give 4 and 2", six,
			[]Claim{{Want: 10, Priority: 5, Weight: 2}, {Want: 10, Priority: 5, Weight: 1}}, []int{4, 2}},
		{"weights 1:2 in the other order", six,
			[]Claim{{Want: 10, Weight: 1}, {Want: 10, Weight: 2}}, []int{2, 4}},
		{"equal weights, odd budget: the earlier claim gets the odd worker", Budget{Name: "b", Workers: 5},
			[]Claim{{Want: 10, Weight: 1}, {Want: 10, Weight: 1}}, []int{3, 2}},
		{"a pool that wants less than its fair share leaves the rest to the other", six,
			[]Claim{{Want: 1, Weight: 2}, {Want: 10, Weight: 1}}, []int{1, 5}},
		{"three pools 3:2:1 of 12", Budget{Name: "b", Workers: 12},
			[]Claim{{Want: 20, Weight: 3}, {Want: 20, Weight: 2}, {Want: 20, Weight: 1}}, []int{6, 4, 2}},
		{"guarantee beats priority", six,
			[]Claim{{Want: 10, Priority: 1, Weight: 1, Guaranteed: 2}, {Want: 10, Priority: 10, Weight: 1}}, []int{2, 4}},
		{"guarantee only up to what the pool wants", six,
			[]Claim{{Want: 1, Priority: 1, Weight: 1, Guaranteed: 3}, {Want: 10, Priority: 10, Weight: 1}}, []int{1, 5}},
		{"busy floor: a low pool's busy workers are never taken back", six,
			[]Claim{{Want: 4, Floor: 4, Priority: 1, Weight: 1}, {Want: 10, Priority: 10, Weight: 1}}, []int{4, 2}},
		{"busy floors above the budget: everyone keeps its floor, no more", six,
			[]Claim{{Want: 8, Floor: 5, Weight: 1}, {Want: 8, Floor: 3, Weight: 1}}, []int{5, 3}},
		{"floor above the fair share: the other gets the rest", six,
			[]Claim{{Want: 10, Floor: 5, Weight: 1}, {Want: 10, Weight: 1}}, []int{5, 1}},
		{"cpu budget: workers of different costs, dominant share", Budget{Name: "cpu", CPUMillis: 4000},
			[]Claim{{Want: 10, Weight: 1, CPUMillis: 1000}, {Want: 10, Weight: 1, CPUMillis: 500}}, []int{2, 4}},
		{"memory budget, one pool wants little", Budget{Name: "mem", MemoryMB: 4096},
			[]Claim{{Want: 1, Weight: 1, MemoryMB: 1024}, {Want: 10, Weight: 1, MemoryMB: 512}}, []int{1, 6}},
		{"workers and cpu: shares by each pool's dominant dimension", Budget{Name: "b", Workers: 6, CPUMillis: 2000},
			[]Claim{{Want: 10, Weight: 1, CPUMillis: 500}, {Want: 10, Weight: 1}}, []int{2, 4}},
		{"no claims", six, nil, []int{}},
		{"a zero weight counts as one", six,
			[]Claim{{Want: 10}, {Want: 10}}, []int{3, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Allocate(tc.b, tc.claims)
			n := make([]int, len(got))
			for i, s := range got {
				n[i] = s.Workers
			}
			if !slices.Equal(n, tc.want) {
				t.Fatalf("Allocate = %v, want %v", n, tc.want)
			}
			// Never above the budget unless the floors alone are.
			total, floors := 0, 0
			for i, s := range got {
				total += s.Workers
				floors += tc.claims[i].Floor
				if s.Workers < tc.claims[i].Floor {
					t.Errorf("claim %d: %d below its floor %d", i, s.Workers, tc.claims[i].Floor)
				}
			}
			if tc.b.Workers > 0 && total > max(tc.b.Workers, floors) {
				t.Errorf("total %d above the budget %d", total, tc.b.Workers)
			}
			// Deterministic.
			again := Allocate(tc.b, tc.claims)
			if !slices.Equal(again, got) {
				t.Errorf("second Allocate differs: %v vs %v", again, got)
			}
		})
	}
}

func TestAllocateReasons(t *testing.T) {
	b := Budget{Name: "shared", Workers: 6}
	got := Allocate(b, []Claim{{Want: 10, Priority: 5, Weight: 2}, {Want: 1, Priority: 5, Weight: 1}})
	if !got[0].Bounded || got[1].Bounded {
		t.Fatalf("bounded = %v, %v; want true, false", got[0].Bounded, got[1].Bounded)
	}
	for _, want := range []string{"budget shared (6 workers)", "share 5 of 10 wanted", "priority 5", "weight 2"} {
		if !strings.Contains(got[0].Reason, want) {
			t.Errorf("reason %q lacks %q", got[0].Reason, want)
		}
	}
	if !strings.Contains(got[1].Reason, "within budget shared") {
		t.Errorf("reason %q does not say within budget", got[1].Reason)
	}
	floor := Allocate(b, []Claim{{Want: 8, Floor: 6, Weight: 1}, {Want: 3, Weight: 1}})
	if !strings.Contains(floor[1].Reason, "share 0 of 3") {
		t.Errorf("reason %q", floor[1].Reason)
	}
}
