package faults

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// budgetPools are two pools of the example worker drawing from one
// budget "shared" of 6 workers.
func budgetPools(t *testing.T, cfg *config.Config, host string, a, b func(*config.Pool)) {
	t.Helper()
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	cfg.Budgets = map[string]config.Budget{"shared": {Workers: 6}}
	for i, mod := range []func(*config.Pool){a, b} {
		p := workerPool(t, []string{"high", "low"}[i], natsURL)
		p.Docker.Host = host
		p.MaxWorkers = 10
		p.IdleWorkers = config.IdleWorkers{Count: 0}
		p.IdleTimeout = config.Fixed(time.Second)
		p.Budget = "shared"
		mod(&p)
		cfg.Pools = append(cfg.Pools, p)
	}
}

// poolContainers counts a pool's containers (every state) on the engine.
func poolContainers(t *testing.T, cli *client.Client, owner, pool string) int {
	t.Helper()
	return len(owned(t, cli, owner, domain.LabelWorkerPool+"="+pool))
}

func TestBudgetPrioritiesAcrossSIGKILL(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	owner := dockertest.UniqueName("faults-budget")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	px := engineproxy.New(t)
	cfg := baseConfig(t, owner)
	budgetPools(t, &cfg, px.Host(),
		func(p *config.Pool) { p.Priority = 10 },
		func(p *config.Pool) { p.Priority = 1 })
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)

	// The budget is sampled from the engine for the whole test, across
	// the kill and the restart.
	seen := sampleContainers(t, cli, owner, 100*time.Millisecond)
	d1 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d1.ready)
	_, js := connectJS(t, natsURL)
	sched := bustest.NewJobs(t, js)
	const jobs = 8
	for i := range jobs {
		sched.Queued("high", fmt.Sprint("high-", i), map[string]string{"duration": "4s"})
	}
	for i := range jobs {
		sched.Queued("low", fmt.Sprint("low-", i), map[string]string{"duration": "3s"})
	}
	start := time.Now()
	bustest.Eventually(t, 60*time.Second, "high gets the 6", func() bool {
		return countState(owned(t, cli, owner, domain.LabelWorkerPool+"=high"), "running") == 6
	})
	t.Logf("both flooded: high has 6 running containers after %s, low %d", time.Since(start).Round(time.Millisecond), poolContainers(t, cli, owner, "low"))
	if n := poolContainers(t, cli, owner, "low"); n != 0 {
		t.Fatalf("both flooded: low has %d containers, want 0 (priority 1 below 10, budget 6)", n)
	}
	st, _ := pools(d1.url("/v1/pools"))
	if st["low"].Desired != 0 {
		t.Errorf("low's desired %d, want 0", st["low"].Desired)
	}

	// High drains: low takes the room.
	bustest.Eventually(t, 90*time.Second, "low runs 4 or more once high drains", func() bool {
		return countState(owned(t, cli, owner, domain.LabelWorkerPool+"=low"), "running") >= 4 &&
			px.InFlight(engineproxy.IsCreate) == 0
	})
	t.Logf("high drained: low has %d containers after %s", poolContainers(t, cli, owner, "low"), time.Since(start).Round(time.Millisecond))
	if code, _ := d1.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("daemon exit code %d after SIGKILL", code)
	}
	d2 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "restarted daemon ready", d2.ready)
	bustest.Eventually(t, 120*time.Second, "every job finished", func() bool {
		return jobTruth(t, js, "high").Finished == jobs && jobTruth(t, js, "low").Finished == jobs
	})
	t.Logf("every job finished after %s", time.Since(start).Round(time.Millisecond))
	bustest.Eventually(t, 60*time.Second, "no containers left", func() bool { return len(owned(t, cli, owner)) == 0 })
	seen.stop()
	peak, samples := seen.result()
	t.Logf("containers of both pools sampled %d times from the engine: peak %d, budget 6", samples, peak)
	if peak > 6 {
		t.Errorf("%d containers at once: the budget of 6 was exceeded", peak)
	}
}

func TestBudgetWeightsShareByTwoToOne(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	owner := dockertest.UniqueName("faults-weights")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	cfg := baseConfig(t, owner)
	budgetPools(t, &cfg, "",
		func(p *config.Pool) { p.Priority, p.Weight = 5, 2 },
		func(p *config.Pool) { p.Priority, p.Weight = 5, 1 })
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)

	// Both floods are in the stream before the daemon decides: a first
	// daemon in dry-run takes them, a second one folds them at once.
	dry := cfg
	dry.DryRun = true
	d0 := startDaemon(t, dry)
	bustest.Eventually(t, 30*time.Second, "dry-run daemon ready", d0.ready)
	_, js := connectJS(t, natsURL)
	sched := bustest.NewJobs(t, js)
	for i := range 10 {
		sched.Queued("high", fmt.Sprint("a-", i), map[string]string{"duration": "20s"})
		sched.Queued("low", fmt.Sprint("b-", i), map[string]string{"duration": "20s"})
	}
	bustest.Eventually(t, 10*time.Second, "dry-run daemon saw the jobs", func() bool {
		st, ok := pools(d0.url("/v1/pools"))
		return ok && st["high"].Pending == 10 && st["low"].Pending == 10
	})
	if code, _ := d0.signal(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("dry-run daemon exit code %d", code)
	}
	seen := sampleContainers(t, cli, owner, 100*time.Millisecond)
	d := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)
	bustest.Eventually(t, 60*time.Second, "6 containers running", func() bool {
		return countState(owned(t, cli, owner), "running") == 6
	})
	holds(t, 3*time.Second, "shares 4 and 2", func() bool {
		return poolContainers(t, cli, owner, "high") == 4 && poolContainers(t, cli, owner, "low") == 2
	})
	st, _ := pools(d.url("/v1/pools"))
	t.Logf("weights 2:1 of 6: %d and %d containers; desired %d and %d", poolContainers(t, cli, owner, "high"), poolContainers(t, cli, owner, "low"), st["high"].Desired, st["low"].Desired)
	seen.stop()
	if peak, _ := seen.result(); peak > 6 {
		t.Errorf("%d containers at once: the budget of 6 was exceeded", peak)
	}
}
