// Package lease decides which replica of an autoscaler acts on which pool,
// with a JetStream key-value bucket (clustered, Raft-replicated) as the
// only shared state, and fences a replica that can no longer be sure it
// holds a pool.
//
// # Keys
//
// For an autoscaler name N (escaped to one subject token):
//
//	N.replicas.<replica>  a replica's session: who it is, a renewal counter
//	N.pools.<pool>        a pool's lease: the session that holds it
//	N.exclusive           the session of the one daemon of N with HA off
//
// # Protocol
//
// A replica's session is renewed every RenewEvery with a revision-checked
// update. A pool's lease names a session and is valid exactly as long as
// that session is, so one write per replica per interval renews all of
// its leases, however many pools there are. Every replica watches the
// bucket; it judges another session alive by seeing its revision change,
// timed on its own clock, never by comparing wall clocks. A session not
// seen to change for a TTL is invalidated by whoever notices first
// (revision-checked delete: it fails if the holder renewed meanwhile), and
// the leases that name a session that is gone are orphaned: a
// revision-checked update takes each over. Every change is checked
// against the revision the replica saw, so a stale view makes a change
// fail, never do harm; the watch delivers changes in revision order, so
// the view never calls a lease orphaned while its session lives.
//
// # Fencing
//
// A replica may act on a pool until its last confirmed renewal's send time
// plus TTL minus a margin for clock rate drift (Timing), on its own clock;
// after that its Fence says no, whether or not it can reach the bucket to
// learn anything. Nobody else can take its pools before a TTL has passed
// on their clocks since they saw that renewal, which is later (the
// argument is in Timing and docs/operations.md).
//
// # Balance
//
// The pools are assigned over the live, ready replicas serving the same
// pools by Assign: floor or ceil of pools/replicas each, sticky (nothing
// moves while every replica is within one of its share), the rest by
// rendezvous hashing. Decide is the pure core; Manager carries it out.
//
// # HA off
//
// One daemon of a name holds N.exclusive and acts on every pool; a second
// daemon of the same name refuses to start with a *HeldError naming the
// first one's host, pid and since.
package lease
