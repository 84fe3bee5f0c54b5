package reconciler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

// A booting worker that became surplus (its jobs ended before it was
// ready) is stopped through the provider as an idle one is, and the log
// says why; the worker still needed keeps booting.
func TestSurplusBootingWorkersAreStoppedThroughTheProvider(t *testing.T) {
	fake := fakeprovider.New(testPool)
	fake.ReadyAfter = time.Hour // they stay booting for the whole test
	var logs syncbuf.Buffer
	eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake",
		Settings:     policy.Settings{MaxWorkers: 5, JobsPerWorker: 1, IdleTimeout: 2 * time.Minute, ProvisionTimeout: 2 * time.Hour, MaxConcurrentProvisioning: 5},
		RetryInitial: time.Second, RetryMax: time.Second}}, time.Hour)
	pub := &capturePub{decisions: make(chan domain.DecisionData, 64)}
	r := New(eng, map[domain.PoolName]providers.Provider{testPool: fake}, pub, metrics.New(prometheus.NewRegistry()), zerolog.New(&logs), Options{
		Interval: 10 * time.Millisecond, ResyncInterval: time.Hour, ProviderTimeout: 5 * time.Second, BreakerFailures: 3,
		BreakerCooldown: time.Second, MaxConcurrentOps: 4, ShutdownTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	deliver := func(kind domain.JobKind, typ, job string, caughtUp bool) {
		r.Deliver(domain.Delivery{Type: typ, CaughtUp: caughtUp, Event: domain.JobEvent{
			Kind: kind, Pool: testPool, JobID: domain.JobID(job), Time: now, Stored: now, Outcome: domain.OutcomeSucceeded}})
	}
	for i := range 3 {
		deliver(domain.JobQueued, domain.TypeJobQueued, fmt.Sprint("j", i), i == 2)
	}
	calls := func(op string) int {
		n := 0
		for _, c := range fake.Calls() {
			if c.Op == op {
				n++
			}
		}
		return n
	}
	deadline := time.After(10 * time.Second)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case <-deadline:
				t.Fatalf("%s: calls %+v\n%s", what, fake.Calls(), logs.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitFor("3 creates", func() bool { return calls("create") == 3 })
	deliver(domain.JobFinished, domain.TypeJobFinished, "j1", true)
	deliver(domain.JobFinished, domain.TypeJobFinished, "j2", true)
	waitFor("2 booting workers stopped", func() bool { return calls("stop") == 2 && len(fake.Workers()) == 1 })
	waitFor("the reason logged", func() bool { return strings.Count(logs.String(), "stopped while booting: surplus") == 2 })
	if n := calls("delete"); n != 0 {
		t.Errorf("%d deletes, want the surplus stopped, not failed", n)
	}
}
