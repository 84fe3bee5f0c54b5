package lease

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Entry is one state of a key: from the bucket's watch, in revision
// order, or one of this replica's own successful writes.
type Entry struct {
	Key      string
	Revision uint64
	Value    []byte
	Deleted  bool // a delete or purge marker
}

// seenSession is a session key as this replica last saw it.
type seenSession struct {
	rec  Session
	rev  uint64
	seen time.Time // when this revision was first seen, on this replica's clock
	gone bool      // deleted, or unreadable
}

// seenPool is a pool's lease key as this replica last saw it.
type seenPool struct {
	hold Holding
	rev  uint64
	seen time.Time
	free bool // deleted, or unreadable (then nobody acts on it)
	// deleted marks a delete marker: Create (not Update at rev) claims it.
	deleted bool
}

// View is what one replica knows of the bucket. It is a fold of the
// bucket's watch, which delivers every key's changes in revision order,
// so when a pool's lease names a session that the view says was deleted
// or replaced, it really was: that judgement ("orphaned") allows taking
// the pool at once. The view is owned by one goroutine.
type View struct {
	keys      Keys
	sessions  map[string]*seenSession
	exclusive *seenSession
	pools     map[domain.PoolName]*seenPool
	since     time.Time // a pool never seen has been free since then
}

// NewView starts an empty view at now.
func NewView(keys Keys, now time.Time) *View {
	return &View{keys: keys, sessions: map[string]*seenSession{}, pools: map[domain.PoolName]*seenPool{}, since: now}
}

// Apply folds one entry in. Entries older than what the view holds for
// their key are ignored; an entry seen again (a restarted watch) keeps its
// first-seen time. It returns an error for a value it cannot read, which
// it records as gone (a session) or free (a pool).
func (v *View) Apply(e Entry, now time.Time) error {
	kind, id := v.keys.parse(e.Key)
	switch kind {
	case keySession:
		s, err := v.applySession(v.sessions[id], e, now)
		v.sessions[id] = s
		return err
	case keyExclusive:
		s, err := v.applySession(v.exclusive, e, now)
		v.exclusive = s
		return err
	case keyPool:
		return v.applyPool(domain.PoolName(id), e, now)
	}
	return nil
}

func (v *View) applySession(old *seenSession, e Entry, now time.Time) (*seenSession, error) {
	if old != nil && e.Revision <= old.rev {
		return old, nil
	}
	s := &seenSession{rev: e.Revision, seen: now, gone: e.Deleted}
	if e.Deleted {
		return s, nil
	}
	rec, err := decodeSession(e.Value)
	if err != nil {
		s.gone = true
		return s, err
	}
	s.rec = rec
	return s, nil
}

func (v *View) applyPool(p domain.PoolName, e Entry, now time.Time) error {
	if old := v.pools[p]; old != nil && e.Revision <= old.rev {
		return nil
	}
	sp := &seenPool{rev: e.Revision, seen: now, free: e.Deleted, deleted: e.Deleted}
	v.pools[p] = sp
	if e.Deleted {
		return nil
	}
	h, err := decodeHolding(e.Value)
	if err != nil {
		sp.free = true
		return err
	}
	sp.hold = h
	return nil
}

// forget records this replica's own successful delete of key at rev (the
// client does not say which revision the delete marker got; the watch
// brings it later).
func (v *View) forget(key string, rev uint64, now time.Time) {
	switch kind, id := v.keys.parse(key); kind {
	case keySession:
		v.sessions[id] = &seenSession{rev: rev, seen: now, gone: true}
	case keyExclusive:
		v.exclusive = &seenSession{rev: rev, seen: now, gone: true}
	case keyPool:
		v.pools[domain.PoolName(id)] = &seenPool{rev: rev, seen: now, free: true, deleted: true}
	}
}

// liveSession is a replica's session if it is alive at now: not deleted,
// and its revision changed less than a TTL ago.
func (v *View) liveSession(replica string, now time.Time, t Timing) (Session, bool) {
	s := v.sessions[replica]
	if s == nil || s.gone || t.Stale(s.seen, now, s.rec.TTL()) {
		return Session{}, false
	}
	return s.rec, true
}

// LiveExclusive is the HA-off daemon's session, if one is alive.
func (v *View) LiveExclusive(now time.Time, t Timing) (Session, bool) {
	s := v.exclusive
	if s == nil || s.gone || t.Stale(s.seen, now, s.rec.TTL()) {
		return Session{}, false
	}
	return s.rec, true
}

// poolState is what a pool's lease looks like to one replica.
type poolState int

const (
	poolFree     poolState = iota // no lease: Create claims it
	poolOrphaned                  // the lease names a session that is gone: Update at its revision claims it
	poolHeld                      // held by a live session
	poolStale                     // held by a session not renewed for a TTL: invalidate that session first
	poolReserved                  // given up for the replica Holding.For: Update at its revision claims it
)

// pool says who holds p and how it can be claimed.
func (v *View) pool(p domain.PoolName, now time.Time, t Timing) (st poolState, h Holding, rev uint64) {
	sp := v.pools[p]
	switch {
	case sp == nil || sp.deleted:
		return poolFree, Holding{}, 0
	case sp.free: // unreadable: nobody holds it
		return poolOrphaned, Holding{}, sp.rev
	case sp.hold.Session == "":
		return poolReserved, sp.hold, sp.rev
	}
	s := v.sessions[sp.hold.Replica]
	switch {
	case s == nil || s.gone || s.rec.ID != sp.hold.Session:
		return poolOrphaned, sp.hold, sp.rev
	case t.Stale(s.seen, now, s.rec.TTL()):
		return poolStale, sp.hold, sp.rev
	}
	return poolHeld, sp.hold, sp.rev
}

// freeSince is when p was first seen without a live holder (free or
// orphaned), for the grace after which any replica may take it.
func (v *View) freeSince(p domain.PoolName) time.Time {
	sp := v.pools[p]
	if sp == nil {
		return v.since
	}
	if s := v.sessions[sp.hold.Replica]; !sp.free && s != nil && (s.gone || s.rec.ID != sp.hold.Session) && s.seen.After(sp.seen) {
		return s.seen // orphaned when its session went
	}
	return sp.seen
}

// Holder is who holds a pool as this replica sees it, for status pages.
type Holder struct {
	Pool    domain.PoolName
	Replica string // "" when nobody holds it
	Since   time.Time
	Stale   bool // the holder has not renewed for a TTL
}

// holder is who holds p.
func (v *View) holder(p domain.PoolName, now time.Time, t Timing) Holder {
	switch st, h, _ := v.pool(p, now, t); st {
	case poolHeld, poolStale:
		return Holder{Pool: p, Replica: h.Replica, Since: h.Since, Stale: st == poolStale}
	}
	return Holder{Pool: p}
}
