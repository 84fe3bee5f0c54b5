package lease

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

var (
	t0         = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	testTiming = Timing{TTL: 10 * time.Second, RenewEvery: 2 * time.Second, Drift: 0.005, Slack: 100 * time.Millisecond, OpTimeout: time.Second}
)

// world builds a View entry by entry, as the watch would deliver them.
type world struct {
	t    *testing.T
	keys Keys
	v    *View
	rev  uint64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	k, err := NewKeys("hodei")
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, keys: k, v: NewView(k, t0)}
}

func (w *world) put(key string, value []byte, at time.Time) uint64 {
	w.t.Helper()
	w.rev++
	if err := w.v.Apply(Entry{Key: key, Revision: w.rev, Value: value}, at); err != nil {
		w.t.Fatalf("apply %s: %v", key, err)
	}
	return w.rev
}

func (w *world) mustEncode(v any) []byte {
	w.t.Helper()
	b, err := encode(v)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// session writes replica's session id, seen at at.
func (w *world) session(replica, id string, ready bool, fp string, at time.Time) uint64 {
	return w.put(w.keys.Session(replica), w.mustEncode(Session{Replica: replica, ID: id, Ready: ready, Pools: fp, TTLms: testTiming.TTL.Milliseconds()}), at)
}

func (w *world) exclusive(id string, at time.Time) uint64 {
	return w.put(w.keys.Exclusive(), w.mustEncode(Session{Replica: "solo", ID: id, Exclusive: true, TTLms: testTiming.TTL.Milliseconds()}), at)
}

func (w *world) hold(p domain.PoolName, replica, session string, at time.Time) uint64 {
	return w.put(w.keys.Pool(p), w.mustEncode(Holding{Replica: replica, Session: session}), at)
}

func (w *world) del(key string, at time.Time) uint64 {
	w.rev++
	if err := w.v.Apply(Entry{Key: key, Revision: w.rev, Deleted: true}, at); err != nil {
		w.t.Fatal(err)
	}
	return w.rev
}

func me(pools ...domain.PoolName) Self {
	return Self{Replica: "me", Session: "s-me", Until: t0.Add(time.Hour), Ready: true, Pools: pools, Fingerprint: "fp"}
}

// describe renders actions compactly: "acquire p1 free@0".
func describe(actions []Action) string {
	var out []string
	for _, a := range actions {
		target := string(a.Pool)
		if a.Kind == Invalidate {
			target = a.Replica
		}
		if a.To != "" {
			target += "->" + a.To
		}
		out = append(out, fmt.Sprintf("%s %s %s@%d", a.Kind, target, a.Reason, a.Revision))
	}
	return strings.Join(out, ", ")
}

func TestDecide(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name     string
		setup    func(w *world) Self
		want     string
		wantWake time.Time // zero: not checked
	}{
		{"a free pool assigned to me is created", func(w *world) Self {
			return me("p1")
		}, "acquire p1 free@0", time.Time{}},
		{"a fenced replica does nothing", func(w *world) Self {
			s := me("p1")
			s.Until = now
			return s
		}, "", time.Time{}},
		{"a replica without a session does nothing", func(w *world) Self {
			s := me("p1")
			s.Session = ""
			return s
		}, "", time.Time{}},
		{"a replica not ready takes nothing", func(w *world) Self {
			s := me("p1")
			s.Ready = false
			return s
		}, "", time.Time{}},
		{"a live holder's pools are not touched, even above its share", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.hold("p1", "b", "s-b", now)
			w.hold("p2", "b", "s-b", now)
			return me("p1", "p2")
		}, "", time.Time{}},
		{"a holder above its share releases its lowest-ranked pools", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.hold("p1", "me", "s-me", now)
			w.hold("p2", "me", "s-me", now)
			w.hold("p3", "me", "s-me", now)
			w.hold("p4", "me", "s-me", now)
			return me("p1", "p2", "p3", "p4")
		}, "release p1->b rebalance@2, release p2->b rebalance@3", time.Time{}},
		{"a session not renewed for a ttl is invalidated at its revision", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now.Add(-testTiming.TTL))
			w.hold("p1", "b", "s-b", now)
			return me("p1")
		}, "invalidate b expired@1", time.Time{}},
		{"a session renewed less than a ttl ago: wake when it would expire", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now.Add(-testTiming.TTL+time.Second))
			w.hold("p1", "b", "s-b", now)
			return me("p1")
		}, "", now.Add(time.Second)},
		{"the longer of my ttl and the holder's counts", func(w *world) Self {
			w.put(w.keys.Session("b"), w.mustEncode(Session{Replica: "b", ID: "s-b", Ready: true, Pools: "fp", TTLms: 20_000}), now.Add(-15*time.Second))
			w.hold("p1", "b", "s-b", now)
			return me("p1")
		}, "", now.Add(5 * time.Second)},
		{"a lease whose session was deleted is taken over at its revision", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.hold("p1", "b", "s-b", now)
			w.del(w.keys.Session("b"), now)
			return me("p1")
		}, "acquire p1 takeover@2", time.Time{}},
		{"a restarted replica's old leases are orphaned", func(w *world) Self {
			w.session("b", "s-b-old", true, "fp", now)
			w.hold("p1", "b", "s-b-old", now)
			w.session("b", "s-b-new", false, "fp", now) // not ready yet: not a member
			return me("p1")
		}, "acquire p1 takeover@2", time.Time{}},
		{"a deleted lease is created again", func(w *world) Self {
			w.hold("p1", "b", "s-b", now)
			w.del(w.keys.Pool("p1"), now)
			return me("p1")
		}, "acquire p1 free@0", time.Time{}},
		{"a replica serving other pools is outside the balance", func(w *world) Self {
			w.session("b", "s-b", true, "other", now)
			w.hold("p1", "b", "s-b", now)
			return me("p1", "p2")
		}, "acquire p2 free@0", time.Time{}},
		// 3 pools over b and me: b's share is 2 (it sorts first), mine 1,
		// the cap 2.
		{"a free pool assigned to another member waits a renew interval", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.v.since = now.Add(-time.Second)
			return me(poolNames(3)...)
		}, "acquire pool-0000 free@0", now.Add(time.Second)},
		{"then a member under the cap takes it", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.v.since = now.Add(-testTiming.RenewEvery)
			return me(poolNames(3)...)
		}, "acquire pool-0000 free@0, acquire pool-0001 grace@0", time.Time{}},
		{"under the cap only", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.v.since = now.Add(-testTiming.RenewEvery)
			w.hold("pool-0000", "me", "s-me", now)
			w.hold("pool-0002", "me", "s-me", now)
			return me(poolNames(4)...)
		}, "", time.Time{}},
		{"the cap counts what the same plan acquires", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.v.since = now.Add(-testTiming.RenewEvery)
			w.hold("pool-0000", "me", "s-me", now)
			return me(poolNames(4)...)
		}, "acquire pool-0001 free@0", time.Time{}},
		{"a pool handed over to me is taken at its revision", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.put(w.keys.Pool("p1"), w.mustEncode(Holding{For: "me"}), now)
			return me("p1")
		}, "acquire p1 handover@2", time.Time{}},
		{"a pool handed over to another is left to it for a renew interval, even by a replica that would place it elsewhere", func(w *world) Self {
			w.put(w.keys.Pool("p1"), w.mustEncode(Holding{For: "x"}), now.Add(-time.Second)) // x: not a member in my view
			return me("p1")
		}, "", now.Add(time.Second)},
		{"then it is free", func(w *world) Self {
			w.put(w.keys.Pool("p1"), w.mustEncode(Holding{For: "x"}), now.Add(-testTiming.RenewEvery))
			return me("p1")
		}, "acquire p1 free@1", time.Time{}},
		{"a pool on its way to a member counts as that member's", func(w *world) Self {
			w.session("b", "s-b", true, "fp", now)
			w.put(w.keys.Pool("pool-0000"), w.mustEncode(Holding{For: "b"}), now)
			w.put(w.keys.Pool("pool-0001"), w.mustEncode(Holding{For: "b"}), now)
			return me(poolNames(4)...)
		}, "acquire pool-0002 free@0, acquire pool-0003 free@0", time.Time{}},
		{"a pool no longer served is released", func(w *world) Self {
			w.hold("gone", "me", "s-me", now)
			w.hold("p1", "me", "s-me", now)
			return me("p1")
		}, "release gone unserved@1", time.Time{}},
		{"a live HA-off daemon of the name gets every pool", func(w *world) Self {
			w.exclusive("s-x", now)
			w.hold("p1", "me", "s-me", now)
			return me("p1", "p2")
		}, "release p1 yield@2", time.Time{}},
		{"a stale HA-off session is ignored", func(w *world) Self {
			w.exclusive("s-x", now.Add(-testTiming.TTL))
			return me("p1")
		}, "acquire p1 free@0", time.Time{}},
		{"my own lease counts before the view has my session", func(w *world) Self {
			w.hold("p1", "me", "s-me", now)
			return me("p1")
		}, "", time.Time{}},
		{"a lease of my previous session is taken over", func(w *world) Self {
			w.session("me", "s-old", true, "fp", now)
			w.hold("p1", "me", "s-old", now)
			return me("p1")
		}, "acquire p1 takeover@2", time.Time{}},
		{"my own stale-looking session is never invalidated", func(w *world) Self {
			w.session("me", "s-me", true, "fp", now.Add(-time.Hour))
			w.hold("p1", "me", "s-me", now)
			return me("p1")
		}, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			self := tc.setup(w)
			plan := Decide(w.v, self, now, testTiming)
			if got := describe(plan.Actions); got != tc.want {
				t.Errorf("actions:\n got  %s\n want %s", got, tc.want)
			}
			if !tc.wantWake.IsZero() && !plan.Wake.Equal(tc.wantWake) {
				t.Errorf("wake = %v, want %v", plan.Wake.Sub(now), tc.wantWake.Sub(now))
			}
		})
	}
}

func TestDecideNamesTheConflict(t *testing.T) {
	w := newWorld(t)
	w.exclusive("s-x", t0)
	plan := Decide(w.v, me("p1"), t0, testTiming)
	if plan.Conflict == nil || plan.Conflict.ID != "s-x" {
		t.Fatalf("conflict = %+v, want the HA-off session", plan.Conflict)
	}
}

func TestDecideMembers(t *testing.T) {
	w := newWorld(t)
	w.session("b", "s-b", true, "fp", t0)
	w.session("c", "s-c", false, "fp", t0)                     // not ready
	w.session("d", "s-d", true, "other", t0)                   // other pools
	w.session("e", "s-e", true, "fp", t0.Add(-testTiming.TTL)) // stale
	w.session("f", "s-f", true, "fp", t0)                      // deleted below
	w.del(w.keys.Session("f"), t0)
	plan := Decide(w.v, me("p1"), t0, testTiming)
	if want := []string{"b", "me"}; !slices.Equal(plan.Members, want) {
		t.Errorf("members = %v, want %v", plan.Members, want)
	}
}

func TestViewIgnoresOldRevisionsAndKeepsFirstSeen(t *testing.T) {
	w := newWorld(t)
	rev := w.session("b", "s-b", true, "fp", t0)
	// The same revision again (a restarted watch) keeps its first-seen time,
	// so a session nobody renews still goes stale.
	if err := w.v.Apply(Entry{Key: w.keys.Session("b"), Revision: rev, Value: w.mustEncode(Session{Replica: "b", ID: "s-b"})}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := w.v.sessions["b"].seen; !got.Equal(t0) {
		t.Errorf("seen = %v, want the first time, %v", got, t0)
	}
	// An older revision does not undo a newer one.
	w.del(w.keys.Session("b"), t0)
	if err := w.v.Apply(Entry{Key: w.keys.Session("b"), Revision: rev, Value: w.mustEncode(Session{Replica: "b", ID: "s-b"})}, t0); err != nil {
		t.Fatal(err)
	}
	if !w.v.sessions["b"].gone {
		t.Error("an old revision brought a deleted session back")
	}
}

func TestViewUnreadableValues(t *testing.T) {
	w := newWorld(t)
	w.rev++
	if err := w.v.Apply(Entry{Key: w.keys.Pool("p1"), Revision: w.rev, Value: []byte("junk")}, t0); err == nil {
		t.Error("junk pool lease applied without an error")
	}
	if st, _, rev := w.v.pool("p1", t0, testTiming); st != poolOrphaned || rev != w.rev {
		t.Errorf("junk lease state %v at %d, want orphaned at %d (nobody's, taken by revision)", st, rev, w.rev)
	}
	w.rev++
	if err := w.v.Apply(Entry{Key: w.keys.Session("b"), Revision: w.rev, Value: []byte(`{"replica":"b"}`)}, t0); err == nil {
		t.Error("session without an id applied without an error")
	}
	if _, ok := w.v.liveSession("b", t0, testTiming); ok {
		t.Error("an unreadable session counts as live")
	}
	if err := w.v.Apply(Entry{Key: "other.key", Revision: 99, Value: []byte("x")}, t0); err != nil {
		t.Errorf("a key of another name: %v", err)
	}
}

func TestViewHolder(t *testing.T) {
	w := newWorld(t)
	w.session("b", "s-b", true, "fp", t0)
	w.hold("p1", "b", "s-b", t0)
	if h := w.v.holder("p1", t0, testTiming); h.Replica != "b" || h.Stale {
		t.Errorf("holder = %+v, want b, fresh", h)
	}
	if h := w.v.holder("p1", t0.Add(testTiming.TTL), testTiming); h.Replica != "b" || !h.Stale {
		t.Errorf("holder after a ttl = %+v, want b, stale", h)
	}
	if h := w.v.holder("p2", t0, testTiming); h.Replica != "" {
		t.Errorf("holder of a free pool = %+v", h)
	}
}
