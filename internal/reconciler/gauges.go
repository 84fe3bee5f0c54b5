package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
)

// poolGauges are a pool's gauge children, resolved once.
type poolGauges struct {
	pending, running, desired, up, open, min, max, held prometheus.Gauge
	workers                                             [len(domain.WorkerStates)]prometheus.Gauge
	m                                                   *metrics.Metrics
	pool                                                string
}

func newPoolGauges(m *metrics.Metrics, pool domain.PoolName, provider string) *poolGauges {
	name := string(pool)
	g := &poolGauges{
		pending: m.PendingJobs.WithLabelValues(name),
		running: m.RunningJobs.WithLabelValues(name),
		desired: m.DesiredWorkers.WithLabelValues(name),
		up:      m.ProviderUp.WithLabelValues(name, provider),
		open:    m.BreakerOpen.WithLabelValues(name),
		min:     m.MinWorkers.WithLabelValues(name),
		max:     m.MaxWorkers.WithLabelValues(name),
		held:    m.PoolLeaseHeld.WithLabelValues(name),
		m:       m, pool: name,
	}
	g.setUp(true)
	for i, s := range domain.WorkerStates {
		g.workers[i] = m.Workers.WithLabelValues(name, string(s))
	}
	// The pool's counters and histograms exist from the start, empty: a
	// series that appears with its first observations already in shows
	// no rate and no increase (alerts watch increase(expired_jobs_total);
	// the dashboard's quantiles are of rates).
	m.ExpiredJobs.WithLabelValues(name)
	m.JobReruns.WithLabelValues(name)
	m.BusyKilled.WithLabelValues(name)
	m.Reaction.WithLabelValues(name)
	m.JobWait.WithLabelValues(name)
	m.ProvisionDuration.WithLabelValues(name, provider)
	return g
}

// setUp records the provider's health (the breaker closed or open).
func (g *poolGauges) setUp(up bool) {
	metrics.SetBool(g.up, up)
	metrics.SetBool(g.open, !up)
}

func (g *poolGauges) set(p *engine.Pool) {
	st := p.State()
	g.pending.Set(float64(st.Pending))
	g.running.Set(float64(st.Running))
	d, _ := p.LastDecision()
	g.desired.Set(float64(d.Desired))
	s := p.Config().Settings
	g.min.Set(float64(s.MinWorkers))
	g.max.Set(float64(s.MaxWorkers))
	for i, s := range domain.WorkerStates {
		g.workers[i].Set(float64(p.Count(s)))
	}
	for _, t := range p.Tiers() {
		for i, s := range domain.WorkerStates {
			g.m.TierWorkers.WithLabelValues(g.pool, t.Name, t.Provider, string(s)).Set(float64(t.Workers[i]))
		}
	}
}
