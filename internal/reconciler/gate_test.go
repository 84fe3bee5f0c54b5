package reconciler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// switchGate is a Gate a test opens and closes.
type switchGate struct {
	mu   sync.Mutex
	open bool
}

func (g *switchGate) set(open bool) {
	g.mu.Lock()
	g.open = open
	g.mu.Unlock()
}

func (g *switchGate) Until(_ domain.PoolName, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Add(time.Hour), g.open
}

// A replica that does not hold a pool's lease folds its jobs and follows
// its workers but makes no provider call and publishes nothing; the
// moment it holds it, it creates what the jobs it already folded need.
func TestGateClosedMeansNoCallsAndNoEvents(t *testing.T) {
	fake := fakeprovider.New(testPool)
	pub := &capturePub{decisions: make(chan domain.DecisionData, 16)}
	m := metrics.New(prometheus.NewRegistry())
	gate := &switchGate{}
	changed := make(chan struct{}, 1)
	eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake",
		Settings:     policy.Settings{MaxWorkers: 5, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 5},
		RetryInitial: time.Second, RetryMax: time.Second}}, time.Hour)
	r := New(eng, map[domain.PoolName]providers.Provider{testPool: fake}, pub, m, zerolog.Nop(), Options{
		Interval: 10 * time.Millisecond, ResyncInterval: time.Hour, ProviderTimeout: 5 * time.Second, BreakerFailures: 3,
		BreakerCooldown: time.Second, MaxConcurrentOps: 4, ShutdownTimeout: time.Second, Gate: gate, GateChanged: changed})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	for i := range 3 {
		r.Deliver(domain.Delivery{Type: domain.TypeJobQueued, CaughtUp: i == 2, Event: domain.JobEvent{
			Kind: domain.JobQueued, Pool: testPool, JobID: domain.JobID(fmt.Sprint(i)), Time: now, Stored: now}})
	}
	// Standby: the ledger has the jobs (status shows them), nothing is called.
	deadline := time.Now().Add(10 * time.Second)
	for st := r.Status(); len(st) != 1 || st[0].Pending != 3; st = r.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("standby status %+v, want 3 pending folded", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // ten ticks: a standby that acted would have by now
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("standby called the provider: %+v", calls)
	}
	select {
	case d := <-pub.decisions:
		t.Fatalf("standby published a decision %+v", d)
	default:
	}
	if v := testutil.ToFloat64(m.PoolLeaseHeld.WithLabelValues(string(testPool))); v != 0 {
		t.Fatalf("pool_lease_held = %v on a standby", v)
	}

	gate.set(true)
	changed <- struct{}{}
	for len(fake.Workers()) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("holder workers %v, want 3 created", fake.Workers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := testutil.ToFloat64(m.PoolLeaseHeld.WithLabelValues(string(testPool))); v != 1 {
		t.Fatalf("pool_lease_held = %v on the holder", v)
	}
	select {
	case <-pub.decisions:
	case <-time.After(5 * time.Second):
		t.Fatal("the holder published no decision")
	}

	// Closed again: the idle workers are not stopped by this replica,
	// whatever idle_timeout says; nothing more is called.
	gate.set(false)
	changed <- struct{}{}
	time.Sleep(50 * time.Millisecond)
	n := len(fake.Calls())
	for i := range 3 {
		r.Deliver(domain.Delivery{Type: domain.TypeJobFinished, Event: domain.JobEvent{
			Kind: domain.JobFinished, Pool: testPool, JobID: domain.JobID(fmt.Sprint(i)), Time: now, Stored: now}})
	}
	time.Sleep(100 * time.Millisecond)
	if calls := fake.Calls(); len(calls) != n {
		t.Fatalf("calls after the gate closed: %+v", calls[n:])
	}
}
