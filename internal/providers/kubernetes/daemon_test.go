package kubernetes_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// lifecycle returns the worker lifecycle events of one state for a pool.
func lifecycle(out *bustest.Collector, pool string, s domain.Lifecycle) []bustest.Event {
	var evs []bustest.Event
	for _, e := range out.OfType(bustest.Lifecycle(s)) {
		if e.Worker.Pool == pool {
			evs = append(evs, e)
		}
	}
	return evs
}

func workerIDs(evs []bustest.Event) []string {
	ids := make([]string, 0, len(evs))
	for _, e := range evs {
		ids = append(ids, e.Worker.WorkerID)
	}
	slices.Sort(ids)
	return ids
}

func podIDs(ps []corev1.Pod) []string {
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.Labels[domain.LabelWorkerID])
	}
	slices.Sort(ids)
	return ids
}

// checkWorkerPod checks one worker pod against the contract and the pool.
func checkWorkerPod(t *testing.T, pod *corev1.Pod, owner, pool, ns string) {
	t.Helper()
	id := pod.Labels[domain.LabelWorkerID]
	if _, err := domain.ParseWorkerID(id); err != nil {
		t.Errorf("pod %s: worker id label: %v", pod.Name, err)
	}
	wantLabels := domain.WorkerLabels(owner, domain.PoolName(pool), domain.WorkerID(id))
	for k, v := range wantLabels {
		if pod.Labels[k] != v {
			t.Errorf("pod %s: label %s=%q, want %q", pod.Name, k, pod.Labels[k], v)
		}
	}
	if pod.Name != domain.WorkerName(domain.WorkerID(id)) || pod.Namespace != ns {
		t.Errorf("pod %s/%s: want %s/%s", pod.Namespace, pod.Name, ns, domain.WorkerName(domain.WorkerID(id)))
	}
	s := pod.Spec
	// terminationGracePeriodSeconds: drain_timeout (90s), the longer of
	// it and stop_grace_period (1s), so an eviction lets a busy worker finish.
	if s.RestartPolicy != corev1.RestartPolicyNever || s.TerminationGracePeriodSeconds == nil || *s.TerminationGracePeriodSeconds != 90 {
		t.Errorf("pod %s: restartPolicy %s, terminationGracePeriodSeconds %v", pod.Name, s.RestartPolicy, s.TerminationGracePeriodSeconds)
	}
	if !strings.HasPrefix(s.NodeName, k8scluster.NodeNamePrefix) {
		t.Errorf("pod %s: scheduled on %q", pod.Name, s.NodeName)
	}
	if len(s.Containers) != 1 || s.Containers[0].Name != "worker" {
		t.Fatalf("pod %s: containers %+v", pod.Name, s.Containers)
	}
	c := s.Containers[0]
	if c.Image != testImage || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("pod %s: image %s (%s)", pod.Name, c.Image, c.ImagePullPolicy)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{"HODEI_WORKER_ID": id, "HODEI_WORKER_POOL": pool, "HODEI_WORKER_SLOTS": "1", "HODEI_NATS_URL": "nats://127.0.0.1:4222"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("pod %s: env %s=%q, want %q", pod.Name, k, env[k], v)
		}
	}
	for name, rl := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		if rl.Cpu().String() != "250m" || rl.Memory().String() != "64Mi" {
			t.Errorf("pod %s: %s %v, want cpu 250m memory 64Mi", pod.Name, name, rl)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod %s: securityContext %+v", pod.Name, sc)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("pod %s: automountServiceAccountToken %v", pod.Name, s.AutomountServiceAccountToken)
	}
}

// The whole daemon with a kubernetes pool (jobs_per_worker 1) on a real
// control plane: 5 queued jobs make 5 pods, right in every field,
// scheduled and Running; each is announced ready on the bus; when jobs
// finish, idle_timeout removes the pods, but never the pod of a worker
// still running a job.
func TestDaemonScalesPodsWithJobs(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ns := namespace(t, c, "five")
	owner := dockertest.UniqueName("k8s-five")
	d := startDaemon(t, daemonConfig(t, owner, k8sPool(c, "k8s", ns)))
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)
	rec := recordPods(t, admin, ns, owner)

	start := time.Now()
	for i := range 5 {
		jobs.Queued("k8s", fmt.Sprint("job-", i), nil)
	}
	var ps []corev1.Pod
	eventually(t, 30*time.Second, "5 pods Running", func() string {
		ps = pods(t, admin, ns, owner)
		if len(ps) == 5 && countRunning(ps) == 5 {
			return ""
		}
		return fmt.Sprintf("%d pods, %d Running", len(ps), countRunning(ps))
	})
	t.Logf("5 jobs queued -> 5 pods Running in %s", time.Since(start).Round(time.Millisecond))
	for i := range ps {
		checkWorkerPod(t, &ps[i], owner, "k8s", ns)
	}
	ids := podIDs(ps)
	eventually(t, 10*time.Second, "5 ready events", func() string {
		if got := workerIDs(lifecycle(out, "k8s", domain.LifecycleReady)); !slices.Equal(got, ids) {
			return fmt.Sprintf("ready for %v, pods %v", got, ids)
		}
		return ""
	})
	t.Logf("5 jobs queued -> 5 ready events in %s", time.Since(start).Round(time.Millisecond))
	for _, e := range lifecycle(out, "k8s", domain.LifecycleReady) {
		if e.Subject != "hodei.workers.k8s.ready" || e.Worker.Provider != "kubernetes" {
			t.Errorf("ready event %+v", e)
		}
	}
	if n := len(lifecycle(out, "k8s", domain.LifecycleProvisioning)); n != 5 {
		t.Errorf("%d provisioning events, want 5", n)
	}

	// Every worker takes a job; four finish. The fifth stays busy.
	for i, id := range ids {
		jobs.Started("k8s", fmt.Sprint("job-", i), domain.WorkerID(id))
	}
	busy := ids[4]
	for i := range 4 {
		jobs.Finished("k8s", fmt.Sprint("job-", i), domain.WorkerID(ids[i]))
	}
	stopStart := time.Now()
	eventually(t, 30*time.Second, "the 4 idle pods removed", func() string {
		ps = pods(t, admin, ns, owner)
		if got := podIDs(ps); len(got) == 1 && got[0] == busy {
			return ""
		}
		return fmt.Sprintf("pods %v", podIDs(ps))
	})
	t.Logf("4 jobs finished -> 4 idle pods removed in %s (idle_timeout 1s)", time.Since(stopStart).Round(time.Millisecond))
	eventually(t, 10*time.Second, "4 stopped events", func() string {
		if got := workerIDs(lifecycle(out, "k8s", domain.LifecycleStopped)); !slices.Equal(got, ids[:4]) {
			return fmt.Sprintf("stopped %v", got)
		}
		return ""
	})
	if got := workerIDs(lifecycle(out, "k8s", domain.LifecycleDraining)); !slices.Equal(got, ids[:4]) {
		t.Errorf("draining %v, want %v", got, ids[:4])
	}
	// Several idle timeouts later the busy worker's pod is untouched.
	time.Sleep(3 * time.Second)
	if rec.wasDeleted(domain.WorkerName(domain.WorkerID(busy))) {
		t.Fatalf("the busy worker's pod was deleted")
	}
	if ps := pods(t, admin, ns, owner); len(ps) != 1 || !podReady(&ps[0]) {
		t.Fatalf("busy pod: %+v", ps)
	}
	if s := d.app.Status()[0]; s.Running != 1 || s.Workers["busy"] != 1 {
		t.Errorf("status %+v", s)
	}

	// Its job finishes: it goes too.
	jobs.Finished("k8s", "job-4", domain.WorkerID(busy))
	eventually(t, 30*time.Second, "no pods", func() string {
		if ps := pods(t, admin, ns, owner); len(ps) > 0 {
			return fmt.Sprintf("pods %v", podIDs(ps))
		}
		return ""
	})
	eventually(t, 10*time.Second, "5 stopped events", func() string {
		if n := len(lifecycle(out, "k8s", domain.LifecycleStopped)); n != 5 {
			return fmt.Sprint(n)
		}
		return ""
	})
	if n := len(rec.creations()); n != 5 {
		t.Errorf("%d pods created, want 5", n)
	}
	if f := lifecycle(out, "k8s", domain.LifecycleFailed); len(f) > 0 {
		t.Errorf("failed events: %+v", f)
	}
}

// A pod deleted behind the daemon's back is reported failed and replaced
// while its demand remains.
func TestDaemonReplacesPodDeletedOutOfBand(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ns := namespace(t, c, "oob")
	owner := dockertest.UniqueName("k8s-oob")
	d := startDaemon(t, daemonConfig(t, owner, k8sPool(c, "k8s", ns)))
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	jobs.Queued("k8s", "job-a", nil)
	jobs.Queued("k8s", "job-b", nil)
	var ps []corev1.Pod
	eventually(t, 30*time.Second, "2 pods Running", func() string {
		ps = pods(t, admin, ns, owner)
		if len(ps) == 2 && countRunning(ps) == 2 && len(lifecycle(out, "k8s", domain.LifecycleReady)) == 2 {
			return ""
		}
		return fmt.Sprintf("%d pods, %d Running", len(ps), countRunning(ps))
	})
	victim := ps[0]
	victimID := victim.Labels[domain.LabelWorkerID]
	start := time.Now()
	// As kubectl delete pod would: with the pod's own grace period.
	if err := admin.CoreV1().Pods(ns).Delete(ctxT(t, 10*time.Second), victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "failed event for the deleted pod", func() string {
		for _, e := range lifecycle(out, "k8s", domain.LifecycleFailed) {
			if e.Worker.WorkerID == victimID {
				if !strings.Contains(e.Worker.Reason, "removed outside the autoscaler") {
					t.Errorf("failed reason %q", e.Worker.Reason)
				}
				t.Logf("reported: %q after %s", e.Worker.Reason, time.Since(start).Round(time.Millisecond))
				return ""
			}
		}
		return "none yet"
	})
	eventually(t, 30*time.Second, "a replacement Running", func() string {
		ps = pods(t, admin, ns, owner)
		ids := podIDs(ps)
		if len(ps) == 2 && countRunning(ps) == 2 && !slices.Contains(ids, victimID) && len(lifecycle(out, "k8s", domain.LifecycleReady)) == 3 {
			return ""
		}
		return fmt.Sprintf("pods %v (%d Running)", ids, countRunning(ps))
	})
	t.Logf("pod deleted out of band -> replacement Running and ready in %s", time.Since(start).Round(time.Millisecond))
	if n := len(lifecycle(out, "k8s", domain.LifecycleProvisioning)); n != 3 {
		t.Errorf("%d provisioning events, want 3", n)
	}
}

// A pod that can never be scheduled is deleted and reported failed after
// provision_timeout with the scheduler's reason; the daemon tries again
// while the job waits, but backs off: no hot loop.
func TestDaemonUnschedulablePodFailsWithoutHotLoop(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ns := namespace(t, c, "nosched")
	owner := dockertest.UniqueName("k8s-nosched")
	pool := k8sPool(c, "k8s", ns)
	pool.ProvisionTimeout = config.Duration(2 * time.Second)
	pool.Kubernetes.NodeSelector = map[string]string{"hodei.test/node": "none"}
	cfg := daemonConfig(t, owner, pool)
	cfg.Reconcile.RetryInitial = config.Duration(time.Second)
	cfg.Reconcile.RetryMax = config.Duration(5 * time.Minute)
	d := startDaemon(t, cfg)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)
	rec := recordPods(t, admin, ns, owner)

	jobs.Queued("k8s", "job-1", nil)
	start := time.Now()
	eventually(t, 20*time.Second, "a failed event", func() string {
		if len(lifecycle(out, "k8s", domain.LifecycleFailed)) > 0 {
			return ""
		}
		return fmt.Sprintf("pods %v", podIDs(pods(t, admin, ns, owner)))
	})
	f := lifecycle(out, "k8s", domain.LifecycleFailed)[0]
	t.Logf("failed after %s: %q", time.Since(start).Round(time.Millisecond), f.Worker.Reason)
	for _, want := range []string{"provision_timeout 2s", "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"} {
		if !strings.Contains(f.Worker.Reason, want) {
			t.Errorf("failed reason %q lacks %q", f.Worker.Reason, want)
		}
	}
	eventually(t, 10*time.Second, "the failed pod deleted", func() string {
		if rec.wasDeleted(domain.WorkerName(domain.WorkerID(f.Worker.WorkerID))) {
			return ""
		}
		return "still there"
	})

	// Watch the retries for 30 s from the first create. Without backoff a
	// pod every provision_timeout would be 15 creates; a hot loop, hundreds.
	// With retry_initial 1s doubling: creates near 0, 3, 6.5, 11.5, 20.5 s.
	const window = 30 * time.Second
	first := rec.creations()[0]
	time.Sleep(time.Until(first.Add(window)))
	var inWindow []time.Duration
	for _, at := range rec.creations() {
		if d := at.Sub(first); d < window {
			inWindow = append(inWindow, d.Round(100*time.Millisecond))
		}
	}
	t.Logf("creates in the first %s: %d at %v (%.1f per minute)", window, len(inWindow), inWindow, float64(len(inWindow))*float64(time.Minute)/float64(window))
	if len(inWindow) < 3 || len(inWindow) > 6 {
		t.Errorf("%d creates in %s, want 3 to 6 (retried, with exponential backoff)", len(inWindow), window)
	}
	if n := len(inWindow); n >= 3 && inWindow[n-1]-inWindow[n-2] <= inWindow[1]-inWindow[0] {
		t.Errorf("gaps between creates do not grow: %v", inWindow)
	}
	for _, e := range lifecycle(out, "k8s", domain.LifecycleFailed) {
		if !strings.Contains(e.Worker.Reason, "Unschedulable") {
			t.Errorf("failed reason %q", e.Worker.Reason)
		}
	}
	if ps := pods(t, admin, ns, owner); len(ps) > 1 {
		t.Errorf("%d pods left: failed pods leak", len(ps))
	}
	if s := d.app.Status()[0]; s.Pending != 1 {
		t.Errorf("status %+v: the job must still wait", s)
	}
}

// A Docker pool and a Kubernetes pool in one daemon at the same time: the
// Docker pool runs the example worker (which takes its jobs from the bus
// and reports them started and finished), the Kubernetes pool runs pods
// on the control plane; both scale up and back down.
func TestDaemonDockerAndKubernetesPools(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	image := dockertest.WorkerImage(t) // skips without Docker unless REQUIRE_DOCKER=1
	admin := c.Clientset()
	ns := namespace(t, c, "mixed")
	owner := dockertest.UniqueName("mixed")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)

	port := bustest.FreePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	dock := config.PoolDefaults()
	dock.Name = "dock"
	dock.Provider = "docker"
	dock.MaxWorkers = 5
	dock.IdleTimeout = config.Fixed(time.Second)
	dock.StopGracePeriod = config.Duration(5 * time.Second)
	dock.Env = map[string]string{"HODEI_NATS_URL": natsURL}
	dock.Resources = domain.Resources{CPUMillis: 250, MemoryMB: 64}
	dock.Docker.Image = image
	dock.Docker.PullPolicy = "never"
	dock.Docker.NetworkMode = "host"
	kube := k8sPool(c, "kube", ns)
	cfg := daemonConfig(t, owner, dock, kube)
	cfg.NATS.Embedded.Port = port

	d := startDaemon(t, cfg)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	start := time.Now()
	for i := range 2 {
		jobs.Queued("dock", fmt.Sprint("d-", i), map[string]string{"duration": "1s"})
		jobs.Queued("kube", fmt.Sprint("k-", i), nil)
	}
	eventually(t, 60*time.Second, "2 ready workers in each pool", func() string {
		nd, nk := len(lifecycle(out, "dock", domain.LifecycleReady)), len(lifecycle(out, "kube", domain.LifecycleReady))
		if nd >= 2 && nk == 2 {
			return ""
		}
		return fmt.Sprintf("docker %d, kubernetes %d", nd, nk)
	})
	t.Logf("2+2 jobs -> 2 containers and 2 pods ready in %s", time.Since(start).Round(time.Millisecond))
	for _, e := range lifecycle(out, "dock", domain.LifecycleReady) {
		if e.Worker.Provider != "docker" {
			t.Errorf("dock event %+v", e)
		}
	}
	for _, e := range lifecycle(out, "kube", domain.LifecycleReady) {
		if e.Worker.Provider != "kubernetes" {
			t.Errorf("kube event %+v", e)
		}
	}
	ps := pods(t, admin, ns, owner)
	if len(ps) != 2 || countRunning(ps) != 2 {
		t.Fatalf("pods %v", podIDs(ps))
	}
	for i := range ps {
		if ps[i].Labels[domain.LabelWorkerPool] != "kube" {
			t.Errorf("pod labels %v", ps[i].Labels)
		}
	}

	// The Docker workers run their jobs themselves; the Kubernetes ones
	// are fake, so the test reports theirs.
	for i, id := range podIDs(ps) {
		jobs.Started("kube", fmt.Sprint("k-", i), domain.WorkerID(id))
		jobs.Finished("kube", fmt.Sprint("k-", i), domain.WorkerID(id))
	}
	eventually(t, 60*time.Second, "both pools back to zero", func() string {
		var state []string
		done := true
		for _, s := range d.app.Status() {
			n := 0
			for _, v := range s.Workers {
				n += v
			}
			state = append(state, fmt.Sprintf("%s: pending %d running %d workers %v", s.Pool, s.Pending, s.Running, s.Workers))
			if s.Pending+s.Running+n > 0 {
				done = false
			}
		}
		if done && len(pods(t, admin, ns, owner)) == 0 {
			return ""
		}
		return strings.Join(state, "; ")
	})
	t.Logf("all jobs done -> both pools at zero workers %s after the start", time.Since(start).Round(time.Millisecond))
	if n := len(lifecycle(out, "kube", domain.LifecycleStopped)); n != 2 {
		t.Errorf("%d kube stopped events, want 2", n)
	}
	if n := len(lifecycle(out, "dock", domain.LifecycleStopped)); n < 2 {
		t.Errorf("%d dock stopped events, want 2 or more", n)
	}
}
