package lease

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// Tests against one real NATS server (in-process, JetStream on a
// temporary store): the protocol's bucket calls, the balance and the
// guards. The cluster tests are in cluster_test.go.

// startServer starts an in-process NATS server with JetStream on a free
// loopback port (bustest's would import the daemon's config, which
// imports this package).
func startServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("starting nats: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

func singleServer(t *testing.T) jetstream.KeyValue {
	t.Helper()
	srv := startServer(t)
	_, kv := dialBucket(t, srv.ClientURL(), 1)
	return kv
}

// Two replicas split ten pools five and five, never both holding one; when
// one shuts down the other holds all ten within a renew interval or so
// (the leaver deletes its leases), and when it comes back it gets five.
func TestReplicasShareAndHandOver(t *testing.T) {
	kv := singleServer(t)
	pools := poolNames(10)
	a := startReplica(t, replicaSpec{id: "a", kv: kv, pools: pools, timing: fastTiming})
	b := startReplica(t, replicaSpec{id: "b", kv: kv, pools: pools, timing: fastTiming})
	took := eventually(t, 10*time.Second, "5 and 5", func() bool {
		checkExclusive(t, pools, a, b)
		return balancedWithinOne(pools, a, b)
	})
	t.Logf("balanced %s after %v", heldCounts(pools, a, b), took.Round(time.Millisecond))

	a.stop()
	if n := a.held(pools); n != 0 {
		t.Errorf("a still holds %d pools after its shutdown", n)
	}
	took = eventually(t, 5*time.Second, "b holding all 10", func() bool { return b.held(pools) == 10 })
	t.Logf("b held all 10 %v after a's shutdown", took.Round(time.Millisecond))
	if took > fastTiming.TTL {
		t.Errorf("hand-over after a clean shutdown took %v, more than a ttl (%v): the leases were not released", took, fastTiming.TTL)
	}
	if shutdown := a.count(false, "shutdown"); shutdown != 5 {
		t.Errorf("a reported %d pools lost at shutdown, want 5: %+v", shutdown, a.Changes())
	}

	gaveBefore := b.count(false, "rebalance")
	a2 := startReplica(t, replicaSpec{id: "a", kv: kv, pools: pools, timing: fastTiming})
	eventually(t, 10*time.Second, "5 and 5 again", func() bool {
		checkExclusive(t, pools, a2, b)
		return balancedWithinOne(pools, a2, b)
	})
	if rebalanced := b.count(false, "rebalance") - gaveBefore; rebalanced != 5 {
		t.Errorf("b gave up %d pools to the returning replica, want 5", rebalanced)
	}
	if got := a2.count(true, "handover"); got != 5 {
		t.Errorf("the returning replica got %d pools handed over, want 5", got)
	}
	// b's status names the holder of every pool once its watch has
	// delivered a's acquisitions.
	statusTrue := func() string {
		st := b.m.Status()
		if len(st.Members) != 2 || len(st.Pools) != 10 {
			return fmt.Sprintf("members %v, %d pools", st.Members, len(st.Pools))
		}
		for _, ph := range st.Pools {
			if ph.Replica == "" || ph.Mine != (ph.Replica == "b") {
				return fmt.Sprintf("%s: holder %q mine %v", ph.Pool, ph.Replica, ph.Mine)
			}
		}
		return ""
	}
	eventually(t, 5*time.Second, "b's status naming every holder", func() bool { return statusTrue() == "" })
}

// Pools a config reload adds get leases at once, shared like the pools of
// the start; pools it drops are released ("unserved") and nobody holds
// them. Both replicas reload, one after the other, as a rollout of a new
// config does.
func TestSetPoolsLeasesReloadedPools(t *testing.T) {
	kv := singleServer(t)
	all := poolNames(6)
	before := all[:4]
	a := startReplica(t, replicaSpec{id: "a", kv: kv, pools: before, timing: fastTiming})
	b := startReplica(t, replicaSpec{id: "b", kv: kv, pools: before, timing: fastTiming})
	eventually(t, 10*time.Second, "the first 4 pools 2 and 2", func() bool {
		checkExclusive(t, all, a, b)
		return balancedWithinOne(before, a, b)
	})

	for _, r := range []*replica{a, b} {
		if err := r.m.SetPools(all); err != nil {
			t.Fatal(err)
		}
	}
	took := eventually(t, 10*time.Second, "the 6 pools 3 and 3 after the reload", func() bool {
		checkExclusive(t, all, a, b)
		return balancedWithinOne(all, a, b)
	})
	t.Logf("added pools held, balanced %s, %v after the reload", heldCounts(all, a, b), took.Round(time.Millisecond))
	for _, r := range []*replica{a, b} {
		if st := r.m.Status(); len(st.Pools) != len(all) {
			t.Errorf("%s's status lists %d pools after the reload, want %d", r.id, len(st.Pools), len(all))
		}
	}

	gone := all[4:]
	wasUnserved := a.count(false, "unserved") + b.count(false, "unserved")
	for _, r := range []*replica{a, b} {
		if err := r.m.SetPools(before); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the dropped pools held by nobody, the rest 2 and 2", func() bool {
		checkExclusive(t, all, a, b)
		return a.held(gone)+b.held(gone) == 0 && balancedWithinOne(before, a, b)
	})
	if n := a.count(false, "unserved") + b.count(false, "unserved") - wasUnserved; n != len(gone) {
		t.Errorf("%d pools released as unserved, want %d: a %+v, b %+v", n, len(gone), a.Changes(), b.Changes())
	}
	if err := a.m.SetPools([]domain.PoolName{"bad pool"}); err == nil {
		t.Error("SetPools took an invalid pool name")
	}
}

// A replica cut off from the server by a real partition (its connection
// goes through a TCP proxy that blackholes it) keeps running but stops
// acting on its pools when its fence closes, before the other replica
// takes them over, a ttl after the last renewal it managed.
func TestPartitionedHolderFencesBeforeTakeover(t *testing.T) {
	srv := startServer(t)
	proxy := tcpproxy.Start(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	_, kvA := dialBucket(t, "nats://"+proxy.Addr(), 1)
	_, kvB := dialBucket(t, srv.ClientURL(), 1)
	pools := poolNames(4)
	a := startReplica(t, replicaSpec{id: "a", kv: kvA, pools: pools, timing: fastTiming})
	eventually(t, 5*time.Second, "a holding all", func() bool { return a.held(pools) == 4 })
	b := startReplica(t, replicaSpec{id: "b", kv: kvB, pools: pools, timing: fastTiming})
	eventually(t, 5*time.Second, "2 and 2", func() bool { return balancedWithinOne(pools, a, b) })
	mine := a.m.Fence().Held(time.Now())

	cut := time.Now()
	proxy.Cut(tcpproxy.Blackhole)
	fenced := watchFence(a, mine[0])
	took := eventually(t, 3*fastTiming.TTL, "b holding all 4", func() bool {
		checkExclusive(t, pools, a, b)
		return b.held(pools) == 4
	})
	gained := firstGain(b, mine[0])
	closed := <-fenced
	t.Logf("cut at 0: a's fence closed at %v, b gained %s at %v (margin %v; ttl %v)", closed.Sub(cut).Round(time.Millisecond),
		mine[0], gained.Sub(cut).Round(time.Millisecond), gained.Sub(closed).Round(time.Millisecond), fastTiming.TTL)
	if !closed.Before(gained) {
		t.Fatalf("a's fence closed at %v, after b gained the pool at %v", closed.Sub(cut), gained.Sub(cut))
	}
	if took > fastTiming.TTL+fastTiming.RenewEvery+time.Second {
		t.Errorf("taken over %v after the cut, more than ttl + renew interval + 1s", took)
	}
	if takeovers := b.count(true, "takeover"); takeovers != 2 {
		t.Errorf("b reports %d takeovers, want 2", takeovers)
	}
	if fencedChanges := a.count(false, "fenced"); fencedChanges != 2 {
		t.Errorf("a reports %d pools fenced, want 2: %+v", fencedChanges, a.Changes())
	}

	// Healed, a finds its session invalidated, starts a new one and gets
	// its share back.
	proxy.Restore()
	eventually(t, 15*time.Second, "2 and 2 after the partition healed", func() bool {
		checkExclusive(t, pools, a, b)
		return balancedWithinOne(pools, a, b)
	})
}

// watchFence reports when a's fence on p closes: the deadline it had when
// it closed.
func watchFence(r *replica, p domain.PoolName) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		var last time.Time
		for {
			until, ok := r.m.Fence().Until(p, time.Now())
			if !ok {
				if last.IsZero() || until.After(last) {
					last = until
				}
				out <- last
				return
			}
			last = until
			time.Sleep(time.Millisecond)
		}
	}()
	return out
}

// firstGain is when r first gained p.
func firstGain(r *replica, p domain.PoolName) time.Time {
	for _, c := range r.Changes() {
		if c.Pool == p && c.Held {
			return c.At
		}
	}
	return time.Time{}
}

// deadKV is a bucket nobody answers for: every call times out.
type deadKV struct{}

func (deadKV) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
func (deadKV) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
func (deadKV) Delete(ctx context.Context, _ string, _ ...jetstream.KVDeleteOpt) error {
	<-ctx.Done()
	return ctx.Err()
}
func (deadKV) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (deadKV) Watch(context.Context, string, ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return nil, context.DeadlineExceeded
}

// The same-name guard: with HA off, a second daemon of the same name
// refuses to start, naming the first one's host, pid and since, as soon as
// it has seen the first renew; it starts at once after a clean shutdown.
func TestSameNameGuard(t *testing.T) {
	kv := singleServer(t)
	pools := poolNames(3)
	first := startReplica(t, replicaSpec{id: "first", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "host-one", PID: 4242}})
	if !first.m.MayAct(pools[0], time.Now()) || first.m.Fence().Held(time.Now()) != nil {
		t.Fatal("an HA-off daemon may act on every pool")
	}

	start := time.Now()
	_, err := openReplica(t, replicaSpec{id: "second", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "host-two", PID: 99}})
	took := time.Since(start)
	if !isHeld(err) {
		t.Fatalf("second daemon of the name: err = %v, want ErrHeld", err)
	}
	since := first.m.Status().Pools[0].Since.UTC().Format(time.RFC3339)
	for _, want := range []string{`another autoscaler named "hodei" is running`, `host "host-one"`, "pid 4242", "since " + since} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
	if took > 3*fastTiming.RenewEvery+time.Second {
		t.Errorf("refusal took %v: it should come with the first renewal seen, not after a ttl", took)
	}

	// HA replicas of the name refuse too, and the HA-off one refuses them.
	if _, err := openReplica(t, replicaSpec{id: "r1", kv: kv, pools: pools, timing: fastTiming}); !isHeld(err) || !strings.Contains(err.Error(), "with ha off") {
		t.Errorf("HA replica beside an HA-off daemon: err = %v", err)
	}

	first.stop()
	second, err := openReplica(t, replicaSpec{id: "second", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "host-two", PID: 99}})
	if err != nil {
		t.Fatalf("after a clean shutdown of the first: %v", err)
	}
	second.run()
	t.Cleanup(second.stop)
	if !second.m.MayAct(pools[0], time.Now()) {
		t.Error("the second daemon may not act after taking the name")
	}
}

func TestReplicaGuards(t *testing.T) {
	kv := singleServer(t)
	pools := poolNames(3)
	startReplica(t, replicaSpec{id: "r1", kv: kv, pools: pools, timing: fastTiming, process: Process{Host: "node-a", PID: 7}})

	_, err := openReplica(t, replicaSpec{id: "r1", kv: kv, pools: pools, timing: fastTiming, process: Process{Host: "node-b", PID: 8}})
	if !isHeld(err) || !strings.Contains(err.Error(), `replica id "r1" of autoscaler "hodei" is already running`) || !strings.Contains(err.Error(), `host "node-a", pid 7`) {
		t.Errorf("duplicate replica id: err = %v", err)
	}
	_, err = openReplica(t, replicaSpec{id: "solo", kv: kv, pools: pools, timing: fastTiming, exclusive: true, process: Process{Host: "node-c", PID: 9}})
	if !isHeld(err) || !strings.Contains(err.Error(), "runs on this bus with ha on") {
		t.Errorf("HA-off daemon beside HA replicas: err = %v", err)
	}
	// It let go of the name on refusing, so a replica can still start.
	startReplica(t, replicaSpec{id: "r2", kv: kv, pools: pools, timing: fastTiming, process: Process{Host: "node-d", PID: 10}})
}

// A session nobody renews (a daemon killed without a goodbye) holds the
// name for one ttl at most: the next daemon waits that long, watching,
// then takes it. An earlier run of the very same process (same host, pid
// namespace and pid, as a container restarted in place) takes it at once.
func TestGuardAfterACrash(t *testing.T) {
	kv := singleServer(t)
	pools := poolNames(2)
	crashed, err := openReplica(t, replicaSpec{id: "x", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "h", PID: 1, PIDNS: "pid:[5]"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = crashed // never runs: it opened its session and died

	start := time.Now()
	later, err := openReplica(t, replicaSpec{id: "y", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "h2", PID: 1, PIDNS: "pid:[6]"}})
	if err != nil {
		t.Fatalf("after a crash: %v", err)
	}
	took := time.Since(start)
	t.Logf("took a crashed daemon's name after %v (ttl %v)", took.Round(time.Millisecond), fastTiming.TTL)
	if took < fastTiming.TTL-fastTiming.RenewEvery || took > fastTiming.TTL+2*time.Second {
		t.Errorf("waited %v for a dead session, want about a ttl (%v)", took, fastTiming.TTL)
	}

	// later "crashes" too; its own next run starts at once.
	start = time.Now()
	again, err := openReplica(t, replicaSpec{id: "y", kv: kv, pools: pools, timing: fastTiming, exclusive: true,
		process: Process{Host: "h2", PID: 1, PIDNS: "pid:[6]"}})
	if err != nil {
		t.Fatalf("restart in place: %v", err)
	}
	if took := time.Since(start); took > fastTiming.RenewEvery {
		t.Errorf("a restart in place waited %v", took)
	}
	_ = later
	again.run()
	t.Cleanup(again.stop)
}

// Bad options are refused with every problem named.
func TestOpenRefusesBadOptions(t *testing.T) {
	_, err := Open(context.Background(), Options{Pools: poolNames(1)[:1], Timing: Timing{}})
	for _, want := range []string{"no bucket", "name is empty", "replica id is empty", "lease ttl 0s must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	_, err = Open(context.Background(), Options{KV: deadKV{}, Name: "n", Replica: "r", Pools: poolNames(1), Timing: fastTiming})
	if err == nil {
		t.Error("Open with a bucket nobody answers succeeded")
	}
}
