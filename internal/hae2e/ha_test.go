package hae2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// With ha off, a second daemon of the same name on the same bus refuses
// to start and names the first one (host, pid, since); once the first has
// stopped, it starts. An ha replica of that name is refused as well.
func TestSameNameGuard(t *testing.T) {
	e := newEnv(t, true)
	a := e.addReplica("a", true)
	bustest.Eventually(t, 60*time.Second, "daemon a ready", a.ready)

	b := e.addReplica("b", true)
	st := b.wait(3 * leaseTTL)
	if st.Success() {
		t.Fatalf("the second daemon of the name exited %v, want a refusal", st)
	}
	pid := strconv.Itoa(a.cmd.Process.Pid)
	if !b.logHas("another autoscaler named", e.owner, "is running on this bus", "pid "+pid, "since") {
		t.Fatalf("the refusal does not name the other daemon (pid %s):\n%s", pid, b.logTail(10))
	}
	c := e.addReplica("c", false)
	if st := c.wait(3 * leaseTTL); st.Success() {
		t.Fatalf("an ha replica beside an ha-off daemon of the name exited %v, want a refusal", st)
	}
	if !c.logHas("runs on this bus with ha off", "pid "+pid) {
		t.Fatalf("the ha replica's refusal does not name the daemon:\n%s", c.logTail(10))
	}
	if !a.running() || !a.ready() {
		t.Fatal("the first daemon did not keep running")
	}

	a.stop(30 * time.Second)
	b.start()
	bustest.Eventually(t, 60*time.Second, "daemon b ready once a has stopped", b.ready)
}

// Kill -9 the lease holder in the middle of a burst of 30 jobs: another
// replica holds the pool within TTL + one renew interval, every job is
// served, there are never more workers than max_workers, none is drained
// while busy, none is left behind.
func TestKillHolderMidBurst(t *testing.T) {
	e := newEnv(t, true)
	rs := e.start("r1", "r2", "r3")
	old := e.holder(3 * leaseTTL)
	s := e.sample()
	ids := e.queue("burst", 30, 3*time.Second)
	bustest.Eventually(t, 60*time.Second, "the holder creating workers", func() bool { return len(e.containers()) >= 3 })

	killed := time.Now()
	old.kill()
	var took time.Duration
	bustest.Eventually(t, 3*leaseTTL, "another replica holding the pool", func() bool {
		for _, r := range rs {
			if r != old && r.holds() {
				took = time.Since(killed)
				return true
			}
		}
		return false
	})
	t.Logf("kill -9 of %s: another replica held the pool %v later (ttl %v, renew %v)", old.id, took.Round(time.Millisecond), leaseTTL, renewEvery)
	// Polled every 20ms over HTTP: allow one poll and the call.
	if limit := leaseTTL + renewEvery + 200*time.Millisecond; took > limit {
		t.Errorf("takeover took %v, want within ttl + renew interval (%v)", took, limit)
	}

	e.waitServed(ids, 120*time.Second)
	e.waitNoContainers(60 * time.Second)
	s.end()
	if peak := s.max(); peak > e.maxWorkers {
		t.Errorf("%d worker containers at once, want at most max_workers %d", peak, e.maxWorkers)
	} else {
		t.Logf("peak %d workers (max_workers %d)", peak, e.maxWorkers)
	}
	if bs := e.busyStops(); len(bs) > 0 {
		t.Errorf("busy workers drained:\n%v", bs)
	}
	sw, gaps, inflight := terms(e.calls())
	t.Logf("provider terms: %d switches, gaps %v, calls in flight at a switch %d", sw, gaps, inflight)
	if sw != 1 {
		t.Errorf("provider calls switched replicas %d times, want once (the takeover):\n%s", sw, describe(e.calls()))
	}
}

// Partition the holder from every NATS node while it keeps running: it
// stops calling the provider before the new holder starts (from the
// engine proxies' records of calls), jobs keep being served, and when the
// partition heals it does not act on the pool again beside the new holder.
func TestPartitionedHolderStopsBeforeTakeover(t *testing.T) {
	e := newEnv(t, true)
	// One create at a time, each answered 700ms late by the holder's
	// engine proxy: the holder still has creates to make for seconds
	// after it is cut off, so without a fence it would go on calling
	// after the new holder has begun.
	e.poolExtra = "    max_concurrent_provisioning: 1\n"
	rs := e.start("r1", "r2")
	old := e.holder(3 * leaseTTL)
	var next *replica
	for _, r := range rs {
		if r != old {
			next = r
		}
	}
	old.engine.DelayCreates(700 * time.Millisecond)
	first := e.queue("before", 10, 2*time.Second)
	bustest.Eventually(t, 60*time.Second, "the holder creating", func() bool { return len(e.containers()) >= 1 })

	cut := time.Now()
	for _, p := range old.proxies {
		p.Cut(tcpproxy.Blackhole)
	}
	during := e.queue("during", 4, 2*time.Second)
	var took time.Duration
	bustest.Eventually(t, 4*leaseTTL, "the other replica holding the pool", func() bool {
		if next.holds() {
			took = time.Since(cut)
			return true
		}
		return false
	})
	t.Logf("partition of %s: %s held the pool %v after the cut", old.id, next.id, took.Round(time.Millisecond))
	e.waitServed(append(first, during...), 120*time.Second)

	for _, p := range old.proxies {
		p.Restore()
	}
	after := e.queue("after", 4, time.Second)
	e.waitServed(after, 120*time.Second)
	e.waitNoContainers(60 * time.Second)

	cs := e.calls()
	sw, gaps, inflight := terms(cs)
	t.Logf("provider terms: %d switches, gaps %v, calls in flight at a switch %d", sw, gaps, inflight)
	if sw != 1 {
		t.Errorf("provider calls switched replicas %d times, want once (no overlapping terms):\n%s", sw, describe(cs))
	}
	// The fence bounds calls in flight too: the cut-off holder's last
	// create (answered 700 ms late) is abandoned when its fence closes,
	// before the new holder may begin.
	if inflight != 0 {
		t.Errorf("%d calls of the cut-off holder still in flight when the new holder began:\n%s", inflight, describe(cs))
	}
	var lastOld, firstNew time.Time
	for _, c := range cs {
		if c.replica == old.id {
			lastOld = c.start
		}
		if c.replica == next.id && firstNew.IsZero() {
			firstNew = c.start
		}
	}
	if !firstNew.IsZero() && lastOld.After(firstNew) {
		t.Errorf("the cut-off holder called the provider at %s, after the new holder's first call at %s", lastOld.Format("15:04:05.000"), firstNew.Format("15:04:05.000"))
	}
	if fence := leaseTTL; lastOld.Sub(cut) > fence {
		t.Errorf("the cut-off holder called the provider %v after the cut, beyond its fence (under the lease ttl %v)", lastOld.Sub(cut), fence)
	}
	if !firstNew.IsZero() && !lastOld.IsZero() {
		t.Logf("cut-off holder's last call %v after the cut; new holder's first call %v after the cut", lastOld.Sub(cut).Round(time.Millisecond), firstNew.Sub(cut).Round(time.Millisecond))
	}
	if bs := e.busyStops(); len(bs) > 0 {
		t.Errorf("busy workers drained:\n%v", bs)
	}
}

// Kill one of three NATS servers under load: every event is applied (every
// job served), no healthy replica loses its lease, and no worker outlives
// its jobs (the daemon's job stream consumer, when it lived on the killed
// server, is opened again at once: internal/events.Consumer).
func TestNATSNodeKillUnderLoad(t *testing.T) {
	e := newEnv(t, true)
	// The test plays the scheduler on the two servers that stay up: it is
	// the replicas whose connections go through the killed one.
	e.clientURL = e.nats.Node(1).ClientURL() + "," + e.nats.Node(2).ClientURL()
	// The default lease timings: the lease bucket's new Raft leader can
	// take longer to answer than the 4 s TTL the other tests use leaves
	// for renewal (seen in CI: a healthy replica's lease lapsed), and
	// the defaults are what an operator runs.
	e.ttl, e.renew = 15*time.Second, 2*time.Second
	rs := e.start("r1", "r2")
	h := e.holder(3 * e.ttl)
	var ids []string
	for wave := range 6 {
		ids = append(ids, e.queue(fmt.Sprintf("w%d", wave), 4, 2*time.Second)...)
		if wave == 2 {
			if err := e.nats.Node(0).Kill(); err != nil {
				t.Fatal(err)
			}
			// The test's own publisher (the scheduler's part) waits for
			// the streams' new leaders; the replicas are not waited for.
			e.nats.WaitHealthy(t, 30*time.Second)
		}
		time.Sleep(time.Second)
	}
	e.waitServed(ids, 120*time.Second)
	pl, dl := e.lags()
	t.Logf("worst job event lags: event to stored %v, stored to received by the test %v", pl.Round(time.Millisecond), dl.Round(time.Millisecond))
	if !h.holds() {
		t.Errorf("holder %s lost the pool when one NATS server died", h.id)
	}
	for _, r := range rs {
		if r.logHas("lease: session lost") || r.logHas(`"reason":"fenced"`) || r.logHas(`"reason":"session-lost"`) {
			t.Errorf("replica %s lost its session or was fenced while one NATS server was down", r.id)
		}
	}
	e.waitNoContainers(60 * time.Second)
	if bs := e.busyStops(); len(bs) > 0 {
		t.Errorf("busy workers drained:\n%v", bs)
	}
}

// Rolling restart of every replica, one after another, under steady load:
// no busy worker drained, no job unserved, nothing left behind, and the
// provider calls of the replicas never interleave.
func TestRollingRestart(t *testing.T) {
	e := newEnv(t, true)
	rs := e.start("r1", "r2")
	e.holder(3 * leaseTTL)
	s := e.sample()
	stop := make(chan struct{})
	queued := make(chan []string, 1)
	go func() {
		var ids []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				queued <- ids
				return
			case <-time.After(300 * time.Millisecond):
			}
			ids = append(ids, e.queue(fmt.Sprintf("steady%d", i), 1, 2*time.Second)...)
		}
	}()
	bustest.Eventually(t, 60*time.Second, "workers busy under the load", func() bool { return len(e.containers()) >= 3 })
	for _, r := range rs {
		was := r.holds()
		r.stop(60 * time.Second)
		r.start()
		bustest.Eventually(t, 60*time.Second, "replica "+r.id+" ready again", r.ready)
		h := e.holder(3 * leaseTTL)
		t.Logf("restarted %s (held the pool: %v); %s holds it", r.id, was, h.id)
		time.Sleep(3 * time.Second) // load on the new arrangement
	}
	close(stop)
	ids := <-queued
	e.waitServed(ids, 120*time.Second)
	e.waitNoContainers(60 * time.Second)
	s.end()
	if peak := s.max(); peak > e.maxWorkers {
		t.Errorf("%d workers at once, want at most %d", peak, e.maxWorkers)
	}
	if bs := e.busyStops(); len(bs) > 0 {
		t.Errorf("busy workers drained:\n%v", bs)
	}
	sw, gaps, inflight := terms(e.calls())
	t.Logf("provider terms: %d switches, gaps %v, calls in flight at a switch %d", sw, gaps, inflight)
	if len(ids) < 10 {
		t.Errorf("only %d jobs under load", len(ids))
	}
	t.Logf("%d jobs served over a rolling restart of %d replicas; peak %d workers", len(ids), len(rs), s.max())
}
