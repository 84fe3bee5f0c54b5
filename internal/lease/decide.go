package lease

import (
	"slices"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Self is the replica that decides, as it knows itself (its own session
// comes from its renewals, not from the view, which may lag).
type Self struct {
	Replica string
	Session string // its session id; "" while it has none
	Until   time.Time
	Ready   bool              // caught up, so it may take pools
	Pools   []domain.PoolName // the pools it serves
	// Fingerprint of Pools: only replicas serving the same pools share them.
	Fingerprint string
}

// ActionKind is one change to the bucket.
type ActionKind int

const (
	// Acquire claims a pool: Create when Revision is 0, else Update at
	// Revision over an orphaned lease.
	Acquire ActionKind = iota
	// Release deletes this replica's lease on a pool, at Revision.
	Release
	// Invalidate deletes another replica's session that has not been
	// renewed for a TTL, at Revision: its leases become orphaned.
	Invalidate
)

func (k ActionKind) String() string {
	switch k {
	case Acquire:
		return "acquire"
	case Release:
		return "release"
	case Invalidate:
		return "invalidate"
	}
	return "unknown"
}

// Action is one bucket change a replica should make.
type Action struct {
	Kind     ActionKind
	Pool     domain.PoolName // Acquire, Release
	Replica  string          // Invalidate: whose session
	To       string          // Release: the member the pool goes to ("" deletes the lease)
	Revision uint64
	// Reason says why, for logs and the lease-change metric: "free",
	// "takeover", "handover" or "grace" for Acquire, "rebalance", "yield"
	// or "unserved" for Release.
	Reason string
}

// Plan is what Decide wants done.
type Plan struct {
	Actions []Action
	// Members are the replicas the pools are balanced over.
	Members []string
	// Wake is the next time the plan could change without a new entry
	// (a session going stale, a grace ending, the fence closing).
	Wake time.Time
	// Conflict is a live HA-off daemon of the same name, which this
	// replica yields every pool to.
	Conflict *Session
}

// Decide works out, from one replica's view, which bucket changes it
// should make now. It is pure: the caller carries out the actions (each
// guarded by the revision it names, so a stale view makes an action fail,
// never do harm) and folds the results back into the view.
//
//   - A session not renewed for a TTL is invalidated, by whichever replica
//     notices first.
//   - The pools are assigned over the members (live, ready replicas
//     serving the same pools) by Assign; a replica releases what is
//     assigned to another member and acquires what is assigned to it once
//     nobody holds it.
//   - A pool that stays free for a renew interval is taken by any member
//     under the cap ceil(pools/members), so a pool is never left behind
//     because two replicas briefly disagree about the members.
//   - A fenced replica, or one with no session, does nothing.
func Decide(v *View, self Self, now time.Time, t Timing) Plan {
	var plan Plan
	if self.Session == "" || !now.Before(self.Until) {
		return plan
	}
	plan.Wake = self.Until
	if ex, ok := v.LiveExclusive(now, t); ok {
		plan.Conflict = &ex
		for _, p := range self.Pools {
			if st, h, rev := v.poolFor(self, p, now, t); st == poolHeld && h.Session == self.Session {
				plan.Actions = append(plan.Actions, Action{Kind: Release, Pool: p, Revision: rev, Reason: "yield"})
			}
		}
		return plan
	}
	plan.invalidateStale(v, self, now, t)
	plan.releaseUnserved(v, self)

	members := v.members(self, now, t)
	plan.Members = members
	held := map[domain.PoolName]string{}   // who holds what
	placed := map[domain.PoolName]string{} // and, for Assign, what is on its way to a member
	var universe []domain.PoolName
	type claim struct {
		st  poolState
		rev uint64
		to  string // poolReserved: for whom
	}
	claims := make(map[domain.PoolName]claim, len(self.Pools))
	mine := 0
	for _, p := range self.Pools {
		st, h, rev := v.poolFor(self, p, now, t)
		claims[p] = claim{st, rev, h.For}
		switch {
		case st == poolHeld && h.Session == self.Session:
			held[p], placed[p] = self.Replica, self.Replica
			mine++
		case st == poolHeld || st == poolStale:
			if !slices.Contains(members, h.Replica) {
				continue // held by a replica outside the balance: not ours to plan
			}
			held[p], placed[p] = h.Replica, h.Replica
		case st == poolReserved && slices.Contains(members, h.For):
			placed[p] = h.For
		}
		universe = append(universe, p)
	}
	assigned := Assign(universe, members, placed)
	limit := 0
	if len(members) > 0 {
		limit = (len(universe) + len(members) - 1) / len(members)
	}
	grace := t.RenewEvery
	for _, p := range self.Pools {
		c := claims[p]
		to, isAssigned := assigned[p]
		switch {
		case held[p] == self.Replica:
			if isAssigned && to != self.Replica {
				plan.Actions = append(plan.Actions, Action{Kind: Release, Pool: p, To: to, Revision: c.rev, Reason: "rebalance"})
			}
		case !self.Ready:
		case c.st == poolReserved && c.to == self.Replica:
			plan.Actions = append(plan.Actions, Action{Kind: Acquire, Pool: p, Revision: c.rev, Reason: "handover"})
			mine++
		case c.st == poolReserved && now.Before(v.freeSince(p).Add(grace)):
			plan.wakeAt(v.freeSince(p).Add(grace)) // kept for its replica a while
		case c.st != poolFree && c.st != poolOrphaned && c.st != poolReserved:
		case to == self.Replica:
			plan.Actions = append(plan.Actions, acquire(p, c.st, c.rev, "free"))
			mine++
		default:
			ready := v.freeSince(p).Add(grace)
			if now.Before(ready) {
				plan.wakeAt(ready)
				continue
			}
			if mine < limit {
				plan.Actions = append(plan.Actions, acquire(p, c.st, c.rev, "grace"))
				mine++
			}
		}
	}
	return plan
}

// poolFor is View.pool as self sees it: a lease naming self's replica is
// held when it names self's current session (the view may not have seen
// that session yet) and orphaned when it names an earlier one (self holds
// the replica's session key, so that session is over).
func (v *View) poolFor(self Self, p domain.PoolName, now time.Time, t Timing) (poolState, Holding, uint64) {
	st, h, rev := v.pool(p, now, t)
	if st != poolFree && h.Replica == self.Replica {
		if h.Session == self.Session {
			return poolHeld, h, rev
		}
		return poolOrphaned, h, rev
	}
	return st, h, rev
}

func acquire(p domain.PoolName, st poolState, rev uint64, reason string) Action {
	switch st {
	case poolOrphaned:
		return Action{Kind: Acquire, Pool: p, Revision: rev, Reason: "takeover"}
	case poolReserved: // its replica did not take it in time
		return Action{Kind: Acquire, Pool: p, Revision: rev, Reason: reason}
	}
	return Action{Kind: Acquire, Pool: p, Reason: reason}
}

// invalidateStale plans the invalidation of every other replica's session
// not renewed for a TTL, and wakes when the next live one would go stale.
func (plan *Plan) invalidateStale(v *View, self Self, now time.Time, t Timing) {
	ids := make([]string, 0, len(v.sessions))
	for id := range v.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := v.sessions[id]
		if id == self.Replica || s.gone {
			continue
		}
		if t.Stale(s.seen, now, s.rec.TTL()) {
			plan.Actions = append(plan.Actions, Action{Kind: Invalidate, Replica: id, Revision: s.rev, Reason: "expired"})
			continue
		}
		plan.wakeAt(s.seen.Add(max(t.TTL, s.rec.TTL())))
	}
}

// releaseUnserved plans the release of pools this replica holds but no
// longer serves (its configuration dropped them).
func (plan *Plan) releaseUnserved(v *View, self Self) {
	names := make([]domain.PoolName, 0, len(v.pools))
	for p, sp := range v.pools {
		if !sp.free && sp.hold.Session == self.Session && !slices.Contains(self.Pools, p) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	for _, p := range names {
		plan.Actions = append(plan.Actions, Action{Kind: Release, Pool: p, Revision: v.pools[p].rev, Reason: "unserved"})
	}
}

// members are the live, ready replicas serving self's pools, self
// included when it is ready.
func (v *View) members(self Self, now time.Time, t Timing) []string {
	var out []string
	if self.Ready {
		out = append(out, self.Replica)
	}
	for id := range v.sessions {
		if id == self.Replica {
			continue
		}
		if s, ok := v.liveSession(id, now, t); ok && s.Ready && !s.Exclusive && s.Pools == self.Fingerprint {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (plan *Plan) wakeAt(at time.Time) {
	if plan.Wake.IsZero() || at.Before(plan.Wake) {
		plan.Wake = at
	}
}
