package faults

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Fault 4: pools whose workers can never run — an image that does not
// exist under pull_policy never, and workers that exit at once (with an
// error code, and with 0) — report failed events with the reason and back
// off instead of creating containers in a hot loop, while a healthy pool of
// the same daemon keeps scaling. Observed over a full minute.
func TestBrokenWorkersBackOff(t *testing.T) {
	t.Parallel()
	cli := dockertest.Client(t)
	image := sleeperImage(t)
	owner := dockertest.UniqueName("faults-broken")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	const (
		retryInitial = time.Second
		retryMax     = 10 * time.Second
		window       = time.Minute
		// 0, 1, 3, 7, 15, 25, 35, 45, 55 s: 9 attempts in the first minute
		// (12 allows for jitter); a hot loop makes one every second or so.
		maxPerMinute = 12
	)
	cfg := baseConfig(t, owner)
	cfg.Reconcile.RetryInitial = config.Duration(retryInitial)
	cfg.Reconcile.RetryMax = config.Duration(retryMax)
	cfg.Reconcile.ResyncInterval = config.Duration(30 * time.Second) // the default
	noImage := dockerPool("noimage", "hodei-faults-no-such-image:never")
	crash := dockerPool("crash", image)
	crash.Env = map[string]string{"SLEEPER_EXIT_CODE": "3"}
	exit0 := dockerPool("exit0", image)
	exit0.Env = map[string]string{"SLEEPER_EXIT_CODE": "0"}
	good := dockerPool("good", image)
	cfg.Pools = []config.Pool{noImage, crash, exit0, good}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	start := time.Now()
	for _, p := range []domain.PoolName{"noimage", "crash", "exit0"} {
		jobs.Queued(p, "job-"+string(p), nil)
	}
	jobs.Queued("good", "good-1", nil)
	jobs.Queued("good", "good-2", nil)
	goodRunning := func(n int) func() bool {
		return func() bool {
			cs := owned(t, cli, owner, domain.LabelWorkerPool+"=good")
			return len(cs) == n && countState(cs, "running") == n
		}
	}
	bustest.Eventually(t, 30*time.Second, "2 good workers", goodRunning(2))

	// Halfway through the minute the healthy pool gets more work.
	bustest.Eventually(t, window, "half a minute", func() bool { return time.Since(start) >= window/2 })
	jobs.Queued("good", "good-3", nil)
	jobs.Queued("good", "good-4", nil)
	bustest.Eventually(t, 30*time.Second, "4 good workers while the other pools fail", goodRunning(4))
	bustest.Eventually(t, 2*window, "a minute", func() bool { return time.Since(start) >= window })

	for _, c := range []struct {
		pool, reason string
	}{
		{"noimage", `image "hodei-faults-no-such-image:never" is not present and the pull policy is "never"`},
		{"crash", "exited with code 3"},
		{"exit0", "exited with code 0"},
	} {
		attempts := provisioningSince(out, c.pool, start)
		t.Logf("pool %s: %s", c.pool, gaps(attempts))
		if len(attempts) > maxPerMinute {
			t.Errorf("pool %s: %d create attempts in a minute, want at most %d (backoff %v..%v)", c.pool, len(attempts), maxPerMinute, retryInitial, retryMax)
		}
		if len(attempts) < 4 {
			t.Errorf("pool %s: only %d create attempts in a minute; it should keep retrying", c.pool, len(attempts))
		}
		assertBackoff(t, attempts, retryMax)

		// A clean exit is a stopped event, an error a failed one; both
		// carry the reason.
		var reasons []string
		for _, e := range out.Events() {
			if e.Worker.Pool == c.pool && (e.Type == bustest.Lifecycle(domain.LifecycleFailed) || e.Type == bustest.Lifecycle(domain.LifecycleStopped)) {
				reasons = append(reasons, e.Worker.Reason)
			}
		}
		if len(reasons) == 0 || !strings.Contains(reasons[0], c.reason) {
			t.Errorf("pool %s: failed/stopped events %q, want the reason %q", c.pool, reasons, c.reason)
		} else {
			t.Logf("pool %s: %d failed events, first reason %q", c.pool, len(reasons), reasons[0])
		}
	}
	// Nothing is left behind by the failing pools: each failed container is
	// deleted.
	bustest.Eventually(t, 30*time.Second, "no leftover containers of the failing pools", func() bool {
		for _, p := range []string{"noimage", "crash", "exit0"} {
			for _, c := range owned(t, cli, owner, domain.LabelWorkerPool+"="+p) {
				if c.State != "running" && c.State != "created" {
					return false
				}
			}
		}
		return true
	})
	m := scrape(t, d.url("/metrics"))
	for _, p := range []string{"noimage", "crash", "exit0", "good"} {
		t.Logf("pool %s: provider_operations_total create ok %v error %v, workers failed %v", p,
			m.get("hodei_autoscaler_provider_operations_total", "pool", p, "op", "create", "result", "ok"),
			m.get("hodei_autoscaler_provider_operations_total", "pool", p, "op", "create", "result", "error"),
			m.get("hodei_autoscaler_workers", "pool", p, "state", "failed"))
	}
	// The engine answers: the broken pools are a configuration problem,
	// shown by their failed events and backoff, not an unreachable provider.
	code, body := httpGet(d.url("/readyz"))
	t.Logf("/readyz with broken pools: %d %s", code, oneLine(body))
	if code != http.StatusOK {
		t.Errorf("/readyz %d with a reachable engine: %s", code, body)
	}
}
