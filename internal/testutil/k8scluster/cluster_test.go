package k8scluster_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

func TestMain(m *testing.M) { k8scluster.SharedMain(m) }

// TestMissingBinariesSkip checks that, without binaries and REQUIRE_K8S,
// New reports ErrBinariesMissing (which Start turns into a skip).
func TestMissingBinariesSkip(t *testing.T) {
	t.Setenv(k8scluster.EnvBinDir, t.TempDir())
	t.Setenv(k8scluster.EnvRequire, "")
	_, err := k8scluster.New(context.Background(), k8scluster.Options{})
	if !errors.Is(err, k8scluster.ErrBinariesMissing) {
		t.Fatalf("New without binaries: got %v, want ErrBinariesMissing", err)
	}
	t.Logf("skip message: %v", err)
}

// TestCluster starts its own cluster and exercises pods, ServiceAccount
// tokens and RBAC.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := k8scluster.Start(t)
	t.Logf("cluster started in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := c.Clientset()

	const ns = "k8scluster-test"
	if _, err := admin.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	// A pod is scheduled onto the kwok node and goes Running.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Labels: map[string]string{"app": "worker"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "worker", Image: "example.invalid/worker:v1",
		}}},
	}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	running := waitPod(ctx, t, admin, ns, "worker", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if !slices.Contains(c.NodeNames(), running.Spec.NodeName) {
		t.Fatalf("pod on node %q, want one of %v", running.Spec.NodeName, c.NodeNames())
	}

	// The admin kubeconfig file works.
	adminFromFile := clientsetFromKubeconfig(t, c.KubeconfigPath())
	if pods, err := adminFromFile.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) != 1 {
		t.Fatalf("admin kubeconfig: list pods = %v, %v; want 1 pod", podNames(pods), err)
	}

	// A ServiceAccount with no RBAC is authenticated but may not list pods.
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "autoscaler"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount: %v", err)
	}
	token, err := c.ServiceAccountToken(ctx, ns, "autoscaler")
	if err != nil {
		t.Fatal(err)
	}
	sa := clientsetFromKubeconfig(t, c.WriteKubeconfigForToken(t, token))

	review, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview as serviceaccount: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":autoscaler"; review.Status.UserInfo.Username != want {
		t.Fatalf("token authenticates as %q, want %q", review.Status.UserInfo.Username, want)
	}
	_, err = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("serviceaccount without RBAC: list pods err = %v, want Forbidden", err)
	}

	// Granting a Role makes the same token work (RBAC is enforced, not absent).
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "autoscaler-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "autoscaler"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("serviceaccount still cannot list pods after RoleBinding: %v", err)
	}
	if _, err := sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("serviceaccount list pods in another namespace: err = %v, want Forbidden", err)
	}

	// Graceful delete completes (kwok's pod-delete stage).
	if err := admin.CoreV1().Pods(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := admin.CoreV1().Pods(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("pod not gone after delete: %v", err)
	}
}

// TestShared uses the package's shared cluster (SharedMain). Running in
// parallel with TestCluster, it also shows two clusters side by side.
func TestShared(t *testing.T) {
	t.Parallel()
	c := k8scluster.Shared(t)
	if c2 := k8scluster.Shared(t); c2 != c {
		t.Fatal("Shared returned two different clusters")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := c.Clientset().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "kwok-node-0" {
		t.Fatalf("nodes = %d, want kwok-node-0 only", len(nodes.Items))
	}
	alloc := nodes.Items[0].Status.Allocatable
	if alloc.Cpu().Value() != 32 || alloc.Memory().Value() != 256<<30 || alloc.Pods().Value() != 1000 {
		t.Fatalf("allocatable = %v", alloc)
	}
	v, err := c.Clientset().Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server version %s", v.GitVersion)
	if v.GitVersion != k8scluster.Version {
		t.Errorf("server version %q, want %q", v.GitVersion, k8scluster.Version)
	}
}

func waitPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: %v (last status: %+v)", ns, name, err, statusOf(last))
	}
	return last
}

func statusOf(p *corev1.Pod) any {
	if p == nil {
		return nil
	}
	return p.Status
}

func clientsetFromKubeconfig(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func podNames(l *corev1.PodList) []string {
	if l == nil {
		return nil
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Name)
	}
	return out
}
