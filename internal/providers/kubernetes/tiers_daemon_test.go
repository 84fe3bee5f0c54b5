package kubernetes_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// sleeperImage is a Docker image whose container runs until stopped: the
// Docker tier's workers (jobs are driven by the test's events).
func sleeperImage(t testing.TB) string {
	t.Helper()
	const tag = "hodei-tiers-test-sleeper:test"
	sleeper.Do(func() {
		bin := dockertest.BuildGoBinary(t, "./internal/providers/docker/testdata/sleeper")
		dockertest.BuildImage(t, tag, map[string][]byte{
			"Dockerfile": []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n"), "sleeper": bin})
	})
	return tag
}

var sleeper sync.Once

// tieredPool is a pool with a Docker tier (behind host) of dockerMax
// workers, then a Kubernetes tier in ns of k8sMax.
func tieredPool(t testing.TB, c interface{ KubeconfigPath() string }, name, ns, host string, dockerMax, k8sMax int) config.Pool {
	p := config.PoolDefaults()
	p.Name = name
	p.JobsPerWorker = 1
	p.IdleWorkers = config.IdleWorkers{Count: 0}
	p.IdleTimeout = config.Fixed(time.Second)
	p.ProvisionTimeout = config.Duration(30 * time.Second)
	p.StopGracePeriod = config.Duration(time.Second)
	p.MaxConcurrentProvisioning = 20
	p.Resources = domain.Resources{CPUMillis: 250, MemoryMB: 64}
	d, k := config.PoolDefaults().Docker, config.PoolDefaults().Kubernetes
	d.Host, d.Image, d.PullPolicy = host, sleeperImage(t), config.PullNever
	k.Kubeconfig, k.Namespace, k.Image = c.KubeconfigPath(), ns, testImage
	p.Tiers = []config.Tier{
		{Name: "local", Provider: "docker", MaxWorkers: dockerMax, Docker: d, HasDocker: true},
		{Name: "burst", Provider: "kubernetes", MaxWorkers: k8sMax, Kubernetes: k, HasKubernetes: true},
	}
	p.MaxWorkers = dockerMax + k8sMax
	p.Provider = "docker"
	return p
}

// tierWorkers lists a pool's live workers on both tiers from the providers'
// backends (not from the daemon): container and pod worker ids.
type tierWorkers struct {
	cli   *client.Client
	admin k8s.Interface
	ns    string
	owner string
}

func (tw tierWorkers) containers(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := tw.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", domain.LabelOwner+"="+tw.owner), filters.Arg("label", domain.LabelWorkerTier+"=local"))})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	var ids []string
	for _, c := range cs {
		if c.State == "running" {
			ids = append(ids, c.Labels[domain.LabelWorkerID])
		}
	}
	slices.Sort(ids)
	return ids
}

func (tw tierWorkers) pods(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, p := range pods(t, tw.admin, tw.ns, tw.owner) {
		if p.Labels[domain.LabelWorkerTier] != "burst" {
			t.Errorf("pod %s has tier label %q, want burst", p.Name, p.Labels[domain.LabelWorkerTier])
		}
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			ids = append(ids, p.Labels[domain.LabelWorkerID])
		}
	}
	slices.Sort(ids)
	return ids
}

func TestDaemonTiersSpillDockerToKubernetes(t *testing.T) {
	c := cluster(t)
	cli := dockertest.Client(t)
	admin := c.Clientset()
	ns := namespace(t, c, "tiers")
	owner := dockertest.UniqueName("tiers")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	proxy := engineproxy.New(t)
	cfg := daemonConfig(t, owner, tieredPool(t, c, "ci", ns, proxy.Host(), 3, 9))
	cfg.Reconcile.BreakerFailures = 1
	cfg.Reconcile.BreakerCooldown = config.Duration(time.Second)
	cfg.Reconcile.ProviderTimeout = config.Duration(3 * time.Second)
	d := startDaemon(t, cfg)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	tw := tierWorkers{cli: cli, admin: admin, ns: ns, owner: owner}

	start := time.Now()
	for i := range 12 {
		jobs.Queued("ci", fmt.Sprint("job-", i), nil)
	}
	var ctrs, ps []string
	eventually(t, 60*time.Second, "3 containers and 9 pods running", func() string {
		ctrs, ps = tw.containers(t), tw.pods(t)
		if len(ctrs) == 3 && len(ps) == 9 {
			return ""
		}
		return fmt.Sprintf("%d containers, %d pods", len(ctrs), len(ps))
	})
	t.Logf("12 jobs -> 3 containers + 9 pods running in %s", time.Since(start).Round(time.Millisecond))
	eventually(t, 20*time.Second, "12 idle workers in the daemon", func() string {
		s := d.app.Status()[0]
		if s.Workers["idle"] == 12 && len(s.Tiers) == 2 && s.Tiers[0].Workers["idle"] == 3 && s.Tiers[1].Workers["idle"] == 9 {
			return ""
		}
		return fmt.Sprintf("%+v", s)
	})

	// Every worker takes a job.
	job := map[string]string{} // worker -> job
	for i, id := range append(slices.Clone(ctrs), ps...) {
		j := fmt.Sprint("job-", i)
		job[id] = j
		jobs.Started("ci", j, domain.WorkerID(id))
	}
	eventually(t, 10*time.Second, "12 busy", func() string {
		if s := d.app.Status()[0]; s.Workers["busy"] != 12 {
			return fmt.Sprintf("%v", s.Workers)
		}
		return ""
	})
	// The 3 containers' jobs and 3 pods' jobs finish while 3 new jobs
	// queue: of the 6 idle workers 3 are excess, and they are pods.
	for _, id := range append(slices.Clone(ctrs), ps[:3]...) {
		jobs.Finished("ci", job[id], domain.WorkerID(id))
		delete(job, id)
	}
	for i := 12; i < 15; i++ {
		jobs.Queued("ci", fmt.Sprint("job-", i), nil)
	}
	busyPods := ps[3:]
	eventually(t, 30*time.Second, "3 idle pods stopped, containers kept", func() string {
		got := tw.pods(t)
		if slices.Equal(got, busyPods) && slices.Equal(tw.containers(t), ctrs) {
			return ""
		}
		return fmt.Sprintf("pods %d (want the 6 busy), containers %d", len(got), len(tw.containers(t)))
	})
	time.Sleep(2 * time.Second) // idle_timeout 1s: nothing else goes
	if got, cs := tw.pods(t), tw.containers(t); !slices.Equal(got, busyPods) || !slices.Equal(cs, ctrs) {
		t.Fatalf("after 2s more: pods %v containers %v, want the 6 busy pods and the 3 containers", got, cs)
	}
	for i, id := range ctrs {
		j := fmt.Sprint("job-", 12+i)
		job[id] = j
		jobs.Started("ci", j, domain.WorkerID(id))
	}

	// The Docker engine goes away while jobs queue: the pool bursts into
	// Kubernetes.
	proxy.SetMode(engineproxy.Refuse)
	eventually(t, 20*time.Second, "the docker tier down", func() string {
		s := d.app.Status()[0]
		if len(s.Tiers) == 2 && !s.Tiers[0].ProviderUp && s.Tiers[1].ProviderUp {
			return ""
		}
		return fmt.Sprintf("%+v", s.Tiers)
	})
	outage := time.Now()
	for i := 15; i < 18; i++ {
		jobs.Queued("ci", fmt.Sprint("job-", i), nil)
	}
	eventually(t, 30*time.Second, "3 more pods", func() string {
		if got := tw.pods(t); len(got) == 9 {
			return ""
		}
		return fmt.Sprintf("%d pods", len(tw.pods(t)))
	})
	t.Logf("docker engine unreachable: 3 jobs -> 3 pods in %s", time.Since(outage).Round(time.Millisecond))
	next := 15
	for _, id := range tw.pods(t) {
		if _, ok := job[id]; !ok {
			j := fmt.Sprint("job-", next)
			next++
			job[id] = j
			jobs.Started("ci", j, domain.WorkerID(id))
		}
	}

	// The engine returns; a container finishes its job and one new job
	// queues: it goes to Docker (a container, not a pod).
	proxy.SetMode(engineproxy.Forward)
	eventually(t, 20*time.Second, "the docker tier up", func() string {
		if s := d.app.Status()[0]; s.Tiers[0].ProviderUp {
			return ""
		}
		return "still down"
	})
	podsBefore := len(tw.pods(t))
	gone := ctrs[0]
	jobs.Finished("ci", job[gone], domain.WorkerID(gone))
	delete(job, gone)
	eventually(t, 20*time.Second, "the idle container stopped", func() string {
		if slices.Contains(tw.containers(t), gone) {
			return "still there"
		}
		return ""
	})
	jobs.Queued("ci", "job-back", nil)
	eventually(t, 30*time.Second, "a new container", func() string {
		if cs := tw.containers(t); len(cs) == 3 && !slices.Contains(cs, gone) {
			return ""
		}
		return fmt.Sprintf("containers %v", tw.containers(t))
	})
	if n := len(tw.pods(t)); n != podsBefore {
		t.Errorf("engine back: %d pods, want %d (the new job went to docker)", n, podsBefore)
	}
	// No busy worker was ever stopped: every worker with a job still runs.
	cs, pp := tw.containers(t), tw.pods(t)
	for id := range job {
		if !slices.Contains(cs, id) && !slices.Contains(pp, id) {
			t.Errorf("busy worker %s is gone", id)
		}
	}
	mfs, err := d.app.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["pool"] == "ci" && l["tier"] != "" {
				seen[fmt.Sprintf("%s{%s,%s,%s}", mf.GetName(), l["tier"], l["provider"], l["state"])] = true
			}
		}
	}
	for _, want := range []string{"hodei_autoscaler_tier_workers{local,docker,busy}", "hodei_autoscaler_tier_workers{burst,kubernetes,busy}", "hodei_autoscaler_tier_up{local,docker,}"} {
		if !seen[want] {
			t.Errorf("metrics lack %s (have %v)", want, seen)
		}
	}
}
