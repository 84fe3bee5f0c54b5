package hae2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// TestFailoverBench measures, over HA_BENCH_TRIALS trials (20 by
// default), the time from the kill -9 of the holder to the first provider
// call of the new holder (a create for the job queued right after the
// kill), with TTL 4 s and R 1 s, for BENCHMARKS.md. It runs only with
// HA_BENCH=1 (make bench): it is a measurement, not a pass/fail test,
// beyond every trial taking over within TTL + R + the create's decision.
func TestFailoverBench(t *testing.T) {
	if os.Getenv("HA_BENCH") != "1" {
		t.Skip("a benchmark: set HA_BENCH=1")
	}
	trials := 20
	if n, err := strconv.Atoi(os.Getenv("HA_BENCH_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	e := newEnv(t, true)
	rs := e.start("r1", "r2")
	var took []time.Duration
	for i := range trials {
		h := e.holder(3 * leaseTTL)
		var o *replica
		for _, r := range rs {
			if r != h {
				o = r
			}
		}
		bustest.Eventually(t, 30*time.Second, "standby ready", o.ready)
		killed := time.Now()
		h.kill()
		e.queue(fmt.Sprintf("t%d", i), 1, 200*time.Millisecond)
		var first time.Time
		bustest.Eventually(t, 3*leaseTTL, "the new holder's first provider call", func() bool {
			for _, q := range o.engine.Requests(func(q engineproxy.Req) bool { return q.Method == http.MethodPost }) {
				if q.Start.After(killed) {
					first = q.Start
					return true
				}
			}
			return false
		})
		took = append(took, first.Sub(killed))
		h.start()
		bustest.Eventually(t, 60*time.Second, "the killed replica back", h.ready)
		e.waitNoContainers(60 * time.Second)
	}
	slices.Sort(took)
	p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
	t.Logf("failover over %d trials, TTL %v, R %v: p50 %v, p99 %v, min %v, max %v", len(took), leaseTTL, renewEvery,
		p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}
