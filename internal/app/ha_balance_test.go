package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
	"github.com/hodei/hodei-autoscaler/internal/testutil/natscluster"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// 1,000 pools over three daemon replicas on a real three-node NATS
// JetStream cluster (nats-server processes): each replica holds within
// one of a third (333 or 334), as its own /v1/pools says; one stops and
// its pools are spread over the other two (500 each, within one) within
// the lease ttl plus a renew interval; it starts again and gets its
// third back, with only as many pools moving to it as it then holds
// (plus two). Then c is cut off from every NATS server while it keeps
// running (a blackhole TCP proxy in front of each of its connections, the
// in-process stand-in for a kill -9: it stops renewing): a and b hold 500
// each within the ttl plus a renew interval, and c's own fence lets it
// act on none of them; healed, c gets its third back. At every sample no
// pool is held by two replicas at once.
//
// The replicas are in-process daemons (New and Run, the daemon's whole
// wiring: bus, streams, lease bucket with 3 copies, reconciler, HTTP
// API) with the recording fake provider, not daemon processes with the
// Docker provider: each Docker pool watches the engine's event stream,
// and 3,000 such watches (plus a cluster) on this 2-core machine would
// measure the engine, not the leases. No job is queued, so no provider
// call is expected; the fakes record any there are, and the test checks
// there are none.
//
// The exclusivity check reads each replica's fence (MayAct, what the
// reconciler obeys before a provider call and what /v1/pools reports as
// "mine") for every pool at one instant, since HTTP answers from three
// replicas are three different instants and a pool handed over between
// two of them would look held twice.
func TestHAThousandPoolsBalanceOverThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and three daemons with 1,000 pools each")
	}
	cluster := natscluster.Start(t, 3)
	const ttl, renew = 4 * time.Second, time.Second
	base := testConfig(t, t.TempDir()) // its embedded server is not used: nats.url is the cluster
	base.NATS.Embedded, base.NATS.URL = config.Embedded{}, cluster.URL()
	base.NATS.Streams.Replicas = 3
	base.HA.Enabled = true
	base.HA.LeaseTTL, base.HA.RenewInterval = config.Duration(ttl), config.Duration(renew)
	base.HA.CallTimeout = config.Duration(500 * time.Millisecond)
	base.Reconcile.Interval = config.Duration(time.Second)
	base.Reconcile.ResyncInterval = config.Duration(5 * time.Second)
	pools := make([]config.Pool, 1000)
	names := make([]domain.PoolName, len(pools))
	for i := range pools {
		pools[i] = base.Pools[0]
		pools[i].Name = fmt.Sprintf("p%04d", i)
		pools[i].MaxWorkers = 2
		names[i] = pools[i].PoolName()
	}
	base.Pools = pools
	if err := base.Validate(); err != nil {
		t.Fatalf("config invalid: %v", err)
	}

	f := &fakes{byKey: map[string][]*fakeprovider.Provider{}}
	var mu sync.Mutex
	live := map[string]*haReplica{}
	proxies := map[string][]*tcpproxy.Proxy{}
	start := func(id string) *haReplica {
		t.Helper()
		cfg := base
		cfg.HA.ReplicaID = id
		// Each replica reaches the cluster through TCP proxies of its
		// own, so the test can cut one off from every server.
		var urls []string
		for _, n := range cluster.Nodes {
			px := tcpproxy.Start(t, n.Addr())
			urls = append(urls, "nats://"+px.Addr())
			proxies[id] = append(proxies[id], px)
		}
		cfg.NATS.URL = strings.Join(urls, ",")
		r := startHAReplica(t, id, cfg, Options{Providers: f.build})
		mu.Lock()
		live[id] = r
		mu.Unlock()
		return r
	}
	stop := func(r *haReplica) {
		t.Helper()
		mu.Lock()
		delete(live, r.id)
		mu.Unlock()
		r.stop(t)
	}
	// check fails the test if any pool is held by two replicas at one
	// instant (each one's fence), and returns every live replica's count
	// of pools it holds, from its own /v1/pools.
	check := func() map[string]int {
		t.Helper()
		mu.Lock()
		rs := make([]*haReplica, 0, len(live))
		for _, r := range live {
			rs = append(rs, r)
		}
		mu.Unlock()
		now := time.Now()
		for _, p := range names {
			var holders []string
			for _, r := range rs {
				if r.app.lease.MayAct(p, now) {
					holders = append(holders, r.id)
				}
			}
			if len(holders) > 1 {
				t.Fatalf("pool %s held by %v at once", p, holders)
			}
		}
		out := map[string]int{}
		for _, r := range rs {
			out[r.id] = r.held(t)
		}
		return out
	}
	balanced := func(counts map[string]int, ids ...string) bool {
		if len(counts) != len(ids) {
			return false
		}
		lo, hi := len(names)/len(ids), (len(names)+len(ids)-1)/len(ids)
		total := 0
		for _, id := range ids {
			n, ok := counts[id]
			if !ok || n < lo || n > hi {
				return false
			}
			total += n
		}
		return total == len(names)
	}
	// watch polls until balanced over ids, checking every sample; it
	// returns the counts and how long that took.
	watch := func(what string, timeout time.Duration, ids ...string) (map[string]int, time.Duration) {
		t.Helper()
		begin := time.Now()
		var counts map[string]int
		for {
			counts = check()
			if balanced(counts, ids...) {
				return counts, time.Since(begin)
			}
			if time.Since(begin) > timeout {
				t.Fatalf("%s: not balanced after %v: %v", what, timeout, counts)
			}
			time.Sleep(20 * time.Millisecond) // a poll interval, not a synchronisation
		}
	}

	began := time.Now()
	a, b := start("a"), start("b")
	c := start("c")
	counts, took := watch("333/334 each", 60*time.Second, "a", "b", "c")
	t.Logf("1000 pools over 3 replicas: %v, %v after the third replica was ready (%v after the first started)",
		counts, took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	stopped := time.Now()
	stop(c)
	// A clean stop releases c's leases at once; the protocol's bound for
	// a replica that stops renewing is the lease ttl plus a renew
	// interval, with 2 s of slack for a loaded 2-core machine.
	counts, took = watch("500 each after c stopped", ttl+renew+2*time.Second, "a", "b")
	t.Logf("c stopped: %v, %v after the stop began (%v after it returned)",
		counts, time.Since(stopped).Round(time.Millisecond), took.Round(time.Millisecond))

	heldA, heldB := a.app.lease.Fence().Held(time.Now()), b.app.lease.Fence().Held(time.Now())
	gainedBefore := a.gained(t) + b.gained(t)
	c = start("c")
	counts, took = watch("333/334 each after c came back", 60*time.Second, "a", "b", "c")
	// Every lease gained in this phase is a pool that moved: balance
	// needs c's share and no more (the lease package's test allows two
	// more, for a pool caught in flight between two plans).
	moved := a.gained(t) + b.gained(t) - gainedBefore + c.gained(t)
	t.Logf("c back: %v, %v after it was ready; %d pools moved (c holds %d)", counts, took.Round(time.Millisecond), moved, counts["c"])
	if want := counts["c"]; moved > want+2 {
		t.Errorf("%d pools moved to make room for c's %d: more than balance needs (lease changes a %v, b %v, c %v)",
			moved, want, a.changes(t), b.changes(t), c.changes(t))
	}
	// Net, a and b only gave pools up: none of theirs went to the other.
	for _, x := range []struct {
		r      *haReplica
		before []domain.PoolName
	}{{a, heldA}, {b, heldB}} {
		for _, p := range x.r.app.lease.Fence().Held(time.Now()) {
			if !slices.Contains(x.before, p) {
				t.Errorf("replica %s gained pool %s while c took its share", x.r.id, p)
			}
		}
	}
	movedBefore := a.gained(t) + b.gained(t) + c.gained(t)

	// c is cut off from every NATS server (its packets dropped) while it
	// keeps running: it stops acting on its pools as its fence closes,
	// and a and b take them within the ttl plus a renew interval; the
	// check sees c's fence too, so a pool c still believed it held would
	// count as held twice. Healed, c gets its share back.
	cut := time.Now()
	for _, px := range proxies["c"] {
		px.Cut(tcpproxy.Blackhole)
	}
	mu.Lock()
	delete(live, "c") // its HTTP API still answers; its fence is checked below
	mu.Unlock()
	partitioned := func() map[string]int {
		counts := check()
		now := time.Now()
		for _, p := range names {
			if c.app.lease.MayAct(p, now) && (a.app.lease.MayAct(p, now) || b.app.lease.MayAct(p, now)) {
				t.Fatalf("pool %s held by c (cut off) and another replica at once", p)
			}
		}
		return counts
	}
	for begin := time.Now(); ; {
		counts = partitioned()
		if balanced(counts, "a", "b") {
			break
		}
		if time.Since(begin) > ttl+renew+2*time.Second {
			t.Fatalf("c cut off: not 500/500 after %v: %v", time.Since(begin), counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("c cut off: %v after %v; c's fence holds %d", counts, time.Since(cut).Round(time.Millisecond), len(c.app.lease.Fence().Held(time.Now())))
	healed := time.Now()
	for _, px := range proxies["c"] {
		px.Restore()
	}
	mu.Lock()
	live["c"] = c
	mu.Unlock()
	counts, _ = watch("333/334 each after c was healed", 60*time.Second, "a", "b", "c")
	t.Logf("c healed: %v after %v", counts, time.Since(healed).Round(time.Millisecond))
	movedBefore = a.gained(t) + b.gained(t) + c.gained(t)

	// Nothing moves once balanced: the counts stay put for three renew
	// intervals, sampled all along.
	settle := time.Now()
	for time.Since(settle) < 3*renew {
		if got := check(); !balanced(got, "a", "b", "c") {
			t.Fatalf("balance lost while nothing changed: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := a.gained(t) + b.gained(t) + c.gained(t); now != movedBefore {
		t.Errorf("%d pools moved while balanced", now-movedBefore)
	}
	for _, n := range names {
		for _, p := range f.of(string(n)) {
			if calls := p.Calls(); len(calls) > 0 {
				t.Errorf("pool %s: provider calls %v with no job queued", n, calls)
			}
		}
	}
}

// haReplica is one in-process daemon with ha on.
type haReplica struct {
	id     string
	app    *App
	cancel context.CancelFunc
	done   chan error
	logs   *syncbuf.Buffer
}

func startHAReplica(t *testing.T, id string, cfg config.Config, opt Options) *haReplica {
	t.Helper()
	r := &haReplica{id: id, done: make(chan error, 1), logs: &syncbuf.Buffer{}}
	opt.Logger = zerolog.New(r.logs).Level(zerolog.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, opt)
	if err != nil {
		cancel()
		t.Fatalf("starting replica %s: %v", id, err)
	}
	r.app, r.cancel = a, cancel
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if r.cancel != nil {
			r.stop(t)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !a.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready after 60s:\n%s", id, tail(r.logs.String(), 20))
		}
		time.Sleep(20 * time.Millisecond) // a poll interval
	}
	return r
}

// stop cancels the replica and waits for Run to return.
func (r *haReplica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("replica %s stopped with %v", r.id, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not stop within 30s", r.id)
	}
}

// held counts the pools the replica's /v1/pools says it holds ("mine").
func (r *haReplica) held(t *testing.T) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.app.HTTPAddr() + "/v1/pools")
	if err != nil {
		t.Fatalf("replica %s /v1/pools: %v", r.id, err)
	}
	defer resp.Body.Close()
	var body struct {
		Pools []reconciler.PoolStatus `json:"pools"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("replica %s /v1/pools: %v", r.id, err)
	}
	n := 0
	for _, p := range body.Pools {
		if p.Lease != nil && p.Lease.Mine {
			n++
		}
	}
	return n
}

// gained is how many leases the replica has gained
// (hodei_autoscaler_lease_changes_total{change="gained"}, any reason).
func (r *haReplica) gained(t *testing.T) int {
	t.Helper()
	n := 0
	for k, v := range r.changes(t) {
		if strings.HasPrefix(k, "gained/") {
			n += v
		}
	}
	return n
}

// changes is the replica's lease changes by change and reason.
func (r *haReplica) changes(t *testing.T) map[string]int {
	t.Helper()
	mfs, err := r.app.Registry().Gather()
	if err != nil {
		t.Fatalf("replica %s metrics: %v", r.id, err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "hodei_autoscaler_lease_changes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["change"]+"/"+labels["reason"]] += int(m.GetCounter().GetValue())
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
