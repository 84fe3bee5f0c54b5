// Package fakeprovider is an in-memory providers.Provider for tests of the
// layers above the provider (the bus path, the reconcile loop) and for
// benchmark fixtures that measure the daemon's own cost. It is a fake:
// nothing it does proves that a real provider works; the Docker and
// Kubernetes providers have their own tests against real engines.
package fakeprovider

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Call is one recorded provider call.
type Call struct {
	Op     string // create, stop, delete
	Worker domain.WorkerID
	At     time.Time
}

// Provider keeps workers in memory. Created workers are ready at once
// unless ReadyAfter is set. It is safe for concurrent use, and one value
// can outlive a daemon to play the role of an engine across restarts.
type Provider struct {
	PoolName domain.PoolName
	// ReadyAfter delays readiness (reported through Watch).
	ReadyAfter time.Duration
	// Fail, if set, is consulted before every call; a non-nil error fails it.
	Fail func(op string, id domain.WorkerID) error
	// OnCreate, if set, is called (outside the lock) for every create.
	OnCreate func(id domain.WorkerID, at time.Time)

	mu       sync.Mutex
	workers  map[domain.WorkerID]domain.Worker
	calls    []Call
	watchers []chan domain.WorkerChange
}

var _ providers.Provider = (*Provider)(nil)

// New returns an empty fake for a pool.
func New(pool domain.PoolName) *Provider {
	return &Provider{PoolName: pool, workers: map[domain.WorkerID]domain.Worker{}}
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return "fake" }

func (p *Provider) record(op string, id domain.WorkerID) error {
	if p.Fail != nil {
		if err := p.Fail(op, id); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.calls = append(p.calls, Call{Op: op, Worker: id, At: time.Now()})
	p.mu.Unlock()
	return nil
}

// Create implements providers.Provider.
func (p *Provider) Create(ctx context.Context, spec providers.WorkerSpec) (domain.Worker, error) {
	if err := p.record("create", spec.ID); err != nil {
		return domain.Worker{}, err
	}
	if p.OnCreate != nil {
		p.OnCreate(spec.ID, time.Now())
	}
	p.mu.Lock()
	w, ok := p.workers[spec.ID]
	if !ok {
		w = domain.Worker{ID: spec.ID, Pool: p.PoolName, Provider: "fake", Phase: domain.PhaseReady, CreatedAt: time.Now()}
		if p.ReadyAfter > 0 {
			w.Phase = domain.PhasePending
		}
		p.workers[spec.ID] = w
	}
	p.mu.Unlock()
	if !ok && p.ReadyAfter > 0 {
		time.AfterFunc(p.ReadyAfter, func() { p.SetPhase(spec.ID, domain.PhaseReady, "") })
	}
	return w, nil
}

// Stop implements providers.Provider.
func (p *Provider) Stop(ctx context.Context, id domain.WorkerID, grace time.Duration) error {
	if err := p.record("stop", id); err != nil {
		return err
	}
	p.remove(id)
	return nil
}

// Delete implements providers.Provider.
func (p *Provider) Delete(ctx context.Context, id domain.WorkerID) error {
	if err := p.record("delete", id); err != nil {
		return err
	}
	p.remove(id)
	return nil
}

func (p *Provider) remove(id domain.WorkerID) {
	p.mu.Lock()
	_, ok := p.workers[id]
	delete(p.workers, id)
	p.mu.Unlock()
	if ok {
		p.push(domain.WorkerChange{ID: id, Gone: true})
	}
}

// List implements providers.Provider.
func (p *Provider) List(ctx context.Context) ([]domain.Worker, error) {
	if p.Fail != nil {
		if err := p.Fail("list", ""); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]domain.Worker, 0, len(p.workers))
	for _, w := range p.workers {
		out = append(out, w)
	}
	return out, nil
}

// Watch implements providers.Provider.
func (p *Provider) Watch(ctx context.Context) (<-chan domain.WorkerChange, error) {
	ch := make(chan domain.WorkerChange, 1024)
	p.mu.Lock()
	p.watchers = append(p.watchers, ch)
	p.mu.Unlock()
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, c := range p.watchers {
			if c == ch {
				p.watchers = append(p.watchers[:i], p.watchers[i+1:]...)
				close(ch)
				return
			}
		}
	}()
	return ch, nil
}

// Ping implements providers.Provider.
func (p *Provider) Ping(ctx context.Context) error {
	if p.Fail != nil {
		return p.Fail("ping", "")
	}
	return nil
}

// SetPhase changes a worker's phase as an engine would (a crash, an exit)
// and tells the watchers.
func (p *Provider) SetPhase(id domain.WorkerID, ph domain.Phase, reason string) {
	p.mu.Lock()
	w, ok := p.workers[id]
	if ok {
		w.Phase, w.Reason = ph, reason
		p.workers[id] = w
	}
	p.mu.Unlock()
	if ok {
		p.push(domain.WorkerChange{ID: id, Worker: w})
	}
}

// Remove deletes a worker behind the daemon's back.
func (p *Provider) Remove(id domain.WorkerID) { p.remove(id) }

func (p *Provider) push(c domain.WorkerChange) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.watchers {
		select {
		case ch <- c:
		default: // a slow watcher re-lists; drop rather than block
		}
	}
}

// Workers returns the live workers' ids.
func (p *Provider) Workers() []domain.WorkerID {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]domain.WorkerID, 0, len(p.workers))
	for id := range p.workers {
		out = append(out, id)
	}
	return out
}

// Calls returns the recorded calls.
func (p *Provider) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// ErrDown is a convenient injected failure.
var ErrDown = errors.New("fake provider down")
