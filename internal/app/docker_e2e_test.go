package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// dockerDaemon is a whole daemon on the real Docker engine and an embedded
// NATS, with a docker pool running the example worker image.
type dockerDaemon struct {
	*running
	cli   *client.Client
	owner string
	pool  domain.PoolName
	jobs  *bustest.Jobs
	out   *bustest.Collector // HODEI_WORKERS
	jobEv *bustest.Collector // HODEI_JOBS
}

func startDockerDaemon(t *testing.T, mod func(*config.Pool)) *dockerDaemon {
	t.Helper()
	cli := dockertest.Client(t)
	image := dockertest.WorkerImage(t)
	owner := dockertest.UniqueName("e2e")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	port := bustest.FreePort(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Name = owner
	cfg.NATS.Embedded.Port = port
	p := cfg.Pools[0]
	p.Name = "e2e"
	p.Provider = "docker"
	p.Docker.Image = image
	p.Docker.PullPolicy = "never"
	p.Docker.NetworkMode = "host" // the workers reach the embedded NATS on 127.0.0.1
	p.Docker.ReadOnlyRootfs = true
	p.Env = map[string]string{"HODEI_NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", port), "E2E_MARKER": owner}
	p.Resources = domain.Resources{CPUMillis: 250, MemoryMB: 64}
	p.StopGracePeriod = config.Duration(10 * time.Second)
	if mod != nil {
		mod(&p)
	}
	cfg.Pools[0] = p
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	if !testing.Verbose() {
		log = zerolog.New(io.Discard)
	}
	provs := map[string]providers.Provider{}
	for _, pc := range cfg.Pools {
		prov, err := factory.New(cfg.Name, pc, log)
		if err != nil {
			t.Fatal(err)
		}
		provs[pc.Name] = prov
	}
	d := &dockerDaemon{running: startApp(t, cfg, provs, log), cli: cli, owner: owner, pool: "e2e"}
	bustest.Eventually(t, 20*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	d.jobs = bustest.NewJobs(t, js)
	d.out = bustest.Collect(t, js)
	d.jobEv = bustest.CollectStream(t, js, events.StreamJobs)
	return d
}

// containers lists this daemon's worker containers as the engine sees them.
func (d *dockerDaemon) containers(t *testing.T) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", domain.LabelOwner+"="+d.owner))})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	return cs
}

func runningContainers(cs []container.Summary) int {
	n := 0
	for _, c := range cs {
		if c.State == "running" {
			n++
		}
	}
	return n
}

// The end-to-end scenario on the machine's Docker engine: 6 jobs at
// 2 per worker make exactly 3 containers with the contract's labels, env
// and limits; the example workers run the jobs; idle workers go away after
// idle_timeout and busy ones are never stopped.
func TestDockerEndToEnd(t *testing.T) {
	d := startDockerDaemon(t, func(p *config.Pool) {
		p.JobsPerWorker = 2
		p.IdleWorkers = config.IdleWorkers{}
		p.MinWorkers = 0
		p.IdleTimeout = config.Fixed(2 * time.Second)
	})
	for i := range 6 {
		// Jobs of unequal length, so some workers idle while others are busy.
		d.jobs.Queued(d.pool, fmt.Sprint("job-", i), map[string]string{"duration": fmt.Sprintf("%ds", 2+2*(i%3))})
	}

	peak := 0
	bustest.Eventually(t, 60*time.Second, "3 running workers", func() bool {
		cs := d.containers(t)
		peak = max(peak, len(cs))
		return runningContainers(cs) == 3
	})
	cs := d.containers(t)
	if len(cs) != 3 {
		t.Fatalf("%d containers for 6 jobs at 2 per worker, want exactly 3", len(cs))
	}
	for _, c := range cs {
		in, err := d.cli.ContainerInspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		id := in.Config.Labels[domain.LabelWorkerID]
		want := map[string]string{domain.LabelWorker: "true", domain.LabelWorkerPool: "e2e", domain.LabelOwner: d.owner}
		for k, v := range want {
			if in.Config.Labels[k] != v {
				t.Errorf("label %s = %q, want %q", k, in.Config.Labels[k], v)
			}
		}
		if in.Name != "/"+domain.WorkerName(domain.WorkerID(id)) {
			t.Errorf("container name %s, want %s", in.Name, domain.WorkerName(domain.WorkerID(id)))
		}
		for _, e := range []string{"HODEI_WORKER_ID=" + id, "HODEI_WORKER_POOL=e2e", "HODEI_WORKER_SLOTS=2", "E2E_MARKER=" + d.owner} {
			if !slices.Contains(in.Config.Env, e) {
				t.Errorf("env lacks %s: %v", e, in.Config.Env)
			}
		}
		if in.HostConfig.NanoCPUs != 250_000_000 || in.HostConfig.Memory != 64<<20 {
			t.Errorf("limits: NanoCPUs %d Memory %d, want 250000000 and %d", in.HostConfig.NanoCPUs, in.HostConfig.Memory, 64<<20)
		}
		if !in.HostConfig.ReadonlyRootfs || in.HostConfig.Privileged || !slices.Contains(in.HostConfig.CapDrop, "ALL") {
			t.Errorf("security: readonly %v privileged %v capdrop %v", in.HostConfig.ReadonlyRootfs, in.HostConfig.Privileged, in.HostConfig.CapDrop)
		}
	}

	// The example workers run the six jobs.
	bustest.Eventually(t, 60*time.Second, "6 finished jobs", func() bool {
		return len(d.jobEv.OfType(domain.TypeJobFinished)) == 6
	})
	// Then every worker goes, down to min_workers 0.
	bustest.Eventually(t, 60*time.Second, "all workers stopped", func() bool {
		cs := d.containers(t)
		peak = max(peak, len(cs))
		return len(cs) == 0
	})
	if peak > 3 {
		t.Errorf("saw %d containers at once, want at most 3", peak)
	}
	// The containers are gone before the daemon has published that they
	// are: wait for the events.
	bustest.Eventually(t, 30*time.Second, "3 stopped events", func() bool {
		return len(d.out.OfType(bustest.Lifecycle(domain.LifecycleStopped))) >= 3
	})

	// No worker was drained while it ran a job: each worker's draining
	// event comes after the finished event of every job it started.
	lastFinish := map[string]time.Time{}
	for _, e := range d.jobEv.OfType(domain.TypeJobFinished) {
		if e.Job.WorkerID == "" {
			t.Errorf("finished without worker_id: %+v", e)
		}
		lastFinish[e.Job.WorkerID] = e.At
	}
	started := d.jobEv.OfType(domain.TypeJobStarted)
	if len(started) != 6 {
		t.Errorf("%d started events, want 6", len(started))
	}
	drained := d.out.OfType(bustest.Lifecycle(domain.LifecycleDraining))
	if len(drained) != 3 {
		t.Errorf("%d draining events, want 3", len(drained))
	}
	for _, e := range drained {
		if f, ok := lastFinish[e.Worker.WorkerID]; ok && e.At.Before(f) {
			t.Errorf("worker %s drained at %v while a job ran until %v", e.Worker.WorkerID, e.At, f)
		}
	}
	if n := len(d.out.OfType(bustest.Lifecycle(domain.LifecycleStopped))); n != 3 {
		t.Errorf("%d stopped events, want 3", n)
	}
	if n := len(d.out.OfType(bustest.Lifecycle(domain.LifecycleReady))); n != 3 {
		t.Errorf("%d ready events, want 3", n)
	}
}

// A container killed by hand is reported failed, with the reason, and
// replaced while its jobs still need a worker.
func TestDockerKilledWorkerIsReportedAndReplaced(t *testing.T) {
	d := startDockerDaemon(t, func(p *config.Pool) {
		p.JobsPerWorker = 2
		p.IdleTimeout = config.Fixed(time.Second)
	})
	d.jobs.Queued(d.pool, "long-1", map[string]string{"duration": "5m"})
	d.jobs.Queued(d.pool, "long-2", map[string]string{"duration": "5m"})
	var victim string
	bustest.Eventually(t, 60*time.Second, "both jobs started on one worker", func() bool {
		st := d.jobEv.OfType(domain.TypeJobStarted)
		if len(st) < 2 {
			return false
		}
		victim = st[0].Job.WorkerID
		return st[1].Job.WorkerID == victim
	})
	if err := d.cli.ContainerKill(context.Background(), domain.WorkerName(domain.WorkerID(victim)), "SIGKILL"); err != nil {
		t.Fatalf("killing the worker: %v", err)
	}
	var failed bustest.Event
	bustest.Eventually(t, 30*time.Second, "failed event for the killed worker", func() bool {
		for _, e := range d.out.OfType(bustest.Lifecycle(domain.LifecycleFailed)) {
			if e.Worker.WorkerID == victim {
				failed = e
				return true
			}
		}
		return false
	})
	if !strings.Contains(failed.Worker.Reason, "137") {
		t.Errorf("failed reason %q does not carry the exit code 137", failed.Worker.Reason)
	}
	bustest.Eventually(t, 60*time.Second, "a replacement worker", func() bool {
		cs := d.containers(t)
		return len(cs) == 1 && cs[0].Labels[domain.LabelWorkerID] != victim && cs[0].State == "running"
	})
	if s := pool(t, d.app, "e2e"); s.Pending+s.Running != 2 {
		t.Errorf("demand after the kill: pending %d running %d, want the 2 jobs", s.Pending, s.Running)
	}
	// The scheduler gives up on the jobs; the replacement goes away.
	d.jobs.Finished(d.pool, "long-1", "")
	d.jobs.Finished(d.pool, "long-2", "")
	bustest.Eventually(t, 60*time.Second, "no workers left", func() bool { return len(d.containers(t)) == 0 })
}
