package kubernetes_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// Issue 15's real benchmark: 30 workers across two tiers against the
// same 30 on Kubernetes alone.
const (
	tierWorkersWanted = 30
	tierDockerMax     = 10 // the Docker tier's max_workers; the Kubernetes tier takes the other 20
	tierRounds        = 5  // rounds of each way, interleaved
)

// BenchmarkTiersScaleUp measures, in the same run, the time from 30
// job.queued events published on the daemon's bus to 30 workers running,
// counted from the providers' backends (the Docker engine's container
// start events and the pods' Running and Ready, seen by an informer),
// two ways in alternation, tierRounds rounds each, a fresh daemon every
// round:
//
//   - two-tiers: a pool with a Docker tier (max_workers 10, the local
//     engine, a sleeper image) and then a Kubernetes tier (20 pods on the
//     test control plane: kube-apiserver, etcd, kube-scheduler, kwok);
//   - kubernetes-alone (the reference): the same pool on Kubernetes only,
//     30 pods.
//
// Both have max_concurrent_provisioning 30 and the same resources. It
// reports each way's median, min and max seconds, and for two-tiers also
// the times to the last container and to the last pod. kwok's pods go
// Running without pulling or starting anything, while the containers are
// real: the Kubernetes side is the control plane's cost alone. Run it with
//
//	REQUIRE_K8S=1 REQUIRE_DOCKER=1 go test -run '^$' -bench BenchmarkTiersScaleUp -benchtime 1x ./internal/providers/kubernetes/
func BenchmarkTiersScaleUp(b *testing.B) {
	c := cluster(b)
	cli := dockertest.Client(b)
	sleeperImage(b)
	for range b.N {
		var tiers, alone, tierCtrs, tierPods []time.Duration
		for round := range tierRounds {
			ways := []func(){
				func() {
					r := tiersRound(b, c, cli, round, true)
					tiers, tierCtrs, tierPods = append(tiers, r.all), append(tierCtrs, r.containers), append(tierPods, r.pods)
				},
				func() { alone = append(alone, tiersRound(b, c, cli, round, false).all) },
			}
			if round%2 == 1 { // alternate which way goes first
				slices.Reverse(ways)
			}
			for _, way := range ways {
				way()
			}
		}
		for _, w := range []struct {
			name string
			d    []time.Duration
		}{{"two-tiers", tiers}, {"kubernetes-alone", alone}, {"two-tiers-containers", tierCtrs}, {"two-tiers-pods", tierPods}} {
			slices.Sort(w.d)
			b.ReportMetric(w.d[len(w.d)/2].Seconds(), w.name+"-median-s")
			b.ReportMetric(w.d[0].Seconds(), w.name+"-min-s")
			b.ReportMetric(w.d[len(w.d)-1].Seconds(), w.name+"-max-s")
			b.Logf("%s: 0 -> %d workers in %v (sorted, %d rounds)", w.name, tierWorkersWanted, w.d, len(w.d))
		}
	}
}

// roundTimes are one round's times from the first queued event: to the
// last worker running, the last container, the last pod.
type roundTimes struct{ all, containers, pods time.Duration }

// tiersRound runs one daemon from 30 queued jobs to 30 running workers,
// on two tiers or on Kubernetes alone, and cleans up.
func tiersRound(b *testing.B, c *k8scluster.Cluster, cli *client.Client, round int, twoTiers bool) roundTimes {
	b.Helper()
	way := map[bool]string{true: "tiers", false: "alone"}[twoTiers]
	ns := namespace(b, c, "bench-"+way)
	owner := dockertest.UniqueName("bench-" + way)
	var pool config.Pool
	if twoTiers {
		pool = tieredPool(b, c, "ci", ns, "", tierDockerMax, tierWorkersWanted-tierDockerMax)
	} else {
		pool = k8sPool(c, "ci", ns)
		pool.MaxWorkers = tierWorkersWanted
		pool.IdleWorkers = config.IdleWorkers{Count: 0}
	}
	pool.MaxConcurrentProvisioning = tierWorkersWanted
	pool.IdleTimeout = config.Fixed(time.Hour)
	pool.Resources = domain.Resources{CPUMillis: 250, MemoryMB: 64}
	cfg := daemonConfig(b, owner, pool)
	cfg.Log.Level = "warn"
	d := startDaemon(b, cfg)
	_, js := bustest.Connect(b, d.app.BusURL())
	jobs := bustest.NewJobs(b, js)
	pods := recordPods(b, c.Clientset(), ns, owner)
	ctrs := recordStarts(b, cli, owner)

	start := time.Now()
	for i := range tierWorkersWanted {
		jobs.Queued("ci", fmt.Sprint("job-", i), nil)
	}
	eventually(b, 3*time.Minute, fmt.Sprint(tierWorkersWanted, " workers running"), func() string {
		if n, m := ctrs.count(), pods.runningCount(); n+m < tierWorkersWanted {
			return fmt.Sprintf("%d containers, %d pods", n, m)
		}
		return ""
	})
	var rt roundTimes
	if l := pods.lastRunning(); !l.IsZero() {
		rt.pods = l.Sub(start)
	}
	if l := ctrs.last(); !l.IsZero() {
		rt.containers = l.Sub(start)
	}
	rt.all = max(rt.pods, rt.containers)
	b.Logf("round %d %s: %d containers + %d pods running in %s (last container %s, last pod %s)", round, way, ctrs.count(), pods.runningCount(),
		rt.all.Round(time.Millisecond), rt.containers.Round(time.Millisecond), rt.pods.Round(time.Millisecond))
	if twoTiers && ctrs.count() != tierDockerMax {
		b.Errorf("two tiers: %d containers, want the Docker tier's %d", ctrs.count(), tierDockerMax)
	}
	if !twoTiers && ctrs.count() != 0 {
		b.Errorf("kubernetes alone: %d containers, want 0", ctrs.count())
	}
	d.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dockertest.RemoveContainers(ctx, cli, domain.LabelOwner+"="+owner); err != nil {
		b.Errorf("removing the round's containers: %v", err)
	}
	teardown(b, c, ns)
	return rt
}

// containerStarts records when the Docker engine says each of an owner's
// containers started (its event stream, from a second before the
// recording began, so no start is missed; the engine's own timestamps,
// on this machine's clock).
type containerStarts struct {
	mu      sync.Mutex
	started map[string]time.Time
}

func recordStarts(t testing.TB, cli *client.Client, owner string) *containerStarts {
	t.Helper()
	r := &containerStarts{started: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	msgs, errs := cli.Events(ctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", string(events.ActionStart)),
		filters.Arg("label", domain.LabelOwner+"="+owner))})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				at := time.Unix(0, m.TimeNano)
				r.mu.Lock()
				if _, ok := r.started[m.Actor.ID]; !ok {
					r.started[m.Actor.ID] = at
				}
				r.mu.Unlock()
			case err := <-errs:
				if ctx.Err() == nil {
					t.Errorf("docker events: %v", err)
				}
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *containerStarts) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started)
}

func (r *containerStarts) last() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l time.Time
	for _, at := range r.started {
		if at.After(l) {
			l = at
		}
	}
	return l
}
