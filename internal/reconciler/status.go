package reconciler

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
)

// PoolStatus is one pool as /v1/pools shows it.
type PoolStatus struct {
	Pool         string         `json:"pool"`
	Provider     string         `json:"provider"`
	DryRun       bool           `json:"dry_run"`
	Pending      int            `json:"pending"`
	Running      int            `json:"running"`
	Workers      map[string]int `json:"workers"`
	Desired      int            `json:"desired"`
	LastDecision *DecisionInfo  `json:"last_decision,omitempty"`
	Blocked      string         `json:"blocked,omitempty"`
	ProviderUp   bool           `json:"provider_up"`
	ProviderErr  string         `json:"provider_error,omitempty"`
}

// DecisionInfo is the last decision of a pool.
type DecisionInfo struct {
	Desired int       `json:"desired"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func statusOf(p *engine.Pool, b *Breaker) *PoolStatus {
	st := p.State()
	s := &PoolStatus{
		Pool:     string(p.Name()),
		Provider: p.Config().Provider,
		DryRun:   p.Config().DryRun,
		Pending:  st.Pending,
		Running:  st.Running,
		Workers:  make(map[string]int, len(domain.WorkerStates)),
		Blocked:  p.Blocked(),
	}
	for _, ws := range domain.WorkerStates {
		s.Workers[string(ws)] = p.Count(ws)
	}
	if d, at := p.LastDecision(); !at.IsZero() {
		s.Desired = d.Desired
		s.LastDecision = &DecisionInfo{Desired: d.Desired, Reason: d.Reason, At: at.UTC()}
	}
	s.ProviderUp = true
	if b != nil {
		if open, why := b.Open(); open {
			s.ProviderUp, s.ProviderErr = false, why
		}
	}
	return s
}

// Status returns every pool's status, in configuration order.
func (r *Reconciler) Status() []PoolStatus {
	out := make([]PoolStatus, 0, len(r.status))
	for _, p := range r.eng.Pools() {
		if s := r.status[p.Name()].Load(); s != nil {
			out = append(out, *s)
		}
	}
	return out
}
