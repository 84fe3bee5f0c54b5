package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// runForeign starts a sleeper container by hand, named like worker id,
// with the given labels, and removes it at test end.
func runForeign(t *testing.T, cli *client.Client, image string, id domain.WorkerID, labels map[string]string) string {
	t.Helper()
	name := domain.WorkerName(id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: labels},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return name
}

// Ownership on the real engine, whole daemon: a container labelled as a
// worker of the same pool but of another autoscaler, and a container with
// no labels at all, both named like workers, are never listed, counted,
// stopped or deleted by a running daemon through a full scale-up and
// scale-down cycle (and the daemon's start, when it adopts what it finds).
func TestForeignContainersSurvive(t *testing.T) {
	t.Parallel()
	cli := dockertest.Client(t)
	image := sleeperImage(t)
	owner := dockertest.UniqueName("faults-own")
	other := dockertest.UniqueName("faults-other")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	const pool = "own"
	// Another autoscaler's worker of a pool with the same name.
	foreignID := domain.NewWorkerID()
	foreignName := runForeign(t, cli, image, foreignID, domain.WorkerLabels(other, pool, foreignID))
	// A container named like a worker, without any label.
	plainName := runForeign(t, cli, image, domain.NewWorkerID(), nil)
	before := map[string]container.InspectResponse{}
	for _, n := range []string{foreignName, plainName} {
		in, err := cli.ContainerInspect(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = in
	}

	cfg := baseConfig(t, owner)
	p := workerPool(t, pool, fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port))
	p.IdleTimeout = config.Fixed(time.Second)
	// No warm buffer: the peak counted must be the 3 jobs' workers, not
	// one more that idle_workers auto may keep ready (seen in CI: 4).
	p.IdleWorkers = config.IdleWorkers{Count: 0}
	cfg.Pools = []config.Pool{p}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)
	if st, _ := pools(d.url("/v1/pools")); st[pool].total() != 0 {
		t.Fatalf("the daemon counts %d workers before any job: it adopted a container it does not own", st[pool].total())
	}

	peak := 0
	for i := range 3 {
		jobs.Queued(pool, fmt.Sprint("job-", i), map[string]string{"duration": "2s"})
	}
	bustest.Eventually(t, 60*time.Second, "3 jobs finished", func() bool {
		if st, ok := pools(d.url("/v1/pools")); ok {
			peak = max(peak, st[pool].total())
		}
		return jobTruth(t, js, pool).Finished == 3
	})
	bustest.Eventually(t, 60*time.Second, "scaled back to 0", func() bool {
		if st, ok := pools(d.url("/v1/pools")); ok {
			peak = max(peak, st[pool].total())
		}
		return len(owned(t, cli, owner)) == 0
	})
	if peak > 3 {
		t.Errorf("the daemon counted %d workers for 3 jobs: it counted containers it does not own", peak)
	}
	for _, e := range out.Events() {
		if e.Worker.WorkerID == string(foreignID) {
			t.Errorf("the daemon published %s about the other autoscaler's worker", e.Type)
		}
	}
	for n, was := range before {
		in, err := cli.ContainerInspect(context.Background(), n)
		if err != nil {
			t.Errorf("%s is gone: %v", n, err)
			continue
		}
		if in.ID != was.ID || !in.State.Running || in.State.StartedAt != was.State.StartedAt || in.RestartCount != 0 {
			t.Errorf("%s was touched: running %v, started %s (was %s)", n, in.State.Running, in.State.StartedAt, was.State.StartedAt)
		}
	}
}
