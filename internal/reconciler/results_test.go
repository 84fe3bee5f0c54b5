package reconciler

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// A burst of creates larger than any buffer, while the loop takes no
// result: every call is still made (a call's slot of max_concurrent_ops
// is not held while its result waits for the loop), no call's goroutine
// is left blocked (synctest fails the test on a goroutine blocked at the
// end), and the loop then gets every result once, in the order reported.
func TestCallsAreNotHeldBackByResultsTheLoopHasNotTaken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slots int
		ops   int
	}{
		{"one slot, more creates than the old 256-result buffer", 1, 300},
		{"default slots, a burst of 500", 64, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := fakeprovider.New(testPool)
				eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake",
					Settings:     policy.Settings{MaxWorkers: tc.ops, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: tc.ops},
					RetryInitial: time.Second, RetryMax: time.Second}}, time.Hour)
				r := New(eng, map[domain.PoolName]providers.Provider{testPool: fake}, &capturePub{}, metrics.New(prometheus.NewRegistry()), zerolog.Nop(), Options{
					Interval: time.Hour, ResyncInterval: time.Hour, ProviderTimeout: 5 * time.Second, BreakerFailures: 3,
					BreakerCooldown: time.Second, MaxConcurrentOps: tc.slots, ShutdownTimeout: time.Second})
				want := map[domain.WorkerID]bool{}
				for range tc.ops {
					id := domain.NewWorkerID()
					want[id] = true
					r.start(context.Background(), engine.Op{Kind: engine.OpCreate, Pool: testPool, Worker: id})
				}
				synctest.Wait() // every call's goroutine has ended or is blocked

				created := 0
				for _, c := range fake.Calls() {
					if c.Op == "create" {
						created++
					}
				}
				if created != tc.ops {
					t.Fatalf("%d create calls made with no result taken, want %d", created, tc.ops)
				}
				if r.pending != tc.ops {
					t.Fatalf("pending %d before any result is taken, want %d", r.pending, tc.ops)
				}
				select {
				case <-r.results.ready:
				default:
					t.Fatal("results waiting, but the loop is not woken")
				}
				got := r.results.take()
				if len(got) != tc.ops {
					t.Fatalf("%d results handed to the loop, want %d", len(got), tc.ops)
				}
				for _, res := range got {
					if res.err != nil || res.op.Kind != engine.OpCreate || !want[res.op.Worker] {
						t.Fatalf("unexpected result %+v", res)
					}
					delete(want, res.op.Worker)
				}
				if len(r.results.take()) != 0 {
					t.Fatal("a result handed over twice")
				}
			})
		})
	}
}
