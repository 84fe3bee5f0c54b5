package lease

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/natscluster"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// Tests on a three-node NATS JetStream cluster of real nats-server
// processes (internal/testutil/natscluster), the lease bucket replicated
// on all three.

// clusterTiming is short, for tests where no NATS server fails.
var clusterTiming = Timing{TTL: 3 * time.Second, RenewEvery: 500 * time.Millisecond, Drift: 0.005, Slack: 100 * time.Millisecond, OpTimeout: time.Second}

func startCluster(t *testing.T) *natscluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a three-node nats-server cluster")
	}
	return natscluster.Start(t, 3)
}

// Kill -9 of the process holding pools: the other replicas hold every one
// of its pools within ttl + one renew interval of the kill, over three
// trials (the killed replica comes back between them and gets its share).
func TestClusterKilledHolderIsTakenOver(t *testing.T) {
	c := startCluster(t)
	// The bound is ttl + R after the kill; what the takeover itself costs
	// (seeing the last renewal, the invalidation, the acquisitions) must fit
	// in R, so R is a second here, not the 500 ms of clusterTiming.
	tm := Timing{TTL: 4 * time.Second, RenewEvery: time.Second, Drift: 0.005, Slack: 100 * time.Millisecond, OpTimeout: time.Second}
	spec := func(id string) helperSpec {
		return helperSpec{URL: c.URL(), Replica: id, Pools: 12, TTL: tm.TTL.String(), Renew: tm.RenewEvery.String(), Op: tm.OpTimeout.String()}
	}
	procs := map[string]*holderProcess{}
	for _, id := range []string{"a", "b", "c"} {
		procs[id] = startHolder(t, spec(id))
	}
	balanced := func() bool {
		seen := map[domain.PoolName]string{}
		for id, p := range procs {
			h := p.holds()
			if len(h) != 4 {
				return false
			}
			for pool := range h {
				if other, dup := seen[pool]; dup {
					t.Fatalf("pool %s reported held by %s and %s", pool, other, id)
				}
				seen[pool] = id
			}
		}
		return len(seen) == 12
	}
	var worst time.Duration
	var takeovers []time.Duration
	for trial, victim := range []string{"a", "b", "c"} {
		eventually(t, 30*time.Second, "4 pools each", balanced)
		lost := procs[victim].holds()
		killedAt := time.Now()
		procs[victim].kill()
		var last time.Duration
		eventually(t, 3*tm.TTL, fmt.Sprintf("trial %d: the other two holding %s's pools", trial, victim), func() bool {
			last = 0
			for pool := range lost {
				var at time.Time
				for id, p := range procs {
					if id == victim {
						continue
					}
					if got, ok := p.holds()[pool]; ok {
						at = got
					}
				}
				if at.IsZero() {
					return false
				}
				last = max(last, at.Sub(killedAt))
			}
			return true
		})
		takeovers = append(takeovers, last)
		worst = max(worst, last)
		t.Logf("trial %d: kill -9 of %s; its %d pools all held elsewhere %v later (ttl %v, renew %v)", trial, procs[victim], len(lost), last.Round(time.Millisecond), tm.TTL, tm.RenewEvery)
		procs[victim] = startHolder(t, spec(victim))
	}
	if limit := tm.TTL + tm.RenewEvery; worst > limit {
		t.Errorf("worst takeover %v after the kill, over ttl + renew interval = %v (all: %v)", worst, limit, takeovers)
	}
}

// A replica cut off from all three servers (its connections go through
// TCP proxies that blackhole them) keeps running; its fence closes before
// either other replica gains any of its pools. Healed, it comes back with
// a new session and gets its share again.
func TestClusterPartitionedHolderFencesFirst(t *testing.T) {
	c := startCluster(t)
	pools := poolNames(9)
	var proxies []*tcpproxy.Proxy
	var urls []string
	for _, n := range c.Nodes {
		p := tcpproxy.Start(t, n.Addr())
		proxies = append(proxies, p)
		urls = append(urls, "nats://"+p.Addr())
	}
	_, kvA := dialBucket(t, strings.Join(urls, ","), 3)
	_, kvB := dialBucket(t, c.URL(), 3)
	_, kvC := dialBucket(t, c.URL(), 3)
	a := startReplica(t, replicaSpec{id: "a", kv: kvA, pools: pools, timing: clusterTiming})
	b := startReplica(t, replicaSpec{id: "b", kv: kvB, pools: pools, timing: clusterTiming})
	cc := startReplica(t, replicaSpec{id: "c", kv: kvC, pools: pools, timing: clusterTiming})
	eventually(t, 20*time.Second, "3 pools each", func() bool {
		checkExclusive(t, pools, a, b, cc)
		return balancedWithinOne(pools, a, b, cc)
	})
	mine := a.m.Fence().Held(time.Now())
	fences := map[domain.PoolName]<-chan time.Time{}

	cut := time.Now()
	for _, p := range proxies {
		p.Cut(tcpproxy.Blackhole)
	}
	for _, p := range mine {
		fences[p] = watchFence(a, p)
	}
	eventually(t, 4*clusterTiming.TTL, "b and c holding all 9", func() bool {
		checkExclusive(t, pools, a, b, cc)
		return b.held(pools)+cc.held(pools) == 9
	})
	var margins []time.Duration
	for _, p := range mine {
		closed := <-fences[p]
		gained := firstGain(b, p)
		if g := firstGain(cc, p); gained.IsZero() || (!g.IsZero() && g.Before(gained)) {
			gained = g
		}
		if !closed.Before(gained) {
			t.Errorf("pool %s: a's fence closed %v after the cut, another replica gained it at %v", p, closed.Sub(cut), gained.Sub(cut))
		}
		margins = append(margins, gained.Sub(closed))
		t.Logf("pool %s: a fenced at %v, taken over at %v: margin %v", p, closed.Sub(cut).Round(time.Millisecond),
			gained.Sub(cut).Round(time.Millisecond), gained.Sub(closed).Round(time.Millisecond))
	}
	if n := a.count(false, "fenced"); n != len(mine) {
		t.Errorf("a reported %d pools fenced, want %d", n, len(mine))
	}

	for _, p := range proxies {
		p.Restore()
	}
	took := eventually(t, 30*time.Second, "3 each after the partition healed", func() bool {
		checkExclusive(t, pools, a, b, cc)
		return balancedWithinOne(pools, a, b, cc)
	})
	t.Logf("healed: balanced again %v later; fence-to-takeover margins %v", took.Round(time.Millisecond), margins)
}

// Kill -9 of the NATS server that leads the lease bucket's stream, with
// the default-like ttl: its Raft group elects a new leader seconds later,
// the replicas' renewals resume, and no replica loses a pool, nor does
// any pool go unheld at any sampled instant.
func TestClusterNodeKillLosesNoLease(t *testing.T) {
	c := startCluster(t)
	tm := Timing{TTL: 15 * time.Second, RenewEvery: time.Second, Drift: 0.005, Slack: 250 * time.Millisecond, OpTimeout: 2 * time.Second}
	pools := poolNames(30)
	// The bucket first, to learn which node leads it; replica a connects
	// to that node, so the kill also makes a client reconnect.
	setup, _ := dialBucket(t, c.URL(), 3)
	js, err := jetstream.New(setup)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "KV_"+DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.NodeNamed(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("bucket leader %q unknown", info.Cluster.Leader)
	}
	leaderFirst := []string{leader.ClientURL()}
	for _, u := range c.URLs() {
		if u != leader.ClientURL() {
			leaderFirst = append(leaderFirst, u)
		}
	}
	var rs []*replica
	var conns []*nats.Conn
	for i, id := range []string{"a", "b", "c"} {
		url, opts := c.URL(), []nats.Option(nil)
		if i == 0 {
			url, opts = strings.Join(leaderFirst, ","), []nats.Option{nats.DontRandomize()}
		}
		nc, kv := dialBucket(t, url, 3, opts...)
		conns = append(conns, nc)
		rs = append(rs, startReplica(t, replicaSpec{id: id, kv: kv, pools: pools, timing: tm}))
	}
	eventually(t, 30*time.Second, "10 pools each", func() bool { return balancedWithinOne(pools, rs...) })

	before := map[string][]domain.PoolName{}
	onLeader := 0
	for i, r := range rs {
		before[r.id] = r.m.Fence().Held(time.Now())
		if conns[i].ConnectedUrl() == leader.ClientURL() {
			onLeader++
		}
	}
	if onLeader == 0 {
		t.Fatal("no replica is connected to the node about to be killed")
	}
	killedAt := time.Now()
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// Watch for 2 ttls: every pool held by someone at every sample, and by
	// the same replica as before.
	var minFence time.Duration = time.Hour
	for time.Since(killedAt) < 2*tm.TTL {
		now := time.Now()
		for _, r := range rs {
			for _, p := range before[r.id] {
				until, ok := r.m.Fence().Until(p, now)
				if !ok {
					t.Fatalf("%v after the kill of %s, replica %s lost pool %s (fence until %v)", now.Sub(killedAt), leader.Name, r.id, p, until.Sub(killedAt))
				}
				minFence = min(minFence, until.Sub(now))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range rs {
		for _, ch := range r.Changes() {
			if !ch.Held && ch.At.After(killedAt) {
				t.Errorf("replica %s lost %s after the node kill: %s", r.id, ch.Pool, ch.Reason)
			}
		}
		st := r.m.Status()
		if !st.Until.After(killedAt.Add(tm.TTL)) {
			t.Errorf("replica %s has not renewed since the kill: fence until %v", r.id, st.Until.Sub(killedAt))
		}
		// Its watch came back too: it still sees the other two renewing.
		if len(st.Members) != 3 {
			t.Errorf("replica %s sees members %v after the kill, want all 3", r.id, st.Members)
		}
	}
	t.Logf("kill -9 of bucket leader %s (%d of 3 replicas connected to it): no lease lost in %v; the closest any fence came to closing was %v ahead",
		leader.Name, onLeader, 2*tm.TTL, minFence.Round(time.Millisecond))
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, 60*time.Second)
}

// 1,000 pools over three replicas: each holds within one of a third; one
// stops and the other two hold 500 each; it starts again and gets its
// third back; no pool is held by two at any sampled instant.
func TestClusterThousandPoolsBalance(t *testing.T) {
	c := startCluster(t)
	tm := Timing{TTL: 5 * time.Second, RenewEvery: time.Second, Drift: 0.005, Slack: 100 * time.Millisecond, OpTimeout: 2 * time.Second}
	pools := poolNames(1000)
	spec := func(id string) replicaSpec {
		_, kv := dialBucket(t, c.URL(), 3)
		return replicaSpec{id: id, kv: kv, pools: pools, timing: tm}
	}
	a, b, cc := startReplica(t, spec("a")), startReplica(t, spec("b")), startReplica(t, spec("c"))
	watch := func(what string, rs ...*replica) time.Duration {
		all := []*replica{a, b, cc}
		return eventually(t, 60*time.Second, what, func() bool {
			checkExclusive(t, pools, all...)
			return balancedWithinOne(pools, rs...)
		})
	}
	took := watch("333/334 each", a, b, cc)
	t.Logf("1000 pools over 3: %s after %v", heldCounts(pools, a, b, cc), took.Round(time.Millisecond))

	cc.stop()
	took = watch("500 each after c stopped", a, b)
	t.Logf("c stopped: %s after %v", heldCounts(pools, a, b), took.Round(time.Millisecond))
	gaveUp := a.count(false, "rebalance") + b.count(false, "rebalance")

	c2 := startReplica(t, spec("c"))
	took = watch("333/334 each after c came back", a, b, c2)
	moved := a.count(false, "rebalance") + b.count(false, "rebalance") - gaveUp
	t.Logf("c back: %s after %v; %d pools moved to it", heldCounts(pools, a, b, c2), took.Round(time.Millisecond), moved)
	if want := c2.held(pools); moved > want+2 {
		t.Errorf("%d pools moved to make room for c's %d: more than balance needs", moved, want)
	}
	// Nothing moves once balanced.
	before := map[string][]domain.PoolName{"a": a.m.Fence().Held(time.Now()), "b": b.m.Fence().Held(time.Now()), "c": c2.m.Fence().Held(time.Now())}
	time.Sleep(3 * tm.RenewEvery)
	for id, r := range map[string]*replica{"a": a, "b": b, "c": c2} {
		if got := r.m.Fence().Held(time.Now()); !slices.Equal(got, before[id]) {
			t.Errorf("replica %s's pools changed while balanced: %d -> %d", id, len(before[id]), len(got))
		}
	}
}
