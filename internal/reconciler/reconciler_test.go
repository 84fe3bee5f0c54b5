package reconciler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

const testPool = domain.PoolName("p")

// dry_run: decisions are computed, published marked dry-run, logged and
// exposed in metrics; no provider call is made. Checked through the
// Reconciler, which does the logging, publishing and metrics.
func TestDryRunIsLoggedPublishedAndMeasuredWithoutProviderCalls(t *testing.T) {
	fake := fakeprovider.New(testPool)
	pub := &capturePub{decisions: make(chan domain.DecisionData, 16)}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	var logs syncbuf.Buffer
	eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake", DryRun: true,
		Settings:     policy.Settings{MaxWorkers: 5, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 5},
		RetryInitial: time.Second, RetryMax: time.Second}}, time.Hour)
	r := New(eng, map[domain.PoolName]providers.Provider{testPool: fake}, pub, m, zerolog.New(&logs), Options{
		Interval: time.Hour, ResyncInterval: time.Hour, ProviderTimeout: 5 * time.Second, BreakerFailures: 3,
		BreakerCooldown: time.Second, MaxConcurrentOps: 4, ShutdownTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })

	now := time.Now()
	for i := range 2 {
		r.Deliver(domain.Delivery{Type: domain.TypeJobQueued, CaughtUp: i == 1, Event: domain.JobEvent{
			Kind: domain.JobQueued, Pool: testPool, JobID: domain.JobID(fmt.Sprint(i)), Time: now, Stored: now}})
	}
	timeout := time.After(10 * time.Second)
	var got domain.DecisionData
	for got.Desired != 2 {
		select {
		case got = <-pub.decisions:
		case <-timeout:
			t.Fatalf("no decision for 2 workers published; last %+v", got)
		}
	}
	if !got.DryRun || !strings.Contains(got.Reason, "pending 2") {
		t.Fatalf("published decision %+v, want dry_run and its reason", got)
	}
	if err := stop(); err != nil && err != context.Canceled {
		t.Fatalf("run: %v", err)
	}

	if calls := fake.Calls(); len(calls) != 0 {
		t.Errorf("dry run made provider calls: %+v", calls)
	}
	if v := testutil.ToFloat64(m.DesiredWorkers.WithLabelValues(string(testPool))); v != 2 {
		t.Errorf("desired_workers = %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.Decisions.WithLabelValues(string(testPool), "up")); v < 1 {
		t.Errorf("scaling_decisions_total{direction=up} = %v, want the dry-run decisions counted", v)
	}
	if v := testutil.ToFloat64(m.ProviderOps.WithLabelValues(string(testPool), "fake", "create", "ok")); v != 0 {
		t.Errorf("provider_operations_total{op=create} = %v", v)
	}
	var sawLog bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"message":"scaling decision"`) && strings.Contains(line, `"dry_run":true`) && strings.Contains(line, `"desired":2`) {
			sawLog = true
		}
	}
	if !sawLog {
		t.Errorf("no scaling decision logged with dry_run true:\n%s", logs.String())
	}
	if st := r.Status(); len(st) != 1 || !st[0].DryRun || st[0].Desired != 2 {
		t.Errorf("/v1/pools status %+v", st)
	}
}

type capturePub struct {
	decisions chan domain.DecisionData
}

func (p *capturePub) Worker(time.Time, domain.Lifecycle, domain.WorkerEventData) {}
func (p *capturePub) Decision(_ time.Time, d domain.DecisionData) {
	select {
	case p.decisions <- d:
	default:
	}
}

// Durations in the daemon's logs are Go duration strings ("age":"25h0m0s"),
// not zerolog's unitless milliseconds ("age":90000000).
func TestLogsGiveDurationsAsGoDurations(t *testing.T) {
	fake := fakeprovider.New(testPool)
	m := metrics.New(prometheus.NewRegistry())
	var logs syncbuf.Buffer
	start := time.Now()
	var clock atomic.Int64 // offset from start
	now := func() time.Time { return start.Add(time.Duration(clock.Load())) }
	eng := engine.NewEngine([]engine.PoolConfig{{Name: testPool, Provider: "fake",
		Settings:     policy.Settings{MaxWorkers: 5, JobsPerWorker: 1, IdleTimeout: time.Minute, ProvisionTimeout: time.Minute, MaxConcurrentProvisioning: 5},
		RetryInitial: time.Second, RetryMax: time.Second}}, 24*time.Hour)
	pub := &capturePub{decisions: make(chan domain.DecisionData, 16)}
	r := New(eng, map[domain.PoolName]providers.Provider{testPool: fake}, pub, m, zerolog.New(&logs), Options{
		Interval: 10 * time.Millisecond, ResyncInterval: time.Hour, ProviderTimeout: 5 * time.Second, BreakerFailures: 3,
		BreakerCooldown: time.Second, MaxConcurrentOps: 4, ShutdownTimeout: time.Second, Now: now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r.Deliver(domain.Delivery{Type: domain.TypeJobQueued, CaughtUp: true, Event: domain.JobEvent{
		Kind: domain.JobQueued, Pool: testPool, JobID: "j", Time: start, Stored: start}})
	deadline := time.After(10 * time.Second)
	for d := (domain.DecisionData{}); d.Pending != 1; {
		select {
		case d = <-pub.decisions:
		case <-deadline:
			t.Fatalf("the job was not applied:\n%s", logs.String())
		}
	}
	clock.Store(int64(25 * time.Hour)) // the next tick expires the job
	for !strings.Contains(logs.String(), "max_job_age") {
		select {
		case <-deadline:
			t.Fatalf("no expiry logged:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !strings.Contains(logs.String(), `"age":"25h0m0s"`) {
		t.Errorf("the expiry's age is not a Go duration:\n%s", logs.String())
	}
}
