package reconciler

import (
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// poolRun is what the loop keeps for one pool beside the engine's Pool:
// its provider, breaker, gauges, published status and watcher.
type poolRun struct {
	name     domain.PoolName
	provider string // the provider's name (docker, kubernetes)
	since    time.Time
	// tiers are the pool's providers, one per tier (one for a pool
	// without tiers), each with its own breaker (tierrun.go).
	tiers  []*tierRun
	gauges *poolGauges
	status atomic.Pointer[PoolStatus]
	// stopWatch ends the pool's watchers (set by startWatch).
	stopWatch context.CancelFunc
}

// publish refreshes the pool's gauges and status after a reconcile.
func (run *poolRun) publish(p *engine.Pool) {
	run.gauges.set(p)
	run.status.Store(statusOf(p, run.tiers, run.since))
}

// addRun sets up the loop's side of an engine pool.
func (r *Reconciler) addRun(p *engine.Pool, prov providers.Provider) *poolRun {
	name := p.Name()
	run := &poolRun{
		name: name, provider: p.Config().Provider, since: r.now(),
		gauges: newPoolGauges(r.m, name, p.Config().Provider),
	}
	r.setTiers(run, p, prov)
	if r.opt.Gate != nil {
		r.eng.SetActive(name, r.mayAct(name, r.now()), r.now())
	}
	metrics.SetBool(run.gauges.held, r.mayAct(name, r.now()))
	run.publish(p)
	r.pools[name] = run
	return run
}

// startWatch runs a watcher on each of the pool's tiers' providers.
func (r *Reconciler) startWatch(run *poolRun) {
	ctx, cancel := context.WithCancel(r.watchCtx)
	run.stopWatch = cancel
	for _, tr := range run.tiers {
		prov := tr.prov
		prov.acquire()
		r.watchers.Go(func() {
			defer prov.release()
			r.watchPool(ctx, run.name, tr.index, prov, tr.breaker)
		})
	}
}

// dropRun forgets a pool the engine has let go (removed, no worker left).
func (r *Reconciler) dropRun(name domain.PoolName) {
	run := r.pools[name]
	if run == nil {
		return
	}
	run.stopWatch()
	run.retire()
	delete(r.pools, name)
	r.m.ForgetPool(string(name))
	r.publishView()
	r.log.Info().Str("pool", string(name)).Msg("pool removed: its last worker is gone")
}

// publishView gives the other goroutines the pools in engine order.
func (r *Reconciler) publishView() {
	view := make([]*poolRun, 0, len(r.pools))
	for _, p := range r.eng.Pools() {
		if run := r.pools[p.Name()]; run != nil {
			view = append(view, run)
		}
	}
	r.mu.Lock()
	r.view = view
	r.mu.Unlock()
}

func (r *Reconciler) snapshot() []*poolRun {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.view
}

// Close releases every provider the Reconciler holds (each is closed when
// its last call in flight returns). Run calls it when it ends; it is safe
// to call more than once.
func (r *Reconciler) Close() {
	for _, run := range r.snapshot() {
		run.retire()
	}
}

// PoolSpec is one pool as a reload wants it.
type PoolSpec struct {
	Config engine.PoolConfig
	// Provider is the pool's new provider: required for a pool the
	// Reconciler does not have; nil keeps an existing pool's provider.
	Provider providers.Provider
}

// Changes says what Apply did, by pool.
type Changes struct {
	Added   []domain.PoolName // new pools (they reconcile once the job stream is read again for them)
	Updated []domain.PoolName // new settings, in force from now
	Rebuilt []domain.PoolName // the provider was replaced (also in Updated)
	Removed []domain.PoolName // removing: no worker wanted, idle ones stop now, busy ones after their jobs
	// Budgets are the budgets ApplyWithBudgets added, changed or removed.
	Budgets []string
}

type update struct {
	specs   []PoolSpec
	budgets *[]policy.Budget // nil: the budgets stay as they are
	done    chan Changes
}

// ErrStopped is returned by Apply when the loop is not running.
var ErrStopped = errors.New("reconciler stopped")

// Apply hands the loop the whole set of pools a reload wants: pools it
// does not have are added, the others get their new settings (and their
// new provider, if given), and pools not in specs are removed, which never
// stops a busy worker. The next reconcile follows at once. Apply returns
// once the loop has applied it; on an error nothing was applied, and the
// specs' providers are still the caller's to close.
func (r *Reconciler) Apply(ctx context.Context, specs []PoolSpec) (Changes, error) {
	return r.sendUpdate(ctx, update{specs: specs, done: make(chan Changes, 1)})
}

func (r *Reconciler) sendUpdate(ctx context.Context, u update) (Changes, error) {
	select {
	case r.updates <- u:
	case <-r.done:
		return Changes{}, ErrStopped
	case <-ctx.Done():
		return Changes{}, ctx.Err()
	}
	return <-u.done, nil
}

// applyUpdate is Apply, on the loop.
func (r *Reconciler) applyUpdate(specs []PoolSpec) Changes {
	var ch Changes
	want := make(map[domain.PoolName]bool, len(specs))
	for _, s := range specs {
		name := s.Config.Name
		want[name] = true
		run := r.pools[name]
		if run == nil {
			r.eng.AddPool(s.Config)
			r.startWatch(r.addRun(r.eng.Pool(name), s.Provider))
			ch.Added = append(ch.Added, name)
			continue
		}
		p := r.eng.Pool(name)
		changed := p.Removing() || !reflect.DeepEqual(p.Config(), s.Config)
		r.eng.UpdatePool(s.Config)
		if s.Provider != nil {
			run.stopWatch()
			run.retire()
			r.setTiers(run, p, s.Provider)
			r.startWatch(run)
			ch.Rebuilt = append(ch.Rebuilt, name)
			changed = true
		}
		if changed {
			ch.Updated = append(ch.Updated, name)
		}
		run.publish(p)
	}
	for _, p := range r.eng.Pools() {
		if name := p.Name(); !want[name] && !p.Removing() {
			r.eng.RemovePool(name)
			r.pools[name].publish(p)
			ch.Removed = append(ch.Removed, name)
		}
	}
	r.publishView()
	return ch
}

// liveProvider is a provider shared by the pool's watcher and its calls in
// flight. Once retired (replaced by a reload, its pool gone, the loop
// ended) it is closed when the last of them releases it.
type liveProvider struct {
	providers.Provider
	mu      sync.Mutex
	refs    int
	retired bool
	closed  bool
}

func newLiveProvider(p providers.Provider) *liveProvider { return &liveProvider{Provider: p} }

func (l *liveProvider) acquire() {
	l.mu.Lock()
	l.refs++
	l.mu.Unlock()
}

func (l *liveProvider) release() {
	l.mu.Lock()
	l.refs--
	closeNow := l.retired && l.refs == 0 && !l.closed
	l.closed = l.closed || closeNow
	l.mu.Unlock()
	if closeNow {
		l.close()
	}
}

func (l *liveProvider) retire() {
	l.mu.Lock()
	l.retired = true
	closeNow := l.refs == 0 && !l.closed
	l.closed = l.closed || closeNow
	l.mu.Unlock()
	if closeNow {
		l.close()
	}
}

func (l *liveProvider) close() {
	if c, ok := l.Provider.(io.Closer); ok {
		_ = c.Close()
	}
}
