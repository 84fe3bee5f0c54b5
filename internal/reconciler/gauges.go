package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
)

// poolGauges are a pool's gauge children, resolved once.
type poolGauges struct {
	pending, running, desired, up prometheus.Gauge
	workers                       [len(domain.WorkerStates)]prometheus.Gauge
}

func newPoolGauges(m *metrics.Metrics, pool domain.PoolName, provider string) *poolGauges {
	g := &poolGauges{
		pending: m.PendingJobs.WithLabelValues(string(pool)),
		running: m.RunningJobs.WithLabelValues(string(pool)),
		desired: m.DesiredWorkers.WithLabelValues(string(pool)),
		up:      m.ProviderUp.WithLabelValues(string(pool), provider),
	}
	g.up.Set(1)
	for i, s := range domain.WorkerStates {
		g.workers[i] = m.Workers.WithLabelValues(string(pool), string(s))
	}
	return g
}

func (g *poolGauges) set(p *engine.Pool) {
	st := p.State()
	g.pending.Set(float64(st.Pending))
	g.running.Set(float64(st.Running))
	d, _ := p.LastDecision()
	g.desired.Set(float64(d.Desired))
	for i, s := range domain.WorkerStates {
		g.workers[i].Set(float64(p.Count(s)))
	}
}
