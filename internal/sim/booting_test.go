package sim

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// The simulator drives the engine's stop of a surplus booting worker. A
// queued at 0 s runs 15 s; B queued at 20 s runs 5 s; a fixed 10 s boot;
// idle_timeout 2m (longer than a boot). W1, created at 0, ready at 10,
// runs A to 25; B creates W2 at 20; at 25 W1 is free and takes B, and W2,
// booting, is surplus: stopped at 25 (5 s) instead of booting and idling
// 2 minutes. W1 runs B to 30 and stops 2 minutes later (150 s). With
// idle_timeout 10 s (no longer than the boot) W2 boots (ready 30) and
// stops 10 s later: 20 s.
func TestSurplusBootingWorkerStoppedInTheSimulator(t *testing.T) {
	tr := &Trace{Start: DefaultStart, Jobs: []Job{
		{ID: "A", Pool: "p", Queued: 0, Duration: 15 * time.Second},
		{ID: "B", Pool: "p", Queued: 20 * time.Second, Duration: 5 * time.Second},
	}}
	for _, tt := range []struct {
		name          string
		idle          time.Duration
		workerSeconds float64
	}{
		{name: "idle_timeout 2m: W2 stops while booting", idle: 2 * time.Minute, workerSeconds: 150 + 5},
		{name: "idle_timeout 10s: W2 boots", idle: 10 * time.Second, workerSeconds: 40 + 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.IdleTimeout = tt.idle }), tenSeconds, 1, false)
			if r.WorkerSeconds != tt.workerSeconds || r.WaitMax != 10 || r.WaitP50 != 5 || r.Started != 2 || r.Stopped != 2 || r.BusySeconds != 20 {
				t.Fatalf("worker-s %v (want %v), waits p50 %v max %v (want 5, 10), started %d stopped %d busy %v",
					r.WorkerSeconds, tt.workerSeconds, r.WaitP50, r.WaitMax, r.Started, r.Stopped, r.BusySeconds)
			}
		})
	}
}
