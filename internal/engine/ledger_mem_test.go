package engine

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// A tombstone and an age entry are held for every job of a retention
// period (a fold of the retained stream makes one of each per finished
// job): they keep their instant in 16 bytes without a pointer, not a
// time.Time (24 bytes, one pointer).
func TestLedgerEntrySizes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"tomb", unsafe.Sizeof(tomb{}), 32},
		{"aged", unsafe.Sizeof(aged{}), 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got > tc.want {
				t.Errorf("%s is %d bytes, want at most %d", tc.name, tc.got, tc.want)
			}
		})
	}
}

// Bytes allocated per job by a fold of queued, started and finished
// events into one ledger (the tables' growth; the ids are allocated
// before): 669 with time.Time in tombstones and age entries, 554 with
// instants.
func TestLedgerFoldBytesPerJob(t *testing.T) {
	const jobs = 1 << 15
	ids := make([]domain.JobID, jobs)
	workers := make([]domain.WorkerID, 64)
	for i := range ids {
		ids[i] = domain.JobID(fmt.Sprintf("job-%08d", i))
	}
	for i := range workers {
		workers[i] = domain.WorkerID(fmt.Sprintf("worker-%02d", i))
	}
	t0 := time.Unix(1_700_000_000, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := NewLedger()
	for i, id := range ids {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		w := workers[i%len(workers)]
		l.Queued(id, at)
		l.Started(id, w, at)
		l.Finished(id, w, at)
	}
	runtime.ReadMemStats(&after)
	if p, r := l.Pending(), l.Running(); p != 0 || r != 0 {
		t.Fatalf("pending %d running %d after the fold", p, r)
	}
	per := float64(after.TotalAlloc-before.TotalAlloc) / jobs
	t.Logf("%.0f bytes allocated per job", per)
	if per > 600 {
		t.Errorf("%.0f bytes allocated per job, want at most 600", per)
	}
}
