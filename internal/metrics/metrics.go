// Package metrics defines the daemon's Prometheus collectors. Their names
// are part of the public contract (docs/metrics.md). They are registered on
// the registry passed in, never on the global one, so several daemons can
// live in one process (tests, benchmarks).
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const ns = "hodei_autoscaler"

// Metrics are the daemon's collectors.
type Metrics struct {
	PendingJobs       *prometheus.GaugeVec     // {pool}
	RunningJobs       *prometheus.GaugeVec     // {pool}
	Workers           *prometheus.GaugeVec     // {pool,state}
	DesiredWorkers    *prometheus.GaugeVec     // {pool}
	Events            *prometheus.CounterVec   // {type,result}
	EventsDropped     *prometheus.CounterVec   // {reason}
	Decisions         *prometheus.CounterVec   // {pool,direction}
	ProviderOps       *prometheus.CounterVec   // {pool,provider,op,result}
	ProvisionDuration *prometheus.HistogramVec // {pool,provider}
	Reaction          *prometheus.HistogramVec // {pool}
	JobWait           *prometheus.HistogramVec // {pool}
	ReconcileDuration prometheus.Histogram
	Published         *prometheus.CounterVec // {type,result}
	ExpiredJobs       *prometheus.CounterVec // {pool}
	JobReruns         *prometheus.CounterVec // {pool}
	BusyKilled        *prometheus.CounterVec // {pool}
	ProviderUp        *prometheus.GaugeVec   // {pool,provider}
	BreakerOpen       *prometheus.GaugeVec   // {pool}
	MinWorkers        *prometheus.GaugeVec   // {pool}
	MaxWorkers        *prometheus.GaugeVec   // {pool}
	TierWorkers       *prometheus.GaugeVec   // {pool,tier,provider,state}
	TierUp            *prometheus.GaugeVec   // {pool,tier,provider}
	BudgetWorkers     *prometheus.GaugeVec   // {budget}
	BudgetLimit       *prometheus.GaugeVec   // {budget,resource}
	BusConnected      prometheus.Gauge
	StoreWritable     prometheus.Gauge
	EmbeddedRestarts  prometheus.Counter
	CaughtUp          prometheus.Gauge
	BuildInfo         *prometheus.GaugeVec   // {version,goversion}
	ConfigReloads     *prometheus.CounterVec // {result}
	PoolLeaseHeld     *prometheus.GaugeVec   // {pool}
	LeaseChanges      *prometheus.CounterVec // {pool,change,reason}
}

// Results of a configuration reload (config_reloads_total{result}).
const (
	ReloadApplied  = "applied"
	ReloadRejected = "rejected"
)

// New registers the collectors on reg, with the Go and process collectors.
func New(reg prometheus.Registerer) *Metrics {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	m := &Metrics{
		PendingJobs: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "pending_jobs",
			Help: "Jobs waiting for a worker slot."}, []string{"pool"}),
		RunningJobs: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "running_jobs",
			Help: "Jobs running on this pool's workers."}, []string{"pool"}),
		Workers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "workers",
			Help: "Workers by state: provisioning, idle, busy, draining, failed."}, []string{"pool", "state"}),
		DesiredWorkers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "desired_workers",
			Help: "Worker count the policy wants."}, []string{"pool"}),
		Events: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_total",
			Help: "Job events consumed, by CloudEvents type and result (applied, duplicate, invalid, ignored)."}, []string{"type", "result"}),
		EventsDropped: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_dropped_total",
			Help: "Job events rejected (invalid) or ignored, by reason."}, []string{"reason"}),
		Decisions: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scaling_decisions_total",
			Help: "Reconcile decisions by direction (up, down, none)."}, []string{"pool", "direction"}),
		ProviderOps: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "provider_operations_total",
			Help: "Provider calls by operation and result (ok, error)."}, []string{"pool", "provider", "op", "result"}),
		ProvisionDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "provision_duration_seconds",
			Help:    "From the create call to the worker being ready.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}, []string{"pool", "provider"}),
		Reaction: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "reaction_seconds",
			Help:    "From a job.queued event's time to the provision request issued for it.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30}}, []string{"pool"}),
		// 300 s is a bucket boundary: the HodeiAutoscalerJobWaitHigh
		// alert's threshold.
		JobWait: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "job_wait_seconds",
			Help:    "From a job's job.queued to its job.started (stream times), for jobs that waited.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"pool"}),
		ReconcileDuration: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reconcile_duration_seconds",
			Help:    "Time spent deciding and planning in one reconcile pass.",
			Buckets: []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5}}),
		Published: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "published_events_total",
			Help: "Events published by the daemon, by type and result (published, dropped, error)."}, []string{"type", "result"}),
		ExpiredJobs: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "expired_jobs_total",
			Help: "Jobs dropped from demand after max_job_age without a finished event."}, []string{"pool"}),
		JobReruns: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "job_reruns_total",
			Help: "Started events that opened a new run of a job already finished (a redelivery ran it again)."}, []string{"pool"}),
		BusyKilled: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "busy_workers_killed_total",
			Help: "Workers stopped by force while they still ran a job (past drain_timeout)."}, []string{"pool"}),
		ProviderUp: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "provider_up",
			Help: "1 if the pool's provider answers (circuit closed), else 0."}, []string{"pool", "provider"}),
		BreakerOpen: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "breaker_open",
			Help: "1 while the pool's circuit breaker is open (its provider is not called), else 0."}, []string{"pool"}),
		MinWorkers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "min_workers",
			Help: "The pool's min_workers in force (the configuration's, reloads included)."}, []string{"pool"}),
		MaxWorkers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "max_workers",
			Help: "The pool's max_workers in force (the configuration's, reloads included)."}, []string{"pool"}),
		TierWorkers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tier_workers",
			Help: "Workers of a pool with tiers, by tier and state."}, []string{"pool", "tier", "provider", "state"}),
		TierUp: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tier_up",
			Help: "1 if the tier's provider answers (its circuit closed), else 0."}, []string{"pool", "tier", "provider"}),
		BudgetWorkers: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "budget_workers",
			Help: "Workers the pools of a budget hold, in every state."}, []string{"budget"}),
		BudgetLimit: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "budget_limit",
			Help: "A budget's limit by resource (workers, cpu_millis, memory_mb); 0: no limit."}, []string{"budget", "resource"}),
		BusConnected: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "bus_connected",
			Help: "1 while connected to NATS."}),
		StoreWritable: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "store_writable",
			Help: "With the embedded NATS server: 1 while its store takes writes (the write probe is acknowledged), else 0. Always 1 against an external server."}),
		EmbeddedRestarts: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "embedded_nats_restarts_total",
			Help: "Restarts of the embedded NATS server by the store watch after a storage error it kept once the disk took writes again."}),
		CaughtUp: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "stream_caught_up",
			Help: "1 once the retained job stream has been folded."}),
		BuildInfo: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
			Help: "Always 1; the labels say which build runs."}, []string{"version", "goversion"}),
		ConfigReloads: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP or the file changing) by result: applied or rejected."}, []string{"result"}),
		PoolLeaseHeld: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "pool_lease_held",
			Help: "1 while this replica may act on the pool (it holds the pool's lease and its fence is open; with ha off, its exclusive lease), else 0."}, []string{"pool"}),
		LeaseChanges: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "lease_changes_total",
			Help: "This replica gaining or losing a pool's lease, by change (gained, lost) and reason (free, takeover, handover, grace, resumed; rebalance, yield, unserved, shutdown, taken, session-lost, fenced)."}, []string{"pool", "change", "reason"}),
	}
	// Counters that alerts watch with increase() exist from the start at
	// 0: a series that appears at 1 has no increase to show.
	m.ConfigReloads.WithLabelValues(ReloadApplied)
	m.ConfigReloads.WithLabelValues(ReloadRejected)
	return m
}

// SetBuildInfo publishes the build's version (build_info is 1).
func (m *Metrics) SetBuildInfo(version string) {
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
}

// ForgetPool removes a pool's gauges (after the pool has been removed by a
// reload and its last worker is gone), so that no stale figure of it is
// scraped. Its counters and histograms stay: their totals remain true.
func (m *Metrics) ForgetPool(pool string) {
	l := prometheus.Labels{"pool": pool}
	for _, g := range []*prometheus.GaugeVec{m.PendingJobs, m.RunningJobs, m.Workers, m.DesiredWorkers,
		m.ProviderUp, m.BreakerOpen, m.MinWorkers, m.MaxWorkers, m.TierWorkers, m.TierUp, m.PoolLeaseHeld} {
		g.DeletePartialMatch(l)
	}
}

// SetBool sets a 0/1 gauge (connected, provider up).
func SetBool(g prometheus.Gauge, b bool) {
	if b {
		g.Set(1)
	} else {
		g.Set(0)
	}
}
