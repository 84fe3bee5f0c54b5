// Package fold holds the reference for the ledger fold benchmark
// (BenchmarkLedgerFold in internal/engine): the same event sequence folded
// into a bare Go map, the floor any ledger built on maps can reach. Run
// both in one go:
//
//	go test -run '^$' -bench 'Fold$' -benchmem -cpu 1 ./internal/engine/ ./bench/fold/
package fold

import (
	"fmt"
	"testing"
)

// BenchmarkMapFold mirrors BenchmarkLedgerFold's sequence (one queued,
// started and finished per job, 4096 jobs a round, tombstones cleared each
// round) with one map insert per queued, one lookup-and-store per started
// and one delete plus a tombstone insert per finished.
func BenchmarkMapFold(b *testing.B) {
	const jobs = 4096
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("job-%08d", i)
	}
	type job struct {
		running bool
		worker  int
	}
	live := map[string]job{}
	tombs := map[string]struct{}{}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		i := n % jobs
		switch (n / jobs) % 3 {
		case 0:
			live[ids[i]] = job{}
		case 1:
			j := live[ids[i]]
			j.running, j.worker = true, i%64
			live[ids[i]] = j
		case 2:
			delete(live, ids[i])
			tombs[ids[i]] = struct{}{}
			if i == jobs-1 {
				clear(tombs)
			}
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
