package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

// helm install into the real API server of tools/k8s creates every object
// of the chart (for the full values too, the ServiceMonitor and
// PrometheusRule against the Prometheus Operator's own CRDs), each one
// free of fields the server does not know; the daemon's pod is admitted under the "restricted" Pod
// Security Standard; with the chart's ServiceAccount the daemon may do
// exactly its job (pods: create, delete, get, list, watch) in the workers'
// namespace and nothing else anywhere, and the real kubernetes provider,
// run on the chart's config with that identity, creates, lists and
// deletes workers there. helm upgrade with a changed config value rolls
// the ConfigMap and the pod template's checksum, one without leaves the
// checksum alone, one with a wrong value is refused, and uninstall keeps
// the workers' namespace.
func TestHelmInstallUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane; skipped in -short mode")
	}
	h := newHelm(t)
	c := k8scluster.Start(t)
	admin := c.Clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The daemon's namespace as deploy/kubernetes makes it: "restricted" enforced.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hodei-system",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube := []string{"--kubeconfig", c.KubeconfigPath(), "--namespace", "hodei-system"}
	helmDo := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		return h.run(t, append(args, kube...)...)
	}
	if out, err := helmDo(t, "install", "hodei-autoscaler", chartDir(t)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// A second release with every option, beside the first, its
	// ServiceMonitor and PrometheusRule checked against the operator's CRDs.
	installOperatorCRDs(t, ctx, c)
	if out, err := helmDo(t, "install", "full", chartDir(t), "-f", fullValues(t)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	manifest, err := helmDo(t, "get", "manifest", "hodei-autoscaler")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, manifest)
	fullManifest, err := helmDo(t, "get", "manifest", "full")
	if err != nil {
		t.Fatal(err)
	}
	fullObjs := decodeObjects(t, fullManifest)
	find(t, fullObjs, "ServiceMonitor")
	find(t, fullObjs, "PrometheusRule")
	srv, err := c.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range append(slices.Clone(objs), fullObjs...) {
		if _, err := srv.Get(ctx, o); err != nil {
			t.Errorf("%s %s/%s is not on the server: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		if _, err := srv.Apply(ctx, o, true); err != nil {
			t.Errorf("%s %s/%s has fields the API server does not know: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	dep, err := admin.AppsV1().Deployments("hodei-system").Get(ctx, find(t, objs, "Deployment").GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("pod security", func(t *testing.T) {
		// Dry run: there is no controller-manager to make the pod.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "psa-", Namespace: "hodei-system"}, Spec: dep.Spec.Template.Spec}
		if _, err := admin.CoreV1().Pods("hodei-system").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("the chart's pod is not admitted under restricted: %v", err)
		}
		bad := pod.DeepCopy()
		bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		if _, err := admin.CoreV1().Pods("hodei-system").Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
			t.Errorf("a pod allowing privilege escalation was admitted (%v): Pod Security is not enforced", err)
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		token, err := c.ServiceAccountToken(ctx, "hodei-system", dep.Spec.Template.Spec.ServiceAccountName)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.CheckPodAccessOnly(ctx, token, "hodei-workers", k8scluster.WorkerPodVerbs, "hodei-system", "ci-workers", "default") {
			t.Error(p)
		}
		cm, err := admin.CoreV1().ConfigMaps("hodei-system").Get(ctx, find(t, objs, "ConfigMap").GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		providerDoesItsJob(t, ctx, cm.Data["config.yaml"], c.WriteKubeconfigForToken(t, token))
	})

	t.Run("upgrade", func(t *testing.T) {
		cmName := find(t, objs, "ConfigMap").GetName()
		state := func() (cm *corev1.ConfigMap, d *appsv1.Deployment) {
			t.Helper()
			cm, err := admin.CoreV1().ConfigMaps("hodei-system").Get(ctx, cmName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d, err = admin.AppsV1().Deployments("hodei-system").Get(ctx, dep.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return cm, d
		}
		cm0, d0 := state()

		if out, err := helmDo(t, "upgrade", "hodei-autoscaler", chartDir(t), "--reuse-values", "--set", "config.reconcile.interval=7s"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		cm1, d1 := state()
		if cm1.ResourceVersion == cm0.ResourceVersion || !strings.Contains(cm1.Data["config.yaml"], "interval: 7s") {
			t.Errorf("the ConfigMap did not change:\n%s", cm1.Data["config.yaml"])
		}
		sum0, sum1 := d0.Spec.Template.Annotations["checksum/config"], d1.Spec.Template.Annotations["checksum/config"]
		if sum0 == "" || sum1 == sum0 || d1.Generation == d0.Generation {
			t.Errorf("the pod template did not roll: checksum %s -> %s, generation %d -> %d", sum0, sum1, d0.Generation, d1.Generation)
		}

		// A change that is not in the config leaves the pods alone.
		if out, err := helmDo(t, "upgrade", "hodei-autoscaler", chartDir(t), "--reuse-values", "--set", "service.annotations.example\\.com/note=x"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		cm2, d2 := state()
		if cm2.ResourceVersion != cm1.ResourceVersion || d2.Generation != d1.Generation {
			t.Errorf("a Service-only change touched the ConfigMap (rv %s -> %s) or the pods (generation %d -> %d)",
				cm1.ResourceVersion, cm2.ResourceVersion, d1.Generation, d2.Generation)
		}

		// A wrong value is refused at upgrade, and nothing changes.
		out, err := helmDo(t, "upgrade", "hodei-autoscaler", chartDir(t), "--reuse-values", "--set", "config.pools[0].max_workers=lots")
		if err == nil || !strings.Contains(err.Error(), "max_workers") {
			t.Errorf("upgrade with max_workers=lots: %v\n%s", err, out)
		}
		cm3, d3 := state()
		if cm3.ResourceVersion != cm2.ResourceVersion || d3.Generation != d2.Generation {
			t.Errorf("a refused upgrade changed the release")
		}
	})

	t.Run("uninstall keeps the workers' namespace", func(t *testing.T) {
		if out, err := helmDo(t, "uninstall", "hodei-autoscaler"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := admin.AppsV1().Deployments("hodei-system").Get(ctx, dep.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment after uninstall: %v", err)
		}
		ws, err := admin.CoreV1().Namespaces().Get(ctx, "hodei-workers", metav1.GetOptions{})
		if err != nil || ws.DeletionTimestamp != nil {
			t.Errorf("workers' namespace after uninstall: %v, deleting %v", err, ws.DeletionTimestamp)
		}
	})
}

// providerDoesItsJob runs the real kubernetes provider on the chart's
// config with the given kubeconfig: it reaches the workers' namespace,
// creates a worker that goes ready, lists it and deletes it.
func providerDoesItsJob(t *testing.T, ctx context.Context, configYAML, kubeconfig string) {
	t.Helper()
	cfg, err := config.Parse([]byte(configYAML), nil)
	if err != nil {
		t.Fatalf("the chart's config: %v", err)
	}
	pool := cfg.Pools[0]
	k := pool.Kubernetes
	k.Kubeconfig = kubeconfig
	if err := kprov.ValidateConfig(k); err != nil {
		t.Fatalf("pool %s: %v", pool.Name, err)
	}
	p, err := kprov.New(kprov.Config{
		Owner: cfg.Name, Pool: pool.PoolName(), Kubernetes: k, Resources: pool.Resources,
		Env: pool.Env, Slots: pool.JobsPerWorker, StopGrace: pool.StopGracePeriod.D(),
	}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	id := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: pool.PoolName()}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ws, err := p.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(ws) == 1 && ws[0].ID == id && ws[0].Phase == domain.PhaseReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not ready within 30s: %+v", ws)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

// installOperatorCRDs applies the Prometheus Operator's ServiceMonitor and
// PrometheusRule CRDs and waits until they are served.
func installOperatorCRDs(t *testing.T, ctx context.Context, c *k8scluster.Cluster) {
	t.Helper()
	dir := realtools.Path(t, realtools.PrometheusOperatorCRDs)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("CRDs in %s: %v %v", dir, files, err)
	}
	s, err := c.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decodeObjects(t, string(data)) {
			if _, err := s.Apply(ctx, o, false); err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		probe := &unstructured.Unstructured{}
		probe.SetAPIVersion("monitoring.coreos.com/v1")
		probe.SetKind(kind)
		probe.SetNamespace("default")
		probe.SetName("probe")
		for {
			_, err := s.Get(ctx, probe)
			if apierrors.IsNotFound(err) { // served: the kind is known, the object is not
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not served a minute after its CRD: %v", kind, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
