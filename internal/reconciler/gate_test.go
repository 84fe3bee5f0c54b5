package reconciler

import (
	"context"
	"errors"
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

// deadlineGate is open until a time the test moves, like a lease fence
// whose renewals land (or stop landing).
type deadlineGate struct {
	mu    sync.Mutex
	until time.Time
}

func (g *deadlineGate) set(until time.Time) {
	g.mu.Lock()
	g.until = until
	g.mu.Unlock()
}

func (g *deadlineGate) Until(_ domain.PoolName, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until, now.Before(g.until)
}

// slowCreates is the fake provider with a Create that takes hold (or
// until its context ends), reporting how each one ended.
type slowCreates struct {
	*fakeprovider.Provider
	hold  time.Duration
	ended chan createEnd
}

type createEnd struct {
	at    time.Time
	cause error // the context's cause when it ended early, nil when it ran its course
}

func (p *slowCreates) Create(ctx context.Context, spec providers.WorkerSpec) (domain.Worker, error) {
	select {
	case <-time.After(p.hold):
		p.ended <- createEnd{at: time.Now()}
		return p.Provider.Create(ctx, spec)
	case <-ctx.Done():
		p.ended <- createEnd{at: time.Now(), cause: context.Cause(ctx)}
		return domain.Worker{}, ctx.Err()
	}
}

// A provider call in flight ends at the fence: its context is cancelled
// the moment the gate stops saying yes (so no call of a replica whose
// lease could have expired is still running when another replica takes
// the pool), and not before, however long the provider timeout; while
// renewals move the fence on, a call longer than one fence period runs
// its course.
func TestFenceBoundsCallsInFlight(t *testing.T) {
	run := func(t *testing.T, gate *deadlineGate, hold time.Duration) *slowCreates {
		t.Helper()
		prov := &slowCreates{Provider: fakeprovider.New(testPool), hold: hold, ended: make(chan createEnd, 4)}
		m := metrics.New(prometheus.NewRegistry())
		eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake",
			Settings:     policy.Settings{MaxWorkers: 1, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 1},
			RetryInitial: time.Hour, RetryMax: time.Hour}}, time.Hour)
		r := New(eng, map[domain.PoolName]providers.Provider{testPool: prov}, &capturePub{decisions: make(chan domain.DecisionData, 16)}, m, zerolog.Nop(), Options{
			Interval: 10 * time.Millisecond, ResyncInterval: time.Hour, ProviderTimeout: time.Minute, BreakerFailures: 3,
			BreakerCooldown: time.Second, MaxConcurrentOps: 4, ShutdownTimeout: time.Second, Gate: gate, GateChanged: make(chan struct{})})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		now := time.Now()
		r.Deliver(domain.Delivery{Type: domain.TypeJobQueued, CaughtUp: true, Event: domain.JobEvent{
			Kind: domain.JobQueued, Pool: testPool, JobID: "j", Time: now, Stored: now}})
		return prov
	}
	wait := func(t *testing.T, p *slowCreates) createEnd {
		t.Helper()
		select {
		case e := <-p.ended:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("the create neither ended nor was cut within 30 s (provider timeout 1 min)")
		}
		return createEnd{}
	}

	t.Run("no renewal: cut at the fence", func(t *testing.T) {
		until := time.Now().Add(500 * time.Millisecond)
		gate := &deadlineGate{until: until}
		e := wait(t, run(t, gate, time.Hour))
		if !errors.Is(e.cause, errFenceClosed) {
			t.Fatalf("the create ended with cause %v, want the fence", e.cause)
		}
		if e.at.Before(until) {
			t.Errorf("the create was cut %v before the fence closed", until.Sub(e.at))
		}
		t.Logf("cut %v after the fence closed", e.at.Sub(until).Round(time.Millisecond))
	})

	t.Run("renewed: runs its course", func(t *testing.T) {
		gate := &deadlineGate{until: time.Now().Add(200 * time.Millisecond)}
		stop := make(chan struct{})
		renewed := make(chan struct{})
		go func() { // renew every 50 ms, as a lease's renewals move its fence
			defer close(renewed)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					gate.set(time.Now().Add(200 * time.Millisecond))
				}
			}
		}()
		e := wait(t, run(t, gate, time.Second)) // five fence periods
		close(stop)
		<-renewed
		if e.cause != nil {
			t.Fatalf("a create under a renewed lease was cut: %v", e.cause)
		}
	})
}
