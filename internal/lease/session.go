package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ErrHeld is matched by a *HeldError: another live daemon holds the name
// or the replica id.
var ErrHeld = errors.New("held by another live daemon")

// HeldError says who holds what this daemon wanted, and what to do.
type HeldError struct {
	Name   string  // the autoscaler name
	Holder Session // the other daemon
	What   string  // what it holds, as a phrase
	Fix    string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: %s; %s", e.What, e.Holder.Describe(), e.Fix)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// sessionState is what the renewer tells the manager.
type sessionState struct {
	session   string    // "" while there is none
	until     time.Time // the fence of the last confirmed renewal
	confirmed time.Time // when that confirmation arrived
	losses    int       // sessions lost so far
	lostTo    *Session  // who held the key when the last one was lost (nil: deleted)
	fatal     error     // the renewer gave up: Run returns this
}

// renewer keeps one session key alive: it renews it every RenewEvery with
// a revision-checked update, moves the fence forward on each confirmed
// renewal, and claims a new session when the old one was invalidated. It
// is the only goroutine that writes the session key.
type renewer struct {
	kv    KV
	key   string
	t     Timing
	now   func() time.Time
	fence *Fence
	proc  Process
	log   zerolog.Logger
	// exclusive: a lost session is fatal (another daemon with HA off took
	// the name over), not something to claim again.
	exclusive bool
	name      string

	rec  Session
	rev  uint64
	sent map[uint64]time.Time // renewal number -> when it was sent

	ready  chan bool
	pools  chan string   // cap 1: a new fingerprint of the pools served
	notify chan struct{} // cap 1: the state changed
	mu     sync.Mutex
	state  sessionState
	done   chan struct{}
}

// newSessionRecord is a fresh session of replica for proc.
func newSessionRecord(replica string, proc Process, t Timing, pools string, exclusive bool, now time.Time) Session {
	return Session{Replica: replica, ID: uuid.NewString(), Host: proc.Host, PID: proc.PID, PIDNS: proc.PIDNS,
		Since: now.UTC().Round(time.Millisecond), TTLms: t.TTL.Milliseconds(), Pools: pools, Exclusive: exclusive}
}

func (r *renewer) State() sessionState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *renewer) update(f func(*sessionState)) {
	r.mu.Lock()
	f(&r.state)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// setReady asks the renewer to write readiness with its next renewal,
// which it sends at once.
func (r *renewer) setReady(ready bool) {
	select {
	case <-r.ready:
	default:
	}
	r.ready <- ready
}

// setPools asks the renewer to write a new fingerprint of the pools the
// replica serves with its next renewal, which it sends at once.
func (r *renewer) setPools(fp string) {
	select {
	case <-r.pools:
	default:
	}
	r.pools <- fp
}

// start records the session that claim established at rev, sent at sent.
func (r *renewer) start(rev uint64, sent time.Time) {
	r.rev = rev
	r.sent = map[uint64]time.Time{r.rec.Renewal: sent}
	r.confirm(rev, r.rec.Renewal)
}

// run renews until ctx ends, then deletes the session key (a clean
// shutdown: the other replicas need not wait for it to go stale).
func (r *renewer) run(ctx context.Context) {
	defer close(r.done)
	timer := time.NewTimer(r.t.RenewEvery)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			r.end()
			return
		case ready := <-r.ready:
			r.rec.Ready = ready
		case fp := <-r.pools:
			r.rec.Pools = fp
		case <-timer.C:
		}
		next, stop := r.renew(ctx)
		if stop {
			return
		}
		timer.Reset(next)
	}
}

// renew makes one attempt and says when to make the next.
func (r *renewer) renew(ctx context.Context) (next time.Duration, stop bool) {
	retry := max(r.t.RenewEvery/4, 50*time.Millisecond)
	if r.rev == 0 {
		return r.restart(ctx)
	}
	r.rec.Renewal++
	sent := r.now()
	r.sent[r.rec.Renewal] = sent
	for n, at := range r.sent { // an answer this old could not move the fence
		if sent.Sub(at) > r.t.TTL {
			delete(r.sent, n)
		}
	}
	val, err := encode(r.rec)
	if err != nil {
		r.log.Error().Err(err).Msg("lease: cannot encode the session; renewing again soon")
		return retry, false
	}
	opCtx, cancel := context.WithTimeout(ctx, r.t.OpTimeout)
	rev, err := r.kv.Update(opCtx, r.key, val, r.rev)
	cancel()
	switch {
	case err == nil:
		r.confirm(rev, r.rec.Renewal)
		return r.t.RenewEvery, false
	case isConflict(err):
		return r.conflict(ctx)
	case ctx.Err() != nil:
		return 0, false
	}
	r.log.Warn().Err(err).Stringer("fence_in", r.fenceLeft()).Msg("lease: renewal failed; retrying")
	return retry, false
}

func (r *renewer) fenceLeft() time.Duration {
	return r.State().until.Sub(r.now()).Round(time.Millisecond)
}

// confirm moves the fence to the deadline of renewal number n.
func (r *renewer) confirm(rev uint64, n uint64) {
	r.rev = rev
	sent, ok := r.sent[n]
	if !ok {
		return
	}
	for k := range r.sent {
		if k < n {
			delete(r.sent, k)
		}
	}
	until := r.t.MayActUntil(sent)
	r.fence.setTerm(r.rec.ID, until)
	now := r.now()
	r.update(func(s *sessionState) { s.session, s.until, s.confirmed = r.rec.ID, until, now })
}

// conflict handles a renewal refused for its revision: either an earlier
// renewal whose answer was lost did land (the key still holds this
// session), or the session was invalidated or taken over.
func (r *renewer) conflict(ctx context.Context) (time.Duration, bool) {
	opCtx, cancel := context.WithTimeout(ctx, r.t.OpTimeout)
	e, err := r.kv.Get(opCtx, r.key)
	cancel()
	var holder *Session
	switch {
	case err == nil:
		if s, derr := decodeSession(e.Value()); derr == nil {
			if s.ID == r.rec.ID {
				r.confirm(e.Revision(), s.Renewal)
				return r.t.RenewEvery, false
			}
			holder = &s
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return max(r.t.RenewEvery/4, 50*time.Millisecond), false // cannot tell yet
	}
	r.fence.close()
	r.rev = 0
	r.update(func(s *sessionState) { s.session, s.until, s.losses, s.lostTo = "", time.Time{}, s.losses+1, holder })
	if r.exclusive {
		other := Session{}
		if holder != nil {
			other = *holder
		}
		r.update(func(s *sessionState) {
			s.fatal = &HeldError{Name: r.name, Holder: other,
				What: fmt.Sprintf("another autoscaler named %q took this one's place on the bus (ha off) after not hearing from it for a lease ttl", r.name),
				Fix:  "this daemon stopped acting; stop one of the two, or turn ha on in both"}
		})
		return 0, true
	}
	r.log.Warn().Str("key", r.key).Msg("lease: this replica's session was invalidated (not renewed for a lease ttl); its pools are gone, claiming a new session")
	return 0, false
}

// restart claims a new session after one was lost.
func (r *renewer) restart(ctx context.Context) (time.Duration, bool) {
	rec := newSessionRecord(r.rec.Replica, r.proc, r.t, r.rec.Pools, r.exclusive, r.now())
	rec.Ready = r.rec.Ready
	rev, sent, held, err := claim(ctx, r.kv, r.key, rec, r.t, r.now, r.proc, r.log)
	switch {
	case held != nil:
		r.update(func(s *sessionState) { s.fatal = duplicateReplica(r.name, *held) })
		return 0, true
	case err != nil:
		if ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("lease: claiming a new session failed; retrying")
		}
		return max(r.t.RenewEvery/4, 50*time.Millisecond), false
	}
	r.rec = rec
	r.start(rev, sent)
	r.log.Info().Str("session", rec.ID).Msg("lease: new session")
	return r.t.RenewEvery, false
}

// end deletes the session key, if it is still ours.
func (r *renewer) end() {
	r.fence.close()
	if r.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.t.OpTimeout)
	defer cancel()
	if err := r.kv.Delete(ctx, r.key, jetstream.LastRevision(r.rev)); err != nil && !isConflict(err) {
		r.log.Warn().Err(err).Msg("lease: could not delete the session at shutdown; the other replicas take its pools after a lease ttl")
	}
	r.rev = 0
}

func duplicateReplica(name string, holder Session) *HeldError {
	return &HeldError{Name: name, Holder: holder,
		What: fmt.Sprintf("replica id %q of autoscaler %q is already running", holder.Replica, name),
		Fix:  "give every replica its own ha.replica_id (the default is the host name), or stop the other one"}
}

// claim makes key this process's session: it creates the key, or takes it
// over when the session in it has certainly ended (an earlier run of this
// daemon, see Process.succeeds) or was not renewed for its TTL while this
// process watched. When the session in it is renewed meanwhile, claim
// returns that holder and no error. It returns the revision of the write
// that made the key ours and when that write was sent.
func claim(ctx context.Context, kv KV, key string, rec Session, t Timing, now func() time.Time, proc Process, log zerolog.Logger) (rev uint64, sent time.Time, held *Session, err error) {
	val, err := encode(rec)
	if err != nil {
		return 0, time.Time{}, nil, err
	}
	write := func(prev uint64) (uint64, time.Time, error) {
		opCtx, cancel := context.WithTimeout(ctx, t.OpTimeout)
		defer cancel()
		sent := now()
		if prev == 0 {
			rev, err := kv.Create(opCtx, key, val)
			return rev, sent, err
		}
		rev, err := kv.Update(opCtx, key, val, prev)
		return rev, sent, err
	}
	for range 20 {
		rev, sent, err := write(0)
		if err == nil {
			return rev, sent, nil, nil
		}
		if !isConflict(err) {
			return 0, time.Time{}, nil, fmt.Errorf("creating %s: %w", key, err)
		}
		opCtx, cancel := context.WithTimeout(ctx, t.OpTimeout)
		e, err := kv.Get(opCtx, key)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return 0, time.Time{}, nil, fmt.Errorf("reading %s: %w", key, err)
		}
		other, derr := decodeSession(e.Value())
		prev := e.Revision()
		if derr == nil && !proc.succeeds(other, pidRunning) {
			wait := max(t.TTL, other.TTL())
			log.Info().Str("key", key).Str("holder", other.Describe()).Stringer("wait", wait).
				Msg("lease: the session is taken; watching whether its holder renews it")
			live, stale, err := probe(ctx, kv, key, wait, log)
			if err != nil {
				return 0, time.Time{}, nil, err
			}
			if live != nil {
				return 0, time.Time{}, live, nil
			}
			if prev = stale[key]; prev == 0 {
				continue // deleted meanwhile
			}
		}
		rev, sent, err = write(prev)
		if err == nil {
			return rev, sent, nil, nil
		}
		if !isConflict(err) {
			return 0, time.Time{}, nil, fmt.Errorf("taking over %s: %w", key, err)
		}
	}
	return 0, time.Time{}, nil, fmt.Errorf("claiming %s: it kept changing under 20 attempts", key)
}

// probe watches the sessions matching pattern for up to wait. It returns
// the first one seen renewed (live), or, when none was, the revisions of
// those still there (stale, not renewed for wait while watched).
func probe(ctx context.Context, kv KV, pattern string, wait time.Duration, log zerolog.Logger) (live *Session, stale map[string]uint64, err error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := kv.Watch(wctx, pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("watching %s: %w", pattern, err)
	}
	defer func() {
		if err := w.Stop(); err != nil { // the answer stands; the cancel above ends the watch anyway
			log.Debug().Err(err).Str("pattern", pattern).Msg("lease: stopping a probe's watch")
		}
	}()
	seen := map[string]uint64{}
	loaded := false
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if !loaded {
				return nil, nil, fmt.Errorf("watching %s: no initial values within %v", pattern, wait)
			}
			return nil, seen, nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, fmt.Errorf("watching %s: the watch ended", pattern)
			}
			if e == nil {
				loaded = true
				if len(seen) == 0 {
					return nil, seen, nil
				}
				continue
			}
			en := entryOf(e)
			if en.Deleted {
				delete(seen, en.Key)
				if loaded && len(seen) == 0 {
					return nil, seen, nil
				}
				continue
			}
			if !loaded {
				seen[en.Key] = en.Revision
				continue
			}
			if en.Revision <= seen[en.Key] {
				continue
			}
			if s, derr := decodeSession(en.Value); derr == nil {
				return &s, nil, nil // renewed, or a new session: someone is alive
			}
		}
	}
}
