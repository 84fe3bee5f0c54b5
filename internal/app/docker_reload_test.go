package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

// Hot reload on the real Docker engine, with the example worker running
// real jobs, the config changed by writing its file: raising max_workers
// under load scales up in the very next reconcile; lowering it stops no
// busy worker; a broken file is refused and the daemon goes on with the
// config it had; a pool is added (jobs queued for it before it existed
// run) and removed while its workers are busy (they finish their jobs
// first, then the pool goes).
func TestDockerHotReload(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.WorkerImage(t)
	owner := dockertest.UniqueName("reload")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	port := bustest.FreePort(t)
	cfg := testConfig(t, filepath.Join(dir, "nats"))
	cfg.Name = owner
	cfg.NATS.Embedded.Port = port
	pool := func(name string, max int) config.Pool {
		p := config.PoolDefaults()
		p.Name = name
		p.Docker.Image = image
		p.Docker.PullPolicy = "never"
		p.Docker.NetworkMode = "host"
		p.Docker.ReadOnlyRootfs = true
		p.Env = map[string]string{"HODEI_NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", port)}
		p.Resources = domain.Resources{CPUMillis: 100, MemoryMB: 32}
		p.MaxWorkers = max
		p.IdleTimeout = config.Fixed(time.Second)
		p.StopGracePeriod = config.Duration(10 * time.Second)
		return p
	}
	cfg.Pools = []config.Pool{pool("main", 1)}
	writeConfigFile(t, path, cfg)
	loaded, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.Tail(80))
		}
	})
	a := runApp(t, loaded, Options{Logger: zerolog.New(&logs).With().Timestamp().Logger(), ConfigFile: path, WatchSettle: 50 * time.Millisecond})
	_, js := bustest.Connect(t, a.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)
	jobEv := bustest.CollectStream(t, js, events.StreamJobs)
	running := func(pool string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", domain.LabelOwner+"="+owner), filters.Arg("label", domain.LabelWorkerPool+"="+pool))})
		if err != nil {
			t.Fatalf("listing containers: %v", err)
		}
		return runningContainers(cs)
	}
	started := func(pool string) int {
		n := 0
		for _, e := range jobEv.OfType(domain.TypeJobStarted) {
			if e.Job.Pool == pool {
				n++
			}
		}
		return n
	}
	reloaded := func(n float64) func() bool {
		return func() bool { return testutil.ToFloat64(a.m.ConfigReloads.WithLabelValues(metrics.ReloadApplied)) == n }
	}

	// 1. Four jobs of 15 s at max_workers 1: one runs.
	for i := range 4 {
		jobs.Queued("main", fmt.Sprint("m", i), map[string]string{"duration": "15s"})
	}
	bustest.Eventually(t, 60*time.Second, "one job running at max_workers 1", func() bool { return started("main") == 1 })

	// 2. max_workers 1 -> 4: three creates in the next reconcile.
	cfg.Pools[0].MaxWorkers = 4
	written := time.Now()
	writeConfigFile(t, path, cfg)
	bustest.Eventually(t, 10*time.Second, "config reloaded", reloaded(1))
	var decision bustest.Event
	bustest.Eventually(t, 10*time.Second, "a decision for 4 workers", func() bool {
		for _, e := range out.OfType(domain.TypeDecision) {
			if e.Decide.Pool == "main" && e.Decide.Desired == 4 {
				decision = e
				return true
			}
		}
		return false
	})
	var creates []bustest.Event
	bustest.Eventually(t, 10*time.Second, "3 provisioning events after the reload", func() bool {
		creates = nil
		for _, e := range out.OfType(bustest.Lifecycle(domain.LifecycleProvisioning)) {
			if e.At.After(written) {
				creates = append(creates, e)
			}
		}
		return len(creates) == 3
	})
	for _, e := range creates {
		// One reconcile publishes its decision and its creates with the
		// same instant.
		if !e.At.Equal(decision.At) {
			t.Errorf("create at %v, decision at %v: not in the same reconcile", e.At, decision.At)
		}
	}
	took := logs.Entry("config reloaded")["took"]
	t.Logf("raise max_workers 1 -> 4: reload (read, validate, apply) took %s; file written -> decision and its 3 creates, in one reconcile, %v",
		took, decision.At.Sub(written).Round(time.Millisecond))
	bustest.Eventually(t, 60*time.Second, "4 workers running 4 jobs", func() bool { return running("main") == 4 && started("main") == 4 })

	// 3. max_workers 4 -> 1 with 4 busy workers: none is stopped while its
	// job runs.
	cfg.Pools[0].MaxWorkers = 1
	writeConfigFile(t, path, cfg)
	bustest.Eventually(t, 10*time.Second, "config reloaded", reloaded(2))
	if n := len(out.OfType(bustest.Lifecycle(domain.LifecycleDraining))); n != 0 {
		t.Fatalf("%d workers drained right after lowering max_workers with all busy", n)
	}

	// 4. A broken file: refused, the daemon keeps max_workers 1.
	if err := os.WriteFile(path, []byte("name: "+owner+"\npools:\n  - name: main\n    max_workers: many\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "reload rejected", func() bool {
		return testutil.ToFloat64(a.m.ConfigReloads.WithLabelValues(metrics.ReloadRejected)) == 1
	})
	if !strings.Contains(fmt.Sprint(logs.Entry("config reload refused: the new config is invalid; the running config stays in force")["problems"]), "max_workers") {
		t.Error("the refusal does not name max_workers")
	}
	if !a.Ready() || testutil.ToFloat64(a.m.MaxWorkers.WithLabelValues("main")) != 1 {
		t.Errorf("after a broken file: ready %v, max_workers %v; want the old config", a.Ready(), testutil.ToFloat64(a.m.MaxWorkers.WithLabelValues("main")))
	}

	// 5. A pool added, with jobs queued for it before it existed.
	jobs.Queued("extra", "x0", map[string]string{"duration": "8s"})
	jobs.Queued("extra", "x1", map[string]string{"duration": "8s"})
	cfg.Pools = []config.Pool{cfg.Pools[0], pool("extra", 2)}
	writeConfigFile(t, path, cfg)
	bustest.Eventually(t, 10*time.Second, "config reloaded", reloaded(3))
	bustest.Eventually(t, 60*time.Second, "the added pool runs its 2 early jobs", func() bool { return started("extra") == 2 })

	// 6. The pool removed while its 2 workers are busy.
	cfg.Pools = cfg.Pools[:1]
	writeConfigFile(t, path, cfg)
	bustest.Eventually(t, 10*time.Second, "config reloaded", reloaded(4))
	bustest.Eventually(t, 90*time.Second, "the removed pool gone, with its workers", func() bool {
		for _, s := range a.Status() {
			if s.Pool == "extra" {
				return false
			}
		}
		return running("extra") == 0 && running("main") == 0
	})

	// No worker, of either pool, was drained while a job of it ran.
	lastFinish := map[string]time.Time{}
	for _, e := range jobEv.OfType(domain.TypeJobFinished) {
		lastFinish[e.Job.WorkerID] = e.At
	}
	if n := len(lastFinish); n != 6 {
		t.Errorf("%d workers finished jobs, want 6 (every job ran to its end)", n)
	}
	for _, e := range out.OfType(bustest.Lifecycle(domain.LifecycleDraining)) {
		f, ok := lastFinish[e.Worker.WorkerID]
		if !ok || e.At.Before(f) {
			t.Errorf("worker %s (pool %s) drained at %v, its last job finished at %v", e.Worker.WorkerID, e.Worker.Pool, e.At, f)
		}
	}
	if n := len(out.OfType(bustest.Lifecycle(domain.LifecycleFailed))); n != 0 {
		t.Errorf("%d workers failed", n)
	}
}
