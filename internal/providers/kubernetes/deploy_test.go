package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// deployDir is deploy/kubernetes from this package's folder.
func deployDir(t testing.TB) string {
	t.Helper()
	root, err := dockertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy", "kubernetes")
}

// kustomizeBuild does what `kustomize build` does for the subset of
// kustomization.yaml this project uses (apiVersion, kind, resources: a
// list of files): it reads every resource file, splits the YAML documents
// and returns the objects in kustomize's order (namespaces first). A
// kustomization using anything else fails the test instead of being
// half-understood.
func kustomizeBuild(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := utilyaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	for key := range k {
		if key != "apiVersion" && key != "kind" && key != "resources" {
			t.Fatalf("kustomization.yaml uses %q, which this test's kustomize subset does not implement", key)
		}
	}
	if k["apiVersion"] != "kustomize.config.k8s.io/v1beta1" || k["kind"] != "Kustomization" {
		t.Fatalf("kustomization.yaml: apiVersion %v kind %v", k["apiVersion"], k["kind"])
	}
	var objs []*unstructured.Unstructured
	for _, r := range k["resources"].([]any) {
		f, err := os.Open(filepath.Join(dir, r.(string)))
		if err != nil {
			t.Fatalf("resource %v: %v", r, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("resource %v: %v", r, err)
			}
			if len(m) == 0 {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
		f.Close()
	}
	// kustomize's legacy order, for the kinds used here.
	order := []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return slices.Index(order, a.GetKind()) - slices.Index(order, b.GetKind())
	})
	return objs
}

// apply server-side applies objs with strict field validation (unknown or
// duplicate fields are errors, as kubectl apply --validate=strict) and
// returns their resourceVersions by kind/namespace/name.
func apply(t testing.TB, c *k8scluster.Cluster, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	dc, err := discovery.NewDiscoveryClientForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	rvs := map[string]string{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
			FieldManager: "hodei-deploy-test", Force: new(true), FieldValidation: metav1.FieldValidationStrict,
		})
		if err != nil {
			t.Fatalf("applying %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		rvs[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = got.GetResourceVersion()
	}
	return rvs
}

// Every manifest of deploy/kubernetes, applied to the real API server:
// accepted with strict validation, twice (the second apply changes
// nothing); the daemon's pod meets the "restricted" Pod Security Standard
// enforced on its namespace; the Role grants exactly the provider's verbs
// on pods and nothing else; the ConfigMap holds a valid config.
//
// Then least privilege, for real: the whole daemon, run with that
// ConfigMap's config and the token of that ServiceAccount (bound only to
// that Role), does its whole job in hodei-workers, and the same identity
// is forbidden in any other namespace and cluster-wide.
func TestDeployManifests(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ctx := ctxT(t, 3*time.Minute)

	objs := kustomizeBuild(t, deployDir(t))
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	if want := []string{"Namespace", "Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	first := apply(t, c, objs)
	second := apply(t, c, objs)
	if !maps.Equal(first, second) {
		t.Errorf("a second apply changed objects:\n%v\n%v", first, second)
	}

	role, err := admin.RbacV1().Roles("hodei-workers").Get(ctx, "hodei-autoscaler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "delete", "get", "list", "watch"}}}
	if !slicesEqualRules(role.Rules, wantRules) {
		t.Errorf("role rules %+v, want %+v", role.Rules, wantRules)
	}
	crbs, err := admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == "hodei-autoscaler" {
				t.Errorf("cluster role binding %s grants the daemon something cluster-wide", b.Name)
			}
		}
	}

	dep, err := admin.AppsV1().Deployments("hodei-system").Get(ctx, "hodei-autoscaler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, dep)

	// Pod Security: the Deployment's pod is admitted in hodei-system under
	// "restricted" (dry run: there is no controller-manager to make it),
	// and a privileged pod is not (proof that the check is enforced).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "psa-", Namespace: "hodei-system"}, Spec: dep.Spec.Template.Spec}
	if _, err := admin.CoreV1().Pods("hodei-system").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("the daemon's pod is not admitted in hodei-system: %v", err)
	}
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.Privileged = new(true)
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
	if _, err := admin.CoreV1().Pods("hodei-system").Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !isForbidden(err) {
		t.Errorf("a privileged pod was admitted in hodei-system (%v): Pod Security is not enforced", err)
	}

	// The config the daemon would read.
	cm, err := admin.CoreV1().ConfigMaps("hodei-system").Get(ctx, "hodei-autoscaler-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := config.Parse([]byte(cm.Data["config.yaml"]), nil)
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml is invalid:\n%v", err)
	}
	for _, p := range shipped.Pools {
		if p.Provider == "kubernetes" {
			if err := kprov.ValidateConfig(p.Kubernetes); err != nil {
				t.Errorf("pool %s: %v", p.Name, err)
			}
		}
	}

	t.Run("least privilege", func(t *testing.T) {
		token, err := c.ServiceAccountToken(ctx, "hodei-system", "hodei-autoscaler")
		if err != nil {
			t.Fatal(err)
		}
		kubeconfig := c.WriteKubeconfigForToken(t, token)
		leastPrivilegeDaemon(t, c, cm.Data["config.yaml"], kubeconfig)
		leastPrivilegeProvider(t, c, kubeconfig)
	})
}

func slicesEqualRules(a, b []rbacv1.PolicyRule) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func checkDeployment(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	// High availability (issue 11): two replicas sharing the pools, rolled
	// one at a time, spread over nodes.
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		dep.Spec.Strategy.RollingUpdate == nil || dep.Spec.Strategy.RollingUpdate.MaxUnavailable == nil || dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %v strategy %+v: want 2 and RollingUpdate with maxUnavailable 0", dep.Spec.Replicas, dep.Spec.Strategy)
	}
	if a := dep.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("affinity %+v: want the replicas spread over nodes", a)
	}
	ps := dep.Spec.Template.Spec
	if ps.ServiceAccountName != "hodei-autoscaler" || ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Errorf("pod spec %+v", ps)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("containers %+v", ps.Containers)
	}
	ct := ps.Containers[0]
	if ct.LivenessProbe == nil || ct.LivenessProbe.HTTPGet == nil || ct.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v", ct.LivenessProbe)
	}
	if ct.ReadinessProbe == nil || ct.ReadinessProbe.HTTPGet == nil || ct.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v", ct.ReadinessProbe)
	}
	if len(ct.Ports) != 1 || ct.Ports[0].ContainerPort != 9090 || ct.Ports[0].Name != "http" {
		t.Errorf("ports %+v", ct.Ports)
	}
	if ct.Resources.Requests.Cpu().IsZero() || ct.Resources.Requests.Memory().IsZero() || ct.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", ct.Resources)
	}
	sc := ct.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v", sc)
	}
}

// leastPrivilegeDaemon runs the whole daemon on the shipped config with
// the ServiceAccount's kubeconfig: pods are created, become ready, and are
// stopped when their jobs are done.
func leastPrivilegeDaemon(t *testing.T, c *k8scluster.Cluster, configYAML, kubeconfig string) {
	admin := c.Clientset()
	owner := dockertest.UniqueName("lp")
	cfg, err := config.Parse([]byte(configYAML), []string{
		"AUTOSCALER_NAME=" + owner,
		"AUTOSCALER_NATS_URL=embedded",
		// One daemon on its own embedded server: no cluster to share.
		"AUTOSCALER_HA_ENABLED=false",
		"AUTOSCALER_NATS_STREAMS_REPLICAS=1",
		"AUTOSCALER_NATS_EMBEDDED_PORT=-1",
		"AUTOSCALER_NATS_EMBEDDED_STORE_DIR=" + t.TempDir(),
		"AUTOSCALER_HTTP_LISTEN=127.0.0.1:0",
		"AUTOSCALER_RECONCILE_INTERVAL=200ms",
		"AUTOSCALER_RECONCILE_RESYNC_INTERVAL=1s",
		"AUTOSCALER_POOLS_LINUX_IDLE_TIMEOUT=1s",
		"AUTOSCALER_POOLS_LINUX_STOP_GRACE_PERIOD=1s",
		"AUTOSCALER_POOLS_LINUX_KUBERNETES_KUBECONFIG=" + kubeconfig,
	})
	if err != nil {
		t.Fatalf("config with overrides: %v", err)
	}
	d := startDaemon(t, cfg)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)
	jobs.Queued("linux", "lp-1", nil)
	jobs.Queued("linux", "lp-2", nil)
	var ps []corev1.Pod
	eventually(t, 30*time.Second, "2 pods Running in hodei-workers, ready", func() string {
		ps = pods(t, admin, "hodei-workers", owner)
		if len(ps) == 2 && countRunning(ps) == 2 && len(lifecycle(out, "linux", domain.LifecycleReady)) == 2 {
			return ""
		}
		return fmt.Sprintf("%d pods, %d Running", len(ps), countRunning(ps))
	})
	if a := ps[0].Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"]; a != "false" {
		t.Errorf("annotation safe-to-evict %q", a)
	}
	if ps[0].Spec.Affinity == nil || ps[0].Spec.Affinity.PodAntiAffinity == nil {
		t.Errorf("pod_template affinity lost: %+v", ps[0].Spec.Affinity)
	}
	for i, id := range podIDs(ps) {
		jobs.Started("linux", fmt.Sprint("lp-", i+1), domain.WorkerID(id))
		jobs.Finished("linux", fmt.Sprint("lp-", i+1), domain.WorkerID(id))
	}
	eventually(t, 30*time.Second, "pods stopped", func() string {
		if n := len(pods(t, admin, "hodei-workers", owner)); n > 0 || len(lifecycle(out, "linux", domain.LifecycleStopped)) != 2 {
			return fmt.Sprintf("%d pods left", n)
		}
		return ""
	})
	if f := lifecycle(out, "linux", domain.LifecycleFailed); len(f) > 0 {
		t.Errorf("failed events: %+v", f)
	}
	if !d.app.Ready() {
		t.Errorf("daemon not ready: %+v", d.app.Status())
	}
}

// leastPrivilegeProvider calls every provider method with the
// ServiceAccount: all of them work in hodei-workers, none elsewhere.
func leastPrivilegeProvider(t *testing.T, c *k8scluster.Cluster, kubeconfig string) {
	ctx := ctxT(t, time.Minute)
	in, _ := newProvider(t, c, "hodei-workers", func(cfg *kprov.Config) { cfg.Kubernetes.Kubeconfig = kubeconfig })
	if err := in.Ping(ctx); err != nil {
		t.Errorf("Ping in hodei-workers: %v", err)
	}
	ch, err := in.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := domain.NewWorkerID()
	if _, err := in.Create(ctx, providers.WorkerSpec{ID: id}); err != nil {
		t.Fatalf("Create in hodei-workers: %v", err)
	}
	if _, err := in.Create(ctx, providers.WorkerSpec{ID: id}); err != nil { // AlreadyExists: get and adopt
		t.Errorf("second Create (adopt) in hodei-workers: %v", err)
	}
	watchFor(t, ch, 30*time.Second, "ready", func(c domain.WorkerChange) bool { return c.ID == id && c.Worker.Phase == domain.PhaseReady })
	if ws, err := in.List(ctx); err != nil || len(ws) != 1 {
		t.Errorf("List in hodei-workers: %+v, %v", ws, err)
	}
	if err := in.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop in hodei-workers: %v", err)
	}
	id2 := domain.NewWorkerID()
	if _, err := in.Create(ctx, providers.WorkerSpec{ID: id2}); err != nil {
		t.Fatal(err)
	}
	if err := in.Delete(ctx, id2); err != nil {
		t.Errorf("Delete in hodei-workers: %v", err)
	}

	other := namespace(t, c, "lp-other")
	out, _ := newProvider(t, c, other, func(cfg *kprov.Config) { cfg.Kubernetes.Kubeconfig = kubeconfig })
	if err := out.Ping(ctx); !isForbidden(err) {
		t.Errorf("Ping in %s: %v, want Forbidden", other, err)
	}
	if _, err := out.Create(ctx, providers.WorkerSpec{ID: domain.NewWorkerID()}); !isForbidden(err) {
		t.Errorf("Create in %s: %v, want Forbidden", other, err)
	}
	if _, err := out.List(ctx); !isForbidden(err) {
		t.Errorf("List in %s: %v, want Forbidden", other, err)
	}
	if err := out.Delete(ctx, domain.NewWorkerID()); !isForbidden(err) {
		t.Errorf("Delete in %s: %v, want Forbidden", other, err)
	}
	t.Logf("in %s: %v", other, out.Ping(ctx))

	// Nothing cluster-wide, nothing but pods, nothing in its own namespace.
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	for what, call := range map[string]func(context.Context) error{
		"list nodes": func(ctx context.Context) error {
			_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		},
		"list pods in all namespaces": func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		},
		"list pods in hodei-system": func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods("hodei-system").List(ctx, metav1.ListOptions{})
			return err
		},
		"read its own ConfigMap": func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps("hodei-system").Get(ctx, "hodei-autoscaler-config", metav1.GetOptions{})
			return err
		},
		"list secrets in the workers'": func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets("hodei-workers").List(ctx, metav1.ListOptions{})
			return err
		},
		"patch a worker pod": func(ctx context.Context) error {
			_, err := cs.CoreV1().Pods("hodei-workers").Patch(ctx, "x", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
			return err
		},
		"read the Role": func(ctx context.Context) error {
			_, err := cs.RbacV1().Roles("hodei-workers").Get(ctx, "hodei-autoscaler", metav1.GetOptions{})
			return err
		},
	} {
		if err := call(ctx); !isForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
}

// The daemon's image builds from deploy/Dockerfile with no registry pull
// (FROM scratch around the static binary), runs as a non-root user, and
// its binary runs: it validates the shipped config.
func TestDaemonImage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the daemon and its image; skipped in -short mode")
	}
	cli := dockertest.Client(t) // skips without Docker unless REQUIRE_DOCKER=1
	root, err := dockertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	bin := dockertest.BuildGoBinary(t, "./cmd/autoscaler")
	const tag = "hodei-autoscaler:test"
	dockertest.BuildImage(t, tag, map[string][]byte{"Dockerfile": dockerfile, "autoscaler": bin})
	ctx := ctxT(t, 2*time.Minute)
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config == nil || img.Config.User != "65532:65532" {
		t.Errorf("image user %+v, want 65532:65532", img.Config)
	}

	// The shipped config, from the ConfigMap, mounted where the
	// Deployment mounts it.
	var cm corev1.ConfigMap
	for _, o := range kustomizeBuild(t, deployDir(t)) {
		if o.GetKind() == "ConfigMap" {
			data, _ := json.Marshal(o.Object)
			if err := json.Unmarshal(data, &cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfgDir := t.TempDir()
	if err := os.Chmod(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(cm.Data["config.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	label := dockertest.UniqueName("image-test")
	dockertest.Cleanup(t, "hodei.test.container="+label)
	ct, err := cli.ContainerCreate(ctx, &container.Config{
		Image: tag, Cmd: []string{"validate", "--config", "/etc/hodei/config.yaml"},
		Labels: map[string]string{"hodei.test.container": label},
	}, &container.HostConfig{
		NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: cfgDir, Target: "/etc/hodei", ReadOnly: true}},
	}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, ct.ID, container.WaitConditionNotRunning)
	var code int64
	select {
	case r := <-waitC:
		code = r.StatusCode
	case err := <-errC:
		t.Fatal(err)
	}
	logs, err := cli.ContainerLogs(ctx, ct.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	_, _ = stdcopy.StdCopy(&stdout, &stderr, logs)
	logs.Close()
	t.Logf("autoscaler validate in the image: exit %d: %s%s", code, stdout.String(), stderr.String())
	if code != 0 || !strings.Contains(stdout.String(), "is valid: 1 pool(s)") {
		t.Errorf("validate exited %d: %s%s", code, stdout.String(), stderr.String())
	}
}
