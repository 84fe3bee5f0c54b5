package engine

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Pool is one pool's state inside the engine: its ledger, its workers and
// what the policy remembers. Its worker state machine is in workers.go,
// the fold of job events in jobs.go, the reconcile steps in reconcile.go.
type Pool struct {
	cfg     PoolConfig
	ledger  *Ledger
	workers map[domain.WorkerID]*worker
	count   [len(domain.WorkerStates)]int

	idle, provisioning workerList
	// orphanRunning counts running jobs whose worker is not alive here
	// (dead, unknown, or someone else's): they are demand again.
	orphanRunning int
	// retries holds workers whose stop or delete failed.
	retries map[domain.WorkerID]struct{}
	// removed remembers workers this pool stopped, deleted or saw go, for
	// removedMemory, so that a late sighting of one is not taken for a new
	// worker to adopt. removedOrder holds them oldest first, for pruning.
	removed      map[domain.WorkerID]time.Time
	removedOrder []removal

	// cause are the CloudEvent extensions of the last job event applied
	// that had any, carried onto the next decision (publishDecision).
	cause map[string]string

	folded     bool // the retained job stream has been folded (Engine.CaughtUp)
	removing   bool // a reload removed the pool (reload.go)
	listed     bool // a first provider listing has been applied
	standby    bool // another replica acts on the pool (standby.go)
	providerUp bool
	downReason string

	bo           *backoff.ExponentialBackOff
	failures     int
	blockedUntil time.Time

	dirty    bool
	nextWake time.Time

	decision      policy.Decision
	decidedAt     time.Time
	published     bool
	lastPublished int
	blocked       string

	// uncovered holds the event times of queued jobs not yet served by a
	// provision request, oldest first (for reaction_seconds).
	uncovered []time.Time

	// tiers are the pool's provider tiers (tiers.go); observing is the
	// tier whose listing or change is being applied. budget, while the
	// engine reconciles a pool of a budget, is its share (budget.go).
	tiers     []tierState
	observing int
	budget    *budgetRound

	// hist is what the policy remembers between decisions (recent
	// recommendations, last scale times, rate-limit windows, the arrival
	// and provisioning averages). The engine records into it; Decide only
	// reads it, through State.
	hist policy.History
}

func newPool(c PoolConfig) *Pool {
	p := &Pool{
		cfg:        c,
		ledger:     NewLedger(),
		workers:    map[domain.WorkerID]*worker{},
		retries:    map[domain.WorkerID]struct{}{},
		removed:    map[domain.WorkerID]time.Time{},
		providerUp: true,
		bo:         newBackoff(c),
	}
	p.initTiers()
	return p
}

// Name is the pool's name.
func (p *Pool) Name() domain.PoolName { return p.cfg.Name }

// Config is the pool's engine configuration.
func (p *Pool) Config() PoolConfig { return p.cfg }

// Ledger exposes the pool's ledger (read-only use).
func (p *Pool) Ledger() *Ledger { return p.ledger }

// State is the pool's demand and supply as the policy sees it.
func (p *Pool) State() policy.State {
	return policy.State{
		Pending:      p.ledger.Pending() + p.orphanRunning,
		Running:      p.ledger.Running() - p.orphanRunning,
		Provisioning: p.count[stateIndex(domain.StateProvisioning)],
		Idle:         p.count[stateIndex(domain.StateIdle)],
		Busy:         p.count[stateIndex(domain.StateBusy)],
		Draining:     p.count[stateIndex(domain.StateDraining)],
		Failed:       p.count[stateIndex(domain.StateFailed)],
		History:      p.hist,
	}
}

// Count is the number of workers in a state.
func (p *Pool) Count(s domain.WorkerState) int { return p.count[stateIndex(s)] }

// LastDecision is the pool's latest decision and when it was made.
func (p *Pool) LastDecision() (policy.Decision, time.Time) { return p.decision, p.decidedAt }

// NextWake is when the pool must be reconciled again with no new input
// (an idle timeout, a provisioning deadline, a cooldown ending); zero if
// never. Drivers other than the Reconciler (the simulator) schedule by it.
func (p *Pool) NextWake() time.Time { return p.nextWake }

// Blocked says why creates are held back, or "".
func (p *Pool) Blocked() string { return p.blocked }

// ProviderUp reports the provider health last set.
func (p *Pool) ProviderUp() (bool, string) { return p.providerUp, p.downReason }

// Workers calls fn for every worker with its state (order unspecified).
func (p *Pool) Workers(fn func(id domain.WorkerID, s domain.WorkerState, jobs int)) {
	for id, w := range p.workers {
		fn(id, w.state, w.jobs)
	}
}

// WorkerState returns a worker's state, if known.
func (p *Pool) WorkerState(id domain.WorkerID) (domain.WorkerState, bool) {
	w, ok := p.workers[id]
	if !ok {
		return "", false
	}
	return w.state, true
}

// due reports whether the pool needs a reconcile: it changed, or its
// wake-up time has come.
func (p *Pool) due(now time.Time) bool {
	return p.dirty || (!p.nextWake.IsZero() && !now.Before(p.nextWake))
}

// wake brings the next wake-up forward to t (zero: no wake-up).
func (p *Pool) wake(t time.Time) {
	if t.IsZero() {
		return
	}
	if p.nextWake.IsZero() || t.Before(p.nextWake) {
		p.nextWake = t
	}
}

// streamFolded records that the retained job stream has been folded.
// Workers found created but not ready may never have been started (a crash
// between the two): create them again, which is idempotent and starts them.
func (p *Pool) streamFolded(now time.Time, fx *Effects) {
	p.folded = true
	p.dirty = true
	for w := p.provisioning.head; w != nil; w = w.next {
		if w.adopted {
			p.issue(w, OpCreate, now, fx)
		}
	}
}

func (p *Pool) setProviderUp(up bool, reason string) {
	if p.providerUp == up {
		return
	}
	p.providerUp, p.downReason = up, reason
	p.dirty = true
}
