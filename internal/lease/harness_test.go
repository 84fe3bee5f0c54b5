package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// fastTiming keeps the tests that need no NATS server failover short.
var fastTiming = Timing{TTL: 2 * time.Second, RenewEvery: 300 * time.Millisecond, Drift: 0.005, Slack: 100 * time.Millisecond, OpTimeout: 500 * time.Millisecond}

// testLog is quiet unless LEASE_TEST_LOG=1.
func testLog(t testing.TB, replica string) zerolog.Logger {
	if os.Getenv("LEASE_TEST_LOG") != "1" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Str("replica", replica).Logger()
}

// dialBucket connects to url (one or several, comma-separated) the way a
// replica would, and opens the lease bucket.
func dialBucket(t testing.TB, url string, replicas int, opts ...nats.Option) (*nats.Conn, jetstream.KeyValue) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond),
		nats.Timeout(time.Second), nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2)}, opts...)...)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var kv jetstream.KeyValue
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		kv, err = OpenBucket(ctx, js, DefaultBucket, replicas)
		cancel()
		if err == nil {
			return nc, kv
		}
		if time.Now().After(deadline) {
			t.Fatalf("opening the bucket: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replica is one Manager running in this process, with what it reported.
type replica struct {
	id     string
	m      *Manager
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	changes []Change
}

// replicaSpec says how to start a replica.
type replicaSpec struct {
	id        string
	kv        KV
	pools     []domain.PoolName
	timing    Timing
	exclusive bool
	process   Process
}

// startReplica opens a Manager, marks it ready and runs it until the test
// ends or stop is called.
func startReplica(t testing.TB, s replicaSpec) *replica {
	t.Helper()
	r, err := openReplica(t, s)
	if err != nil {
		t.Fatalf("opening replica %s: %v", s.id, err)
	}
	r.run()
	r.m.SetReady(true)
	t.Cleanup(r.stop)
	return r
}

func openReplica(t testing.TB, s replicaSpec) (*replica, error) {
	t.Helper()
	r := &replica{id: s.id, done: make(chan error, 1)}
	if s.process == (Process{}) {
		s.process = Process{Host: "test-" + s.id, PID: 1000 + len(s.id)} // no pid namespace: never "an earlier run"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*max(s.timing.TTL, time.Second)+10*time.Second)
	defer cancel()
	m, err := Open(ctx, Options{KV: s.kv, Name: "hodei", Replica: s.id, Exclusive: s.exclusive, Pools: s.pools,
		Timing: s.timing, Process: s.process, Log: testLog(t, s.id), OnChange: r.record})
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

func (r *replica) run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.m.Run(ctx) }()
}

func (r *replica) record(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

// stop ends Run (a clean shutdown) and waits for it; idempotent.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
}

func (r *replica) Changes() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}

// count counts the changes gained (held) or lost for a reason.
func (r *replica) count(held bool, reason string) int {
	n := 0
	for _, c := range r.Changes() {
		if c.Held == held && c.Reason == reason {
			n++
		}
	}
	return n
}

// held counts the pools this replica may act on now.
func (r *replica) held(pools []domain.PoolName) int {
	now := time.Now()
	n := 0
	for _, p := range pools {
		if r.m.MayAct(p, now) {
			n++
		}
	}
	return n
}

// checkExclusive fails when two replicas may act on one pool at one
// instant (as far as one look at every fence can tell).
func checkExclusive(t testing.TB, pools []domain.PoolName, rs ...*replica) {
	t.Helper()
	now := time.Now()
	for _, p := range pools {
		var holders []string
		for _, r := range rs {
			if r.m.MayAct(p, now) {
				holders = append(holders, r.id)
			}
		}
		if len(holders) > 1 {
			t.Fatalf("pool %s held by %v at once", p, holders)
		}
	}
}

// eventually polls cond every 10 ms until it holds; it returns how long
// that took.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// balancedWithinOne says whether the replicas hold every pool between
// them, each within one of an equal share.
func balancedWithinOne(pools []domain.PoolName, rs ...*replica) bool {
	total := 0
	lo, hi := len(pools)/len(rs), (len(pools)+len(rs)-1)/len(rs)
	for _, r := range rs {
		n := r.held(pools)
		if n < lo || n > hi {
			return false
		}
		total += n
	}
	return total == len(pools)
}

func heldCounts(pools []domain.PoolName, rs ...*replica) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("%s=%d ", r.id, r.held(pools))
	}
	return s
}

func isHeld(err error) bool { return errors.Is(err, ErrHeld) }
