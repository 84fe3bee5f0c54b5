package kubernetes_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// scaleUpPods is the size of the scale-up measured.
const scaleUpPods = 200

// benchResources are every pod's requests and limits, in all three ways:
// 200 of them fit the harness's kwok node (32 CPUs, 256Gi).
var benchResources = domain.Resources{CPUMillis: 100, MemoryMB: 64}

// BenchmarkKubernetesScaleUp scales a kubernetes pool from 0 to 200 pods
// Running on the test control plane (kube-apiserver, kube-scheduler, kwok
// for the kubelets), three ways in the same run:
//
//   - daemon: the whole daemon, from 200 job.queued events published on
//     its bus to 200 pods Running and Ready (max_concurrent_provisioning
//     200, the pool's default qps 100 / burst 200, reconcile's default 64
//     provider calls at once);
//   - provider: the provider alone, 200 Creates with 64 at a time;
//   - client-go-default-qps: a plain loop of 200 pod creates with
//     client-go's default rate limit (qps 5, burst 10).
//
// Each reports pods/s (200 / time to the last pod Running) and s/scale-up;
// the last two also s/creates, the time their create calls took. Run it with
//
//	REQUIRE_K8S=1 go test -run '^$' -bench BenchmarkKubernetesScaleUp -benchtime 1x ./internal/providers/kubernetes/
func BenchmarkKubernetesScaleUp(b *testing.B) {
	c := cluster(b)
	b.Run("daemon", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			benchDaemon(b, c)
		}
	})
	b.Run("provider", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			benchProvider(b, c)
		}
	})
	b.Run("client-go-default-qps", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			benchClientGo(b, c)
		}
	})
}

// report waits for scaleUpPods Running pods of owner in ns, counted from
// start, and reports the rate.
func report(b *testing.B, rec *podEvents, start time.Time) {
	b.Helper()
	eventually(b, 5*time.Minute, fmt.Sprint(scaleUpPods, " pods Running"), func() string {
		if n := rec.runningCount(); n < scaleUpPods {
			return fmt.Sprint(n, " Running")
		}
		return ""
	})
	b.StopTimer()
	last := rec.lastRunning()
	took := last.Sub(start)
	b.ReportMetric(float64(scaleUpPods)/took.Seconds(), "pods/s")
	b.ReportMetric(took.Seconds(), "s/scale-up")
	b.Logf("0 -> %d pods Running in %s (%.1f pods/s)", scaleUpPods, took.Round(time.Millisecond), float64(scaleUpPods)/took.Seconds())
}

func benchDaemon(b *testing.B, c *k8scluster.Cluster) {
	ns := namespace(b, c, "bench-daemon")
	owner := dockertest.UniqueName("bench")
	pool := k8sPool(c, "k8s", ns)
	pool.MaxWorkers = scaleUpPods
	pool.MaxConcurrentProvisioning = scaleUpPods
	pool.IdleTimeout = config.Fixed(time.Hour)
	pool.ProvisionTimeout = config.Duration(5 * time.Minute)
	pool.Resources = benchResources // 200 x 250m would not fit the kwok node's 32 CPUs
	cfg := daemonConfig(b, owner, pool)
	cfg.Log.Level = "warn"
	d := startDaemon(b, cfg)
	_, js := bustest.Connect(b, d.app.BusURL())
	jobs := bustest.NewJobs(b, js)
	rec := recordPods(b, c.Clientset(), ns, owner)

	b.StartTimer()
	start := time.Now()
	for i := range scaleUpPods {
		jobs.Queued("k8s", fmt.Sprint("job-", i), nil)
	}
	report(b, rec, start)
	d.stop()
	teardown(b, c, ns)
}

func benchProvider(b *testing.B, c *k8scluster.Cluster) {
	ns := namespace(b, c, "bench-prov")
	p, owner := newProvider(b, c, ns, func(cfg *kprov.Config) { cfg.Resources = benchResources })
	rec := recordPods(b, c.Clientset(), ns, owner)
	ctx := ctxT(b, 5*time.Minute)
	if _, err := p.List(ctx); err != nil { // informer synced, as in the daemon
		b.Fatal(err)
	}

	b.StartTimer()
	start := time.Now()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	errs := make(chan error, scaleUpPods)
	for range scaleUpPods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := p.Create(ctx, providers.WorkerSpec{ID: domain.NewWorkerID()}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	created := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	report(b, rec, start)
	b.ReportMetric(created.Seconds(), "s/creates")
	_ = p.Close()
	teardown(b, c, ns)
}

func benchClientGo(b *testing.B, c *k8scluster.Cluster) {
	ns := namespace(b, c, "bench-plain")
	owner := dockertest.UniqueName("plain")
	rc := c.AdminConfig()
	rc.QPS, rc.Burst = 0, 0 // client-go's defaults: 5 per second, bursts of 10
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	rec := recordPods(b, c.Clientset(), ns, owner)
	ctx := ctxT(b, 5*time.Minute)
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(benchResources.CPUMillis, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(benchResources.MemoryMB<<20, resource.BinarySI),
	}

	b.StartTimer()
	start := time.Now()
	for i := range scaleUpPods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("plain-", i), Labels: map[string]string{domain.LabelOwner: owner}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: kprov.WorkerContainer, Image: testImage,
					Resources: corev1.ResourceRequirements{Requests: rl, Limits: rl},
				}},
			},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	created := time.Since(start)
	report(b, rec, start)
	b.ReportMetric(created.Seconds(), "s/creates")
	teardown(b, c, ns)
}

// teardown deletes the run's 200 pods and lets the scheduler and kwok
// digest the deletions, so the next way measured does not pay for them.
func teardown(b *testing.B, c *k8scluster.Cluster, ns string) {
	deleteAllPods(b, c.Clientset(), ns)
	time.Sleep(3 * time.Second)
}

func (r *podEvents) runningCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

func (r *podEvents) lastRunning() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, at := range r.running {
		if at.After(last) {
			last = at
		}
	}
	return last
}
