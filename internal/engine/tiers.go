package engine

import (
	"iter"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// TierConfig is one provider tier of a pool: scale-up fills the first
// tier with room, then the next; scale-down stops the last tier's idle
// workers first; a tier whose provider is down is skipped.
type TierConfig struct {
	Name       string // the hodei.worker.tier label value
	Provider   string // docker or kubernetes
	MaxWorkers int
}

// tierState is what the pool knows of one tier's provider.
type tierState struct {
	cfg        TierConfig
	up         bool
	downReason string
	listed     bool
}

// TierStatus is one tier's figures, for metrics and /v1/pools.
type TierStatus struct {
	Name       string
	Provider   string
	MaxWorkers int
	Up         bool
	DownReason string
	// Workers counts the tier's workers by state (domain.WorkerStates order).
	Workers [len(domain.WorkerStates)]int
}

// tiered reports whether the pool spills over several tiers.
func (p *Pool) tiered() bool { return len(p.cfg.Tiers) > 0 }

// initTiers (re)builds the tier states from the configuration, keeping
// what is known of tiers that stay.
func (p *Pool) initTiers() {
	old := p.tiers
	p.tiers = make([]tierState, len(p.cfg.Tiers))
	for i, c := range p.cfg.Tiers {
		p.tiers[i] = tierState{cfg: c, up: true}
		if i < len(old) && old[i].cfg.Provider == c.Provider {
			p.tiers[i].up, p.tiers[i].downReason, p.tiers[i].listed = old[i].up, old[i].downReason, old[i].listed
		}
	}
}

// Tiers returns the pool's tiers with their workers by state; nil for a
// pool with one provider.
func (p *Pool) Tiers() []TierStatus {
	if !p.tiered() {
		return nil
	}
	out := make([]TierStatus, len(p.tiers))
	for i, t := range p.tiers {
		out[i] = TierStatus{Name: t.cfg.Name, Provider: t.cfg.Provider, MaxWorkers: t.cfg.MaxWorkers, Up: t.up, DownReason: t.downReason}
	}
	for _, w := range p.workers {
		if w.tier < len(out) && w.state != noState {
			out[w.tier].Workers[stateIndex(w.state)]++
		}
	}
	return out
}

// WorkerTier is the tier index of a worker (0 for a pool with one
// provider), if known.
func (p *Pool) WorkerTier(id domain.WorkerID) (int, bool) {
	w, ok := p.workers[id]
	if !ok {
		return 0, false
	}
	return w.tier, true
}

// providerOf is the provider a worker runs on.
func (p *Pool) providerOf(w *worker) string {
	if p.tiered() && w.tier < len(p.cfg.Tiers) {
		return p.cfg.Tiers[w.tier].Provider
	}
	return p.cfg.Provider
}

// tierFor picks the tier of a new worker: the first that is up and has
// room, given the workers each tier holds (every state counts: a worker
// being stopped still runs there). ok is false when none has.
func (p *Pool) tierFor(held []int) (int, bool) {
	if !p.tiered() {
		return 0, true
	}
	for i, t := range p.tiers {
		if t.up && held[i] < t.cfg.MaxWorkers {
			return i, true
		}
	}
	return 0, false
}

// held counts the workers on each tier.
func (p *Pool) held() []int {
	n := make([]int, max(len(p.tiers), 1))
	for _, w := range p.workers {
		if w.tier < len(n) {
			n[w.tier]++
		}
	}
	return n
}

// idleCandidates yields the idle workers the plan may stop: for a tiered
// pool the last tier's first, each tier's longest idle first.
func (p *Pool) idleCandidates() iter.Seq[policy.Candidate] {
	if !p.tiered() {
		return p.idle.candidates()
	}
	return func(yield func(policy.Candidate) bool) {
		for t := len(p.tiers) - 1; t >= 0; t-- {
			for w := p.idle.head; w != nil; w = w.next {
				if w.tier == t && !yield(policy.Candidate{ID: w.id, Since: w.since}) {
					return
				}
			}
		}
	}
}

// setTierUp records one tier's provider health. The pool counts as
// unavailable only when every tier is down.
func (p *Pool) setTierUp(tier int, up bool, reason string) {
	if tier < 0 || tier >= len(p.tiers) {
		return
	}
	t := &p.tiers[tier]
	if t.up == up {
		return
	}
	t.up, t.downReason = up, reason
	var down []string
	any := false
	for _, t := range p.tiers {
		if t.up {
			any = true
		} else {
			down = append(down, "tier "+t.cfg.Name+": "+t.downReason)
		}
	}
	p.providerUp, p.downReason = any, strings.Join(down, "; ")
	p.dirty = true
}

// SetTierUp records the health of a pool's tier (its circuit breaker):
// while a tier is down no worker is created there, and new workers go to
// the next tier with room. For a pool with one provider it is
// SetProviderUp.
func (e *Engine) SetTierUp(pool domain.PoolName, tier int, up bool, reason string) {
	p := e.pools[pool]
	switch {
	case p == nil:
	case !p.tiered():
		p.setProviderUp(up, reason)
	default:
		p.setTierUp(tier, up, reason)
	}
}

// ObserveTierList is ObserveList for one tier's provider: only that
// tier's workers can be found missing, and the workers it adopts are the
// tier's.
func (e *Engine) ObserveTierList(pool domain.PoolName, tier int, ws []domain.Worker, listedAt, now time.Time) {
	p := e.pools[pool]
	if p == nil {
		return
	}
	if !p.tiered() {
		p.observeList(ws, listedAt, now, &e.fx)
		return
	}
	if tier < 0 || tier >= len(p.tiers) {
		return
	}
	p.observing = tier
	defer func() { p.observing = 0 }()
	p.tiers[tier].listed = true
	p.observeListOf(ws, listedAt, now, &e.fx, func(w *worker) bool { return w.tier == tier })
	p.listed = true
	for _, t := range p.tiers {
		// A tier whose provider is down cannot be listed: the pool
		// creates on the others meanwhile.
		p.listed = p.listed && (t.listed || !t.up)
	}
}

// ObserveTierChange is ObserveChange for one tier's provider.
func (e *Engine) ObserveTierChange(pool domain.PoolName, tier int, c domain.WorkerChange, now time.Time) {
	p := e.pools[pool]
	if p == nil {
		return
	}
	p.observing = tier
	defer func() { p.observing = 0 }()
	p.observeChange(c, now, &e.fx)
}
