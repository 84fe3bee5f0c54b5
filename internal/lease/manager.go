package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Options configure a Manager.
type Options struct {
	KV   KV
	Name string // the autoscaler's name: replicas of one name share its pools
	// Replica is this replica's id, unique among the replicas of Name
	// (HA on; the host name is a good default).
	Replica string
	// Exclusive is HA off: this daemon acts on every pool, alone; a second
	// daemon of the same name refuses to start.
	Exclusive bool
	Pools     []domain.PoolName
	Timing    Timing
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Process identifies this process in its session (ThisProcess when zero).
	Process Process
	Log     zerolog.Logger
	// OnChange is told every time this replica gains or loses the right to
	// act on a pool. It is called from the manager's goroutine and must
	// not block.
	OnChange func(Change)
}

// Change is this replica gaining or losing a pool.
type Change struct {
	Pool domain.PoolName
	Held bool // gained (true) or lost (false)
	// Reason: gained "free", "takeover" (from a session that ended),
	// "handover" (given by its holder to rebalance), "grace" (left free by
	// its assignee) or "resumed" (renewed after the
	// fence had closed); lost "rebalance", "yield" (to an HA-off daemon),
	// "unserved", "shutdown", "taken" (another replica holds it now),
	// "session-lost" (this replica's session was invalidated) or "fenced"
	// (no renewal confirmed in time: the fence closed).
	Reason string
	At     time.Time
}

// Status is a snapshot for /v1/pools and metrics.
type Status struct {
	Replica   string
	Session   string
	Exclusive bool
	Ready     bool
	Until     time.Time // the fence
	Members   []string
	Pools     []PoolHolder
	Conflict  string // a live HA-off daemon of the same name, described
}

// PoolHolder is who holds one pool, as this replica sees it.
type PoolHolder struct {
	Holder
	Mine bool // this replica may act on it now
}

// Manager is one replica's part in the lease protocol (see the package
// documentation): Open claims its session, Run keeps it and the pools'
// leases, and Fence answers, at any time and without blocking, whether the
// replica may act on a pool.
type Manager struct {
	opt   Options
	t     Timing
	keys  Keys
	now   func() time.Time
	log   zerolog.Logger
	fence Fence
	ren   *renewer

	status  atomic.Pointer[Status]
	readyCh chan bool
	poolsCh chan []domain.PoolName // cap 1: the latest SetPools
	poolsMu sync.Mutex             // SetPools's drain and send, as one

	// Owned by Run's goroutine.
	view    *View
	self    Self
	acting  map[domain.PoolName]struct{}
	failed  map[string]failure
	losses  int
	closing bool
	since   time.Time // when the first session started
}

// failure is a bucket change that failed, so it is not retried at once on
// the same revision.
type failure struct {
	rev uint64
	at  time.Time
}

// Open checks the options and claims this replica's session: with HA off
// the name's exclusive session (refusing, with a *HeldError naming host,
// pid and since, when another daemon of the name is alive, or HA replicas
// of it are), with HA on the replica's session (refusing when a daemon of
// the name runs with HA off, or another process has the same replica id).
// When the key is held by a session nobody renews, Open waits up to a TTL
// to be sure, unless that session is an earlier run of this daemon.
func Open(ctx context.Context, opt Options) (*Manager, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	keys, err := NewKeys(opt.Name)
	if err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Process == (Process{}) {
		opt.Process = ThisProcess()
	}
	pools := normalPools(opt.Pools)
	m := &Manager{opt: opt, t: opt.Timing, keys: keys, now: opt.Now, log: opt.Log, readyCh: make(chan bool, 1),
		poolsCh: make(chan []domain.PoolName, 1), acting: map[domain.PoolName]struct{}{}, failed: map[string]failure{}}
	replica, key := opt.Replica, keys.Session(opt.Replica)
	if opt.Exclusive {
		replica, key = opt.Process.Host, keys.Exclusive()
	}
	m.self = Self{Replica: replica, Pools: pools, Fingerprint: fingerprint(pools)}
	rec := newSessionRecord(replica, opt.Process, m.t, m.self.Fingerprint, opt.Exclusive, m.now())
	m.ren = &renewer{kv: opt.KV, key: key, t: m.t, now: m.now, fence: &m.fence, proc: opt.Process, log: m.log,
		exclusive: opt.Exclusive, name: opt.Name, rec: rec,
		ready: make(chan bool, 1), pools: make(chan string, 1), notify: make(chan struct{}, 1), done: make(chan struct{})}

	if opt.Exclusive {
		err = m.openExclusive(ctx, rec)
	} else {
		err = m.openReplica(ctx, rec)
	}
	if err != nil {
		return nil, err
	}
	m.self.Session, m.self.Until, m.since = rec.ID, m.ren.State().until, rec.Since
	if opt.Exclusive {
		m.fence.setAll(rec.ID)
	} else {
		m.fence.setHeld(rec.ID, map[domain.PoolName]struct{}{})
	}
	m.publishStatus(m.now(), nil)
	return m, nil
}

func (o Options) check() error {
	var errs []error
	if o.KV == nil {
		errs = append(errs, errors.New("lease: no bucket"))
	}
	if o.Name == "" {
		errs = append(errs, errors.New("lease: the autoscaler name is empty"))
	}
	if !o.Exclusive && o.Replica == "" {
		errs = append(errs, errors.New("lease: ha is on and the replica id is empty"))
	}
	for _, p := range o.Pools {
		if err := domain.ValidatePoolName(string(p)); err != nil {
			errs = append(errs, fmt.Errorf("lease: %w", err))
		}
	}
	if err := o.Timing.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("lease: %w", err))
	}
	return errors.Join(errs...)
}

// openExclusive makes sure no HA replica of the name is alive, then
// claims the name's exclusive session. (Checking first, before holding
// anything, means no session of ours waits unrenewed meanwhile.)
func (m *Manager) openExclusive(ctx context.Context, rec Session) error {
	live, stale, err := probe(ctx, m.opt.KV, m.keys.prefix+"replicas.>", m.t.TTL, m.log)
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if live != nil {
		return &HeldError{Name: m.opt.Name, Holder: *live,
			What: fmt.Sprintf("autoscaler %q runs on this bus with ha on", m.opt.Name),
			Fix:  "turn ha on here too, or stop those replicas"}
	}
	m.invalidate(ctx, stale)
	rev, sent, held, err := claim(ctx, m.opt.KV, m.keys.Exclusive(), rec, m.t, m.now, m.opt.Process, m.log)
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if held != nil {
		return &HeldError{Name: m.opt.Name, Holder: *held,
			What: fmt.Sprintf("another autoscaler named %q is running on this bus", m.opt.Name),
			Fix:  "two daemons of one name would adopt and stop each other's workers: stop that one, or give this one another name (the name setting)"}
	}
	m.ren.start(rev, sent)
	return nil
}

// openReplica makes sure no HA-off daemon of the name is alive, then
// claims the replica's session.
func (m *Manager) openReplica(ctx context.Context, rec Session) error {
	live, stale, err := probe(ctx, m.opt.KV, m.keys.Exclusive(), m.t.TTL, m.log)
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if live != nil {
		return &HeldError{Name: m.opt.Name, Holder: *live,
			What: fmt.Sprintf("an autoscaler named %q runs on this bus with ha off", m.opt.Name),
			Fix:  "stop it, or turn ha on in its configuration too"}
	}
	m.invalidate(ctx, stale)
	rev, sent, held, err := claim(ctx, m.opt.KV, m.keys.Session(m.opt.Replica), rec, m.t, m.now, m.opt.Process, m.log)
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if held != nil {
		return duplicateReplica(m.opt.Name, *held)
	}
	m.ren.start(rev, sent)
	return nil
}

// invalidate deletes sessions found stale at start, so the next start
// need not wait for them again.
func (m *Manager) invalidate(ctx context.Context, stale map[string]uint64) {
	for key, rev := range stale {
		opCtx, cancel := context.WithTimeout(ctx, m.t.OpTimeout)
		err := m.opt.KV.Delete(opCtx, key, jetstream.LastRevision(rev))
		cancel()
		if err != nil && !isConflict(err) {
			m.log.Warn().Err(err).Str("key", key).Msg("lease: could not delete a stale session")
		}
	}
}

// normalPools is a pool list sorted, without repeats.
func normalPools(ps []domain.PoolName) []domain.PoolName {
	pools := slices.Clone(ps)
	slices.Sort(pools)
	return slices.Compact(pools)
}

// fingerprint names a set of pools in a few bytes.
func fingerprint(pools []domain.PoolName) string {
	h := sha256.New()
	for _, p := range pools {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Fence is what provider calls and event publishing check.
func (m *Manager) Fence() *Fence { return &m.fence }

// MayAct is Fence().MayAct.
func (m *Manager) MayAct(p domain.PoolName, now time.Time) bool { return m.fence.MayAct(p, now) }

// Status is the latest snapshot.
func (m *Manager) Status() Status { return *m.status.Load() }

// SetReady says whether this replica is caught up and may take pools; a
// replica starts not ready, so it takes none until it could act on them.
func (m *Manager) SetReady(ready bool) {
	select {
	case <-m.readyCh:
	default:
	}
	m.readyCh <- ready
}

// SetPools changes the pools this replica serves (a config reload added
// or removed some): with HA on it takes its share of the pools added, as
// at start, and releases the pools dropped (reason "unserved"); its
// session carries the new set's fingerprint from its next renewal, sent
// at once, so the replicas that serve the same new set balance them among
// themselves. With HA off it acts on every pool anyway; only the status
// changes. It never blocks; the latest call wins.
func (m *Manager) SetPools(pools []domain.PoolName) error {
	for _, p := range pools {
		if err := domain.ValidatePoolName(string(p)); err != nil {
			return fmt.Errorf("lease: %w", err)
		}
	}
	m.poolsMu.Lock()
	defer m.poolsMu.Unlock()
	select {
	case <-m.poolsCh:
	default:
	}
	m.poolsCh <- normalPools(pools)
	return nil
}

// Timing is the lease timing the manager runs on.
func (m *Manager) Timing() Timing { return m.t }

// setPools takes in a SetPools (Run's goroutine).
func (m *Manager) setPools(pools []domain.PoolName) {
	if slices.Equal(pools, m.self.Pools) {
		return
	}
	m.self.Pools, m.self.Fingerprint = pools, fingerprint(pools)
	m.ren.setPools(m.self.Fingerprint)
	m.log.Info().Int("pools", len(pools)).Str("fingerprint", m.self.Fingerprint).Msg("lease: the pools this replica serves changed")
}

// Run keeps the session and the pools' leases until ctx ends (call it as
// soon as Open returns: the session is not renewed before), then
// releases them (pools first, then the session), so the other replicas
// take over at once. It returns nil then, or an error when the replica
// cannot go on: its replica id or (HA off) its name was taken by another
// live daemon.
func (m *Manager) Run(ctx context.Context) error {
	renCtx, stopRenewer := context.WithCancel(context.WithoutCancel(ctx))
	go m.ren.run(renCtx)
	defer func() { stopRenewer(); <-m.ren.done }()
	if m.opt.Exclusive {
		return m.runExclusive(ctx)
	}
	return m.runReplica(ctx)
}

func (m *Manager) runExclusive(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ready := <-m.readyCh:
			m.self.Ready = ready
			m.ren.setReady(ready)
		case pools := <-m.poolsCh:
			m.self.Pools = pools
		case <-m.ren.notify:
			st := m.ren.State()
			m.self.Session, m.self.Until = st.session, st.until
			if st.fatal != nil {
				return st.fatal
			}
		}
		m.publishStatus(m.now(), nil)
	}
}

func (m *Manager) runReplica(ctx context.Context) error {
	watch := &watcher{kv: m.opt.KV, pattern: m.keys.All(), t: m.t, log: m.log}
	defer watch.stop()
	m.view = NewView(m.keys, m.now())
	loaded := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if watch.w == nil {
			if err := watch.start(ctx); err != nil {
				if ctx.Err() != nil {
					return m.shutdown(ctx)
				}
				m.log.Warn().Err(err).Msg("lease: cannot watch the lease bucket; retrying")
			}
			loaded = false
		}
		select {
		case <-ctx.Done():
			return m.shutdown(ctx)
		case e, ok := <-watch.updates():
			if !ok {
				watch.stop()
				continue
			}
			loaded = m.fold(e, watch, loaded)
		case ready := <-m.readyCh:
			m.self.Ready = ready
			m.ren.setReady(ready)
		case pools := <-m.poolsCh:
			m.setPools(pools)
		case <-m.ren.notify:
			if err := m.syncSession(); err != nil {
				m.release(ctx)
				return err
			}
		case <-timer.C:
		}
		if watch.stuck(m.ren.State().confirmed) {
			m.log.Warn().Msg("lease: the bucket watch delivered nothing while this replica's own renewals landed; watching anew")
			watch.stop()
			continue
		}
		next := m.now().Add(m.t.RenewEvery)
		if loaded {
			if wake := m.step(ctx); !wake.IsZero() && wake.Before(next) {
				next = wake
			}
		}
		timer.Reset(max(next.Sub(m.now()), time.Millisecond))
	}
}

// fold applies one watch entry and whatever else is already queued, and
// says whether the initial values are all in.
func (m *Manager) fold(e jetstream.KeyValueEntry, watch *watcher, loaded bool) bool {
	for range 4096 {
		if e == nil {
			loaded = true
		} else if err := m.view.Apply(entryOf(e), m.now()); err != nil {
			m.log.Warn().Err(err).Str("key", e.Key()).Msg("lease: unreadable value in the lease bucket; treating it as nobody's")
		}
		watch.saw(m.now())
		select {
		case next, ok := <-watch.updates():
			if !ok {
				return loaded
			}
			e = next
			continue
		default:
		}
		break
	}
	return loaded
}

// syncSession takes in the renewer's news.
func (m *Manager) syncSession() error {
	st := m.ren.State()
	m.self.Session, m.self.Until = st.session, st.until
	if st.losses > m.losses {
		m.losses = st.losses
		lostTo := "nobody (it was deleted)"
		if st.lostTo != nil {
			lostTo = st.lostTo.Describe()
		}
		m.log.Warn().Str("now_held_by", lostTo).Msg("lease: session lost; this replica acts on no pool until it holds them again")
	}
	return st.fatal
}

// step decides, carries the actions out and publishes the result; it
// returns when to decide again at the latest.
func (m *Manager) step(ctx context.Context) time.Time {
	gained := map[domain.PoolName]string{}
	lost := map[domain.PoolName]string{}
	var plan Plan
	var releasing map[domain.PoolName]struct{}
	for range 3 { // an invalidation frees pools that the next round claims
		now := m.now()
		plan = Decide(m.view, m.self, now, m.t)
		releasing = map[domain.PoolName]struct{}{}
		for _, a := range plan.Actions {
			if a.Kind == Release {
				releasing[a.Pool] = struct{}{}
			}
		}
		m.publishHeld(releasing) // stop acting before letting go
		actions := m.throttle(plan.Actions, now)
		if len(actions) == 0 {
			break
		}
		again := false
		for _, r := range m.execute(ctx, actions) {
			again = m.record(r, gained, lost) || again
		}
		if !again {
			break
		}
	}
	// Read the clock first, so a gain's time is never after the first
	// instant the fence lets act on it.
	now := m.now()
	m.publishHeld(releasing) // pools acquired are in; one still being let go stays out
	m.emit(now, gained, lost)
	m.publishStatus(now, &plan)
	return plan.Wake
}

// throttle drops actions that failed on the same revision less than a
// renew interval ago: the view has not caught up with what made them fail.
func (m *Manager) throttle(actions []Action, now time.Time) []Action {
	out := actions[:0:0]
	for _, a := range actions {
		if f, ok := m.failed[m.keyOf(a)]; ok && f.rev == a.Revision && now.Sub(f.at) < m.t.RenewEvery {
			continue
		}
		out = append(out, a)
	}
	return out
}

func (m *Manager) keyOf(a Action) string {
	if a.Kind == Invalidate {
		return m.keys.Session(a.Replica)
	}
	return m.keys.Pool(a.Pool)
}

// result is one carried-out action.
type result struct {
	action Action
	key    string
	value  []byte
	rev    uint64
	err    error
}

// execute runs the actions against the bucket, up to 16 at a time.
func (m *Manager) execute(ctx context.Context, actions []Action) []result {
	out := make([]result, len(actions))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, a := range actions {
		out[i] = result{action: a, key: m.keyOf(a)}
		since := m.now().UTC().Round(time.Millisecond)
		switch {
		case a.Kind == Acquire:
			out[i].value, out[i].err = encode(Holding{Replica: m.self.Replica, Session: m.self.Session, Since: since})
		case a.Kind == Release && a.To != "":
			out[i].value, out[i].err = encode(Holding{For: a.To, Since: since})
		}
		if out[i].err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(r *result) {
			defer func() { <-sem; wg.Done() }()
			opCtx, cancel := context.WithTimeout(ctx, m.t.OpTimeout)
			defer cancel()
			switch r.action.Kind {
			case Acquire:
				if r.action.Revision == 0 {
					r.rev, r.err = m.opt.KV.Create(opCtx, r.key, r.value)
				} else {
					r.rev, r.err = m.opt.KV.Update(opCtx, r.key, r.value, r.action.Revision)
				}
			case Release:
				if r.value != nil { // handed over
					r.rev, r.err = m.opt.KV.Update(opCtx, r.key, r.value, r.action.Revision)
				} else {
					r.err = m.opt.KV.Delete(opCtx, r.key, jetstream.LastRevision(r.action.Revision))
				}
			case Invalidate:
				r.err = m.opt.KV.Delete(opCtx, r.key, jetstream.LastRevision(r.action.Revision))
			}
		}(&out[i])
	}
	wg.Wait()
	return out
}

// record folds one result into the view; it says whether the result can
// open new actions at once (an invalidated session leaves pools orphaned).
func (m *Manager) record(r result, gained, lost map[domain.PoolName]string) bool {
	now := m.now()
	if r.err != nil {
		m.failed[r.key] = failure{rev: r.action.Revision, at: now}
		ev := m.log.Debug()
		if !isConflict(r.err) {
			ev = m.log.Warn()
		}
		ev.Err(r.err).Str("action", r.action.Kind.String()).Str("key", r.key).Msg("lease: bucket change not made")
		return false
	}
	delete(m.failed, r.key)
	switch r.action.Kind {
	case Acquire:
		if err := m.view.Apply(Entry{Key: r.key, Revision: r.rev, Value: r.value}, now); err != nil {
			m.log.Error().Err(err).Msg("lease: own lease unreadable")
		}
		gained[r.action.Pool] = r.action.Reason
	case Release:
		if r.value != nil {
			if err := m.view.Apply(Entry{Key: r.key, Revision: r.rev, Value: r.value}, now); err != nil {
				m.log.Error().Err(err).Msg("lease: own hand-over unreadable")
			}
		} else {
			m.view.forget(r.key, r.action.Revision, now)
		}
		lost[r.action.Pool] = r.action.Reason
	case Invalidate:
		m.view.forget(r.key, r.action.Revision, now)
		m.log.Info().Str("replica", r.action.Replica).Stringer("ttl", m.t.TTL).
			Msg("lease: invalidated a session nobody renewed for a lease ttl; its pools are free")
		return true
	}
	return false
}

// publishHeld tells the fence which pools this replica holds (in the
// view, under its current session), less those it is letting go.
func (m *Manager) publishHeld(releasing map[domain.PoolName]struct{}) {
	held := map[domain.PoolName]struct{}{}
	if !m.closing {
		for p, sp := range m.view.pools {
			if _, out := releasing[p]; !out && !sp.free && sp.hold.Session == m.self.Session && m.self.Session != "" {
				held[p] = struct{}{}
			}
		}
	}
	m.fence.setHeld(m.self.Session, held)
}

// emit tells OnChange how the set of pools this replica may act on moved.
func (m *Manager) emit(now time.Time, gained, lost map[domain.PoolName]string) {
	acting := map[domain.PoolName]struct{}{}
	for _, p := range m.fence.Held(now) {
		acting[p] = struct{}{}
	}
	var changes []Change
	for p := range acting {
		if _, was := m.acting[p]; !was {
			reason := gained[p]
			if reason == "" {
				reason = "resumed"
			}
			changes = append(changes, Change{Pool: p, Held: true, Reason: reason, At: now})
		}
	}
	for p := range m.acting {
		if _, is := acting[p]; is {
			continue
		}
		reason := lost[p]
		switch {
		case reason != "":
		case m.closing:
			reason = "shutdown"
		case m.self.Session == "":
			reason = "session-lost"
		case !now.Before(m.self.Until):
			reason = "fenced"
		default:
			reason = "taken"
		}
		changes = append(changes, Change{Pool: p, Held: false, Reason: reason, At: now})
	}
	m.acting = acting
	slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(string(a.Pool), string(b.Pool)) })
	for _, c := range changes {
		m.log.Info().Str("pool", string(c.Pool)).Bool("held", c.Held).Str("reason", c.Reason).Msg("lease: pool lease changed")
		if m.opt.OnChange != nil {
			m.opt.OnChange(c)
		}
	}
}

// shutdown releases everything and ends Run cleanly.
func (m *Manager) shutdown(ctx context.Context) error {
	m.release(ctx)
	return nil
}

// release stops acting and deletes every pool lease this replica holds;
// Run's return then stops the renewer, which deletes the session.
func (m *Manager) release(ctx context.Context) {
	m.closing = true
	m.publishHeld(nil)
	m.emit(m.now(), nil, nil)
	var actions []Action
	if m.view != nil {
		for p, sp := range m.view.pools {
			if !sp.free && sp.hold.Session == m.self.Session && m.self.Session != "" {
				actions = append(actions, Action{Kind: Release, Pool: p, Revision: sp.rev, Reason: "shutdown"})
			}
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.t.OpTimeout)
	defer cancel()
	for _, r := range m.execute(rctx, actions) {
		if r.err != nil && !isConflict(r.err) {
			m.log.Warn().Err(r.err).Str("pool", string(r.action.Pool)).Msg("lease: could not release a pool at shutdown; it is taken over after a lease ttl")
		}
	}
	m.publishStatus(m.now(), nil)
}

// publishStatus stores a snapshot.
func (m *Manager) publishStatus(now time.Time, plan *Plan) {
	st := &Status{Replica: m.self.Replica, Session: m.self.Session, Exclusive: m.opt.Exclusive, Ready: m.self.Ready, Until: m.self.Until}
	if plan != nil {
		st.Members = plan.Members
		if plan.Conflict != nil {
			st.Conflict = plan.Conflict.Describe()
		}
	}
	for _, p := range m.self.Pools {
		ph := PoolHolder{Holder: Holder{Pool: p}, Mine: m.fence.MayAct(p, now)}
		switch {
		case m.view != nil:
			ph.Holder = m.view.holder(p, now, m.t)
		case m.opt.Exclusive && ph.Mine:
			ph.Replica, ph.Since = m.self.Replica, m.since
		}
		st.Pools = append(st.Pools, ph)
	}
	m.status.Store(st)
}

// watcher is the bucket watch of one replica, restarted when it ends or
// stops delivering.
type watcher struct {
	kv      KV
	pattern string
	t       Timing
	log     zerolog.Logger
	w       jetstream.KeyWatcher
	cancel  context.CancelFunc
	last    time.Time // when it last delivered
}

func (w *watcher) start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	kw, err := w.kv.Watch(wctx, w.pattern)
	if err != nil {
		cancel()
		return fmt.Errorf("watching %s: %w", w.pattern, err)
	}
	w.w, w.cancel, w.last = kw, cancel, time.Time{}
	return nil
}

// updates is the watch's channel (nil, which blocks, while there is none).
func (w *watcher) updates() <-chan jetstream.KeyValueEntry {
	if w.w == nil {
		return nil
	}
	return w.w.Updates()
}

func (w *watcher) saw(now time.Time) { w.last = now }

// stuck reports a watch that delivered nothing since well before this
// replica's own last confirmed renewal (which it should have delivered).
func (w *watcher) stuck(confirmed time.Time) bool {
	return w.w != nil && !w.last.IsZero() && confirmed.Sub(w.last) > 2*w.t.RenewEvery+w.t.OpTimeout
}

func (w *watcher) stop() {
	if w.w == nil {
		return
	}
	if err := w.w.Stop(); err != nil { // the connection may be gone; the cancel below ends it anyway
		w.log.Debug().Err(err).Msg("lease: stopping the bucket watch")
	}
	w.cancel()
	w.w = nil
}
