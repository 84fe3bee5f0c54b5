// Package metrics defines the daemon's Prometheus collectors. Their names
// are part of the public contract (docs/metrics.md). They are registered on
// the registry passed in, never on the global one, so several daemons can
// live in one process (tests, benchmarks).
package metrics

import (
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
	ReconcileDuration prometheus.Histogram
	Published         *prometheus.CounterVec // {type,result}
	ExpiredJobs       *prometheus.CounterVec // {pool}
	ProviderUp        *prometheus.GaugeVec   // {pool,provider}
	BusConnected      prometheus.Gauge
	CaughtUp          prometheus.Gauge
}

// New registers the collectors on reg, with the Go and process collectors.
func New(reg prometheus.Registerer) *Metrics {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	return &Metrics{
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
		ReconcileDuration: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reconcile_duration_seconds",
			Help:    "Time spent deciding and planning in one reconcile pass.",
			Buckets: []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5}}),
		Published: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "published_events_total",
			Help: "Events published by the daemon, by type and result (published, dropped, error)."}, []string{"type", "result"}),
		ExpiredJobs: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "expired_jobs_total",
			Help: "Jobs dropped from demand after max_job_age without a finished event."}, []string{"pool"}),
		ProviderUp: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "provider_up",
			Help: "1 if the pool's provider answers (circuit closed), else 0."}, []string{"pool", "provider"}),
		BusConnected: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "bus_connected",
			Help: "1 while connected to NATS."}),
		CaughtUp: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "stream_caught_up",
			Help: "1 once the retained job stream has been folded."}),
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
