package faults

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// Fault 3: the Docker engine becomes unreachable for one pool's daemon
// (its docker.host is a socket proxy the test controls). A create that
// hangs times out without stalling the loop; refused calls back off
// exponentially; the breaker opens after breaker_failures consecutive
// errors, /readyz names the provider, only Ping probes reach the engine
// while it is open, spaced by breaker_cooldown; and when the engine
// answers again, the pool scales on its own without duplicating workers.
func TestDockerEngineUnreachable(t *testing.T) {
	cli := dockertest.Client(t)
	image := sleeperImage(t)
	owner := dockertest.UniqueName("faults-engine")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	px := engineproxy.New(t)

	const (
		timeout   = time.Second
		cooldown  = 3 * time.Second
		failures  = 40
		poolName  = "engine"
		retryInit = 250 * time.Millisecond
	)
	cfg := baseConfig(t, owner)
	cfg.Reconcile.ProviderTimeout = config.Duration(timeout)
	cfg.Reconcile.BreakerFailures = failures
	cfg.Reconcile.BreakerCooldown = config.Duration(cooldown)
	cfg.Reconcile.RetryInitial = config.Duration(retryInit)
	cfg.Reconcile.RetryMax = config.Duration(16 * time.Second)
	p := dockerPool(poolName, image)
	p.Docker.Host = px.Host()
	cfg.Pools = []config.Pool{p}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	// n containers running, and the daemon knows them all as ready (a
	// create's answer may still be on its way when the container runs).
	running := func(n int) func() bool {
		return func() bool {
			cs := owned(t, cli, owner)
			st, _ := pools(d.url("/v1/pools"))
			ready := st[poolName].Workers[string(domain.StateIdle)] + st[poolName].Workers[string(domain.StateBusy)]
			return len(cs) == n && countState(cs, "running") == n && ready == n
		}
	}
	// The sleeper runs no jobs: each queued job keeps one worker wanted.
	jobs.Queued(poolName, "a", nil)
	bustest.Eventually(t, 30*time.Second, "1 running worker", running(1))

	// 1. A create that hangs times out after provider_timeout; meanwhile
	// the loop keeps applying events and answering.
	hangFrom := time.Now()
	px.HangCreates(true)
	jobs.Queued(poolName, "b", nil)
	bustest.Eventually(t, 10*time.Second, "a create hanging at the engine", func() bool { return px.InFlight(engineproxy.IsCreate) == 1 })
	start := time.Now()
	st, ok := pools(d.url("/v1/pools"))
	if took := time.Since(start); !ok || took > time.Second || st[poolName].Pending != 2 {
		t.Errorf("/v1/pools while a create hangs: ok %v, %v, pending %d (want an answer within 1s showing 2 pending)", ok, took, st[poolName].Pending)
	}
	var hung engineproxy.Req
	bustest.Eventually(t, timeout+5*time.Second, "the hanging create abandoned by the daemon", func() bool {
		held := px.Requests(func(r engineproxy.Req) bool { return engineproxy.IsCreate(r) && r.Start.After(hangFrom) })
		hung = held[0]
		return !hung.End.IsZero()
	})
	if took := hung.End.Sub(hung.Start); took > timeout+time.Second {
		t.Errorf("the hanging create was held %v, want about provider_timeout %v", took, timeout)
	} else {
		t.Logf("the hanging create was abandoned after %v", took.Round(time.Millisecond))
	}
	var failed bustest.Event
	bustest.Eventually(t, 10*time.Second, "failed event for the timed-out create", func() bool {
		for _, e := range out.OfType(bustest.Lifecycle(domain.LifecycleFailed)) {
			failed = e
			return true
		}
		return false
	})
	if !strings.Contains(failed.Worker.Reason, "create failed") || !strings.Contains(failed.Worker.Reason, "deadline exceeded") {
		t.Errorf("failed event reason %q, want the create's timeout", failed.Worker.Reason)
	}
	px.HangCreates(false)
	bustest.Eventually(t, 30*time.Second, "2 running workers after the retry", running(2))

	// 2. The engine refuses connections: creates back off exponentially,
	// then the breaker opens and only probes are made.
	px.SetMode(engineproxy.Refuse)
	refusedAt := time.Now()
	jobs.Queued(poolName, "c", nil)
	readyz := d.url("/readyz")
	var body string
	bustest.Eventually(t, 60*time.Second, "/readyz naming the failing provider", func() bool {
		var code int
		code, body = httpGet(readyz)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "pool engine (docker)")
	})
	openedAt := time.Now()
	t.Logf("breaker open %v after the engine went away; /readyz: %s", openedAt.Sub(refusedAt).Round(time.Millisecond), oneLine(body))
	if !strings.Contains(body, "connection refused") && !strings.Contains(body, "Cannot connect") {
		t.Errorf("/readyz does not say why the provider is down: %s", body)
	}
	attempts := provisioningSince(out, poolName, refusedAt)
	t.Logf("create attempts while refused: %s", gaps(attempts))
	if len(attempts) < 4 {
		t.Fatalf("%d create attempts before the breaker opened, want at least 4 to see the backoff", len(attempts))
	}
	assertBackoff(t, attempts, 16*time.Second)
	m := scrape(t, d.url("/metrics"))
	if v := m.get("hodei_autoscaler_provider_operations_total", "pool", poolName, "provider", "docker", "result", "error"); v < failures {
		t.Errorf("provider_operations_total{result=error} = %v, want at least breaker_failures %d", v, failures)
	}
	if v := m.get("hodei_autoscaler_provider_up", "pool", poolName); v != 0 {
		t.Errorf("provider_up = %v while the breaker is open", v)
	}
	if st, _ := pools(d.url("/v1/pools")); st[poolName].ProviderUp || st[poolName].ProviderErr == "" {
		t.Errorf("/v1/pools does not show the provider down: %+v", st[poolName])
	}
	// No more creates while open.
	n := len(provisioningSince(out, poolName, refusedAt))
	holds(t, 2*cooldown, "no create attempts while the breaker is open", func() bool {
		return len(provisioningSince(out, poolName, refusedAt)) == n
	})

	// 3. The engine hangs: only Ping probes reach it, one per cooldown,
	// each abandoned after provider_timeout; the loop still answers.
	px.SetMode(engineproxy.Hang)
	hangAt := time.Now()
	jobs.Queued(poolName, "d", nil)
	bustest.Eventually(t, 5*time.Second, "the loop applying events while the engine hangs", func() bool {
		st, ok := pools(d.url("/v1/pools"))
		return ok && st[poolName].Pending == 4
	})
	inHang := func(r engineproxy.Req) bool { return r.Mode == engineproxy.Hang && !r.Start.Before(hangAt) }
	bustest.Eventually(t, 4*(cooldown+timeout), "3 probes while hanging", func() bool {
		done := 0
		for _, r := range px.Requests(inHang) {
			if !r.End.IsZero() {
				done++
			}
		}
		return done >= 3
	})
	probes := px.Requests(inHang)
	for i, r := range probes {
		if !engineproxy.IsPing(r) {
			t.Errorf("%s %s reached the hanging engine while the breaker was open; only probes should", r.Method, r.Path)
		}
		if !r.End.IsZero() && r.End.Sub(r.Start) > timeout+time.Second {
			t.Errorf("probe %d held %v, want it abandoned after about %v", i, r.End.Sub(r.Start), timeout)
		}
		if i > 0 && r.Start.Sub(probes[i-1].Start) < cooldown*9/10 {
			t.Errorf("probes %v apart, want at least breaker_cooldown %v", r.Start.Sub(probes[i-1].Start), cooldown)
		}
	}
	starts := make([]time.Time, len(probes))
	for i, r := range probes {
		starts[i] = r.Start
	}
	t.Logf("probes while hanging: %s", gaps(starts))
	if code, body := httpGet(readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "pool engine (docker)") {
		t.Errorf("/readyz while the engine hangs: %d %s", code, body)
	}

	// 4. The engine is back: the pool recovers by itself.
	px.SetMode(engineproxy.Forward)
	backAt := time.Now()
	bustest.Eventually(t, cooldown+timeout+10*time.Second, "/readyz ready again", func() bool {
		code, _ := httpGet(readyz)
		return code == http.StatusOK
	})
	t.Logf("ready again %v after the engine came back", time.Since(backAt).Round(time.Millisecond))
	bustest.Eventually(t, 30*time.Second, "4 running workers, one per job", running(4))
	t.Logf("scaled to 4 workers %v after the engine came back", time.Since(backAt).Round(time.Millisecond))
	if m := scrape(t, d.url("/metrics")); m.get("hodei_autoscaler_provider_up", "pool", poolName) != 1 {
		t.Errorf("provider_up not back to 1")
	}
	holds(t, 2*time.Second, "exactly 4 workers", running(4))
}

// provisioningSince returns the times of the pool's provisioning events
// (one per create attempt) after since, in order.
func provisioningSince(c *bustest.Collector, pool string, since time.Time) []time.Time {
	var out []time.Time
	for _, e := range c.OfType(bustest.Lifecycle(domain.LifecycleProvisioning)) {
		if e.Worker.Pool == pool && e.At.After(since) {
			out = append(out, e.At)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// gaps renders the intervals between times.
func gaps(ts []time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d at intervals", len(ts))
	for i := 1; i < len(ts); i++ {
		fmt.Fprintf(&b, " %v", ts[i].Sub(ts[i-1]).Round(10*time.Millisecond))
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// assertBackoff checks that attempts come at growing intervals, up to
// retryMax: doubling with ±20% jitter, plus the time each attempt takes to
// fail (a container that must start before it exits), so the check is on
// the shape: no interval much shorter than the one before while below the
// cap, the longest at least 2.5 times the first (or near the cap), and
// none far above the cap.
func assertBackoff(t *testing.T, attempts []time.Time, retryMax time.Duration) {
	t.Helper()
	if len(attempts) < 3 {
		t.Errorf("%d attempts: too few to see a backoff", len(attempts))
		return
	}
	first := attempts[1].Sub(attempts[0])
	longest := first
	for i := 2; i < len(attempts); i++ {
		prev, cur := attempts[i-1].Sub(attempts[i-2]), attempts[i].Sub(attempts[i-1])
		longest = max(longest, cur)
		if prev < retryMax*3/4 && cur < prev*85/100-500*time.Millisecond {
			t.Errorf("attempt interval %v after %v: the backoff shrank (%s)", cur, prev, gaps(attempts))
			return
		}
		if cur > retryMax*13/10+2*time.Second {
			t.Errorf("attempt interval %v is far above retry_max %v (%s)", cur, retryMax, gaps(attempts))
			return
		}
	}
	if longest < min(first*5/2, retryMax*3/4) {
		t.Errorf("longest interval %v, first %v: not backing off exponentially (%s)", longest, first, gaps(attempts))
	}
}
