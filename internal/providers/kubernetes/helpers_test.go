package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// One control plane for the whole package (started by the first test
// that needs it); every test works in namespaces and under an owner name
// of its own, so they run in parallel.
func TestMain(m *testing.M) { k8scluster.SharedMain(m) }

// cluster returns the package's control plane. Like every test that needs
// it, it skips when its binaries are missing (unless REQUIRE_K8S=1), and
// in -short mode (unless REQUIRE_K8S=1), so `go test -short` runs only the
// unit tests of this package.
func cluster(t testing.TB) *k8scluster.Cluster {
	t.Helper()
	if testing.Short() && os.Getenv(k8scluster.EnvRequire) != "1" {
		t.Skip("needs the Kubernetes control plane; skipped in -short mode")
	}
	return k8scluster.Shared(t)
}

// testImage is what the worker pods run: kwok never pulls it.
const testImage = "registry.invalid/hodei-worker:test"

// ctxT is a context that ends after d or with the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testLogger logs at info (debug with HODEI_TEST_DEBUG=1) into the test's
// output, shown on failure or with -v.
func testLogger(t testing.TB) zerolog.Logger {
	lvl := zerolog.InfoLevel
	if os.Getenv("HODEI_TEST_DEBUG") == "1" {
		lvl = zerolog.DebugLevel
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(lvl).With().Timestamp().Logger()
}

// namespace creates a namespace of a unique name. Its pods are deleted at
// the end of the test (the harness has no controller-manager, so the
// namespace itself would stay Terminating: it is left in place).
func namespace(t testing.TB, c *k8scluster.Cluster, prefix string) string {
	t.Helper()
	name := dockertest.UniqueName(prefix)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.Clientset().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() { deleteAllPods(t, c.Clientset(), name) })
	return name
}

// deleteAllPods removes every pod of a namespace at once.
func deleteAllPods(t testing.TB, cs k8s.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		t.Logf("deleting the pods of %s: %v", ns, err)
	}
}

// newProvider builds a provider for a fresh owner in namespace ns, on the
// cluster's admin kubeconfig unless k.Kubeconfig is set by mutate. It
// returns the owner name too.
func newProvider(t testing.TB, c *k8scluster.Cluster, ns string, mutate func(*kprov.Config)) (*kprov.Provider, string) {
	t.Helper()
	k := config.PoolDefaults().Kubernetes
	k.Kubeconfig = c.KubeconfigPath()
	k.Namespace = ns
	k.Image = testImage
	cfg := kprov.Config{
		Owner:      dockertest.UniqueName("kprov"),
		Pool:       "p1",
		Kubernetes: k,
		Resources:  domain.Resources{CPUMillis: 100, MemoryMB: 32},
		Env:        map[string]string{"HODEI_NATS_URL": "nats://127.0.0.1:4222"},
		Slots:      1,
		StopGrace:  time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := kprov.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("kubernetes.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, cfg.Owner
}

// eventually polls cond every 20 ms until it returns "" or timeout
// passes; the last message says what was still missing.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownerSelector selects the pods of one autoscaler.
func ownerSelector(owner string) string { return domain.LabelOwner + "=" + owner }

// pods lists the pods of one owner in a namespace.
func pods(t testing.TB, cs k8s.Interface, ns, owner string) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: ownerSelector(owner)})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	return l.Items
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countRunning says how many of ps are Running and Ready.
func countRunning(ps []corev1.Pod) int {
	n := 0
	for i := range ps {
		if podReady(&ps[i]) {
			n++
		}
	}
	return n
}

// podEvents records what happens to the pods of one owner, by pod name:
// creations, deletions (requested or done), and when each first ran. It
// follows them with an informer, not a bare watch: the API server may end
// any watch (it does, under a burst of 200 pods, for a watcher it finds
// slow), and the informer re-lists and watches again without losing track.
type podEvents struct {
	mu      sync.Mutex
	added   []time.Time
	addedBy map[string]time.Time
	deleted map[string]bool // deletion requested (deletionTimestamp) or done
	running map[string]time.Time
}

func recordPods(t testing.TB, cs k8s.Interface, ns, owner string) *podEvents {
	t.Helper()
	r := &podEvents{addedBy: map[string]time.Time{}, deleted: map[string]bool{}, running: map[string]time.Time{}}
	inf := coreinformers.NewFilteredPodInformer(cs, ns, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = ownerSelector(owner)
	})
	see := func(obj any, gone bool) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if d, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
				pod, ok = d.Obj.(*corev1.Pod)
			}
			if !ok {
				return
			}
		}
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, seen := r.addedBy[pod.Name]; !seen && !gone {
			r.addedBy[pod.Name] = now
			r.added = append(r.added, now)
		}
		if gone || pod.DeletionTimestamp != nil {
			r.deleted[pod.Name] = true
		}
		if _, ok := r.running[pod.Name]; !ok && !gone && podReady(pod) {
			r.running[pod.Name] = now
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { see(obj, false) },
		UpdateFunc: func(_, obj any) { see(obj, false) },
		DeleteFunc: func(obj any) { see(obj, true) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); inf.RunWithContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !cache.WaitForCacheSync(ctxT(t, 30*time.Second).Done(), inf.HasSynced) {
		t.Fatalf("pod informer for %s did not sync", ns)
	}
	return r
}

func (r *podEvents) wasDeleted(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deleted[name]
}

func (r *podEvents) creations() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.added...)
}

// daemonConfig is a daemon on an embedded NATS (free port, temporary
// store) with fast reconcile settings and the given pools.
func daemonConfig(t testing.TB, owner string, pools ...config.Pool) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Name = owner
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()}
	cfg.Reconcile.Interval = config.Duration(200 * time.Millisecond)
	cfg.Reconcile.ResyncInterval = config.Duration(time.Second)
	cfg.Reconcile.ProviderTimeout = config.Duration(10 * time.Second)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	cfg.Pools = pools
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	return cfg
}

// k8sPool is a kubernetes pool on the test cluster: one job per worker,
// quick idle timeout and grace period.
func k8sPool(c *k8scluster.Cluster, name, ns string) config.Pool {
	p := config.PoolDefaults()
	p.Name = name
	p.Provider = "kubernetes"
	p.MaxWorkers = 10
	p.JobsPerWorker = 1
	p.IdleTimeout = config.Fixed(time.Second)
	p.ProvisionTimeout = config.Duration(30 * time.Second)
	p.StopGracePeriod = config.Duration(time.Second)
	p.DrainTimeout = config.Duration(90 * time.Second) // the pods' terminationGracePeriodSeconds
	p.MaxConcurrentProvisioning = 10
	p.Env = map[string]string{"HODEI_NATS_URL": "nats://127.0.0.1:4222"}
	p.Resources = domain.Resources{CPUMillis: 250, MemoryMB: 64}
	p.Kubernetes.Kubeconfig = c.KubeconfigPath()
	p.Kubernetes.Namespace = ns
	p.Kubernetes.Image = testImage
	return p
}

type daemon struct {
	app  *app.App
	stop func()
}

// startDaemon runs the whole daemon (real providers from the factory)
// until the end of the test, and waits for /readyz.
func startDaemon(t testing.TB, cfg config.Config) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := testLogger(t)
	if l, err := zerolog.ParseLevel(cfg.Log.Level); err == nil && l > log.GetLevel() {
		log = log.Level(l) // benchmarks ask for warn: 200 workers log a lot
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		cancel()
		t.Fatalf("starting daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	d := &daemon{app: a}
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("daemon did not stop within 30s")
			}
		})
	}
	t.Cleanup(d.stop)
	eventually(t, 30*time.Second, "daemon ready", func() string {
		if a.Ready() {
			return ""
		}
		return fmt.Sprintf("%+v", a.Status())
	})
	return d
}

// isForbidden reports an RBAC refusal anywhere in err's chain.
func isForbidden(err error) bool {
	return err != nil && (apierrors.IsForbidden(err) || strings.Contains(err.Error(), "forbidden"))
}
