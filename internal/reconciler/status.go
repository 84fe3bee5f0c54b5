package reconciler

import (
	"strings"
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
	// Removing: a reload removed the pool; it stops its workers as they
	// become idle and goes with the last one.
	Removing bool `json:"removing,omitempty"`
	// Since is when this daemon started running the pool (its start, or
	// the reload that added it).
	Since time.Time `json:"since"`
	// Lease says which replica acts on the pool, as this one sees it
	// (filled in by the daemon from its lease manager).
	Lease *LeaseStatus `json:"lease,omitempty"`
	// Tiers are a pool's provider tiers with their workers, in order
	// (none for a pool with one provider).
	Tiers []TierStatus `json:"tiers,omitempty"`
	// Budget is the budget the pool draws from, if any.
	Budget string `json:"budget,omitempty"`
}

// LeaseStatus is who holds a pool's lease.
type LeaseStatus struct {
	Holder string    `json:"holder"`          // the holding replica ("" while nobody does)
	Since  time.Time `json:"since,omitzero"`  // since when it holds it
	Mine   bool      `json:"mine"`            // this replica may act on the pool now
	Stale  bool      `json:"stale,omitempty"` // the holder has not renewed for a lease ttl
}

// TierStatus is one tier of a pool as /v1/pools shows it.
type TierStatus struct {
	Tier        string         `json:"tier"`
	Provider    string         `json:"provider"`
	MaxWorkers  int            `json:"max_workers"`
	Workers     map[string]int `json:"workers"`
	ProviderUp  bool           `json:"provider_up"`
	ProviderErr string         `json:"provider_error,omitempty"`
}

// DecisionInfo is the last decision of a pool.
type DecisionInfo struct {
	Desired int       `json:"desired"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func statusOf(p *engine.Pool, tiers []*tierRun, since time.Time) *PoolStatus {
	st := p.State()
	s := &PoolStatus{
		Pool:     string(p.Name()),
		Provider: p.Config().Provider,
		DryRun:   p.Config().DryRun,
		Pending:  st.Pending,
		Running:  st.Running,
		Workers:  make(map[string]int, len(domain.WorkerStates)),
		Blocked:  p.Blocked(),
		Removing: p.Removing(),
		Since:    since.UTC(),
	}
	for _, ws := range domain.WorkerStates {
		s.Workers[string(ws)] = p.Count(ws)
	}
	if d, at := p.LastDecision(); !at.IsZero() {
		s.Desired = d.Desired
		s.LastDecision = &DecisionInfo{Desired: d.Desired, Reason: d.Reason, At: at.UTC()}
	}
	s.ProviderUp = true
	s.Budget = p.Config().Budget
	var why []string
	for _, tr := range tiers {
		if open, reason := tr.breaker.Open(); open {
			s.ProviderUp = false
			if tr.name != "" {
				reason = "tier " + tr.name + ": " + reason
			}
			why = append(why, reason)
		}
	}
	s.ProviderErr = strings.Join(why, "; ")
	for i, t := range p.Tiers() {
		ts := TierStatus{Tier: t.Name, Provider: t.Provider, MaxWorkers: t.MaxWorkers, Workers: map[string]int{}, ProviderUp: true}
		for j, ws := range domain.WorkerStates {
			ts.Workers[string(ws)] = t.Workers[j]
		}
		if i < len(tiers) {
			if open, reason := tiers[i].breaker.Open(); open {
				ts.ProviderUp, ts.ProviderErr = false, reason
			}
		}
		s.Tiers = append(s.Tiers, ts)
	}
	return s
}

// Status returns every pool's status, in configuration order.
func (r *Reconciler) Status() []PoolStatus {
	view := r.snapshot()
	out := make([]PoolStatus, 0, len(view))
	for _, run := range view {
		if s := run.status.Load(); s != nil {
			out = append(out, *s)
		}
	}
	return out
}
