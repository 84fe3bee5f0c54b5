package k8scluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// WorkerPodVerbs are the verbs the kubernetes provider needs on pods in
// its namespace, and all it may have (deploy/kubernetes/role.yaml).
var WorkerPodVerbs = []string{"create", "delete", "get", "list", "watch"}

// accessProbes are the resources whose rights CheckPodAccessOnly asks the
// authorizer about: pods and their subresources, and what a compromised
// daemon could abuse (secrets, its own config, RBAC, workloads, nodes).
var accessProbes = []authorizationv1.ResourceAttributes{
	{Resource: "pods"},
	{Resource: "pods", Subresource: "log"},
	{Resource: "pods", Subresource: "exec"},
	{Resource: "pods", Subresource: "status"},
	{Resource: "pods", Subresource: "eviction"},
	{Resource: "secrets"},
	{Resource: "configmaps"},
	{Resource: "services"},
	{Resource: "serviceaccounts"},
	{Resource: "serviceaccounts", Subresource: "token"},
	{Resource: "events"},
	{Resource: "namespaces"},
	{Resource: "nodes"},
	{Group: "apps", Resource: "deployments"},
	{Group: "batch", Resource: "jobs"},
	{Group: "rbac.authorization.k8s.io", Resource: "roles"},
	{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
}

var accessVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "bind", "escalate", "impersonate"}

// CheckPodAccessOnly proves that the identity of token may do exactly
// verbs on pods in namespace and nothing else: the real authorizer is
// asked (SelfSubjectAccessReview, as that identity) about every verb on a
// list of resources in namespace, in each of others and cluster-wide, and
// the pod verbs are then exercised for real (a pod created, read, listed,
// watched and deleted in namespace; creating and listing one in each of
// others forbidden). It returns every discrepancy, nil when there is none.
func (c *Cluster) CheckPodAccessOnly(ctx context.Context, token, namespace string, verbs []string, others ...string) []error {
	cs, err := kubernetes.NewForConfig(c.ConfigForToken(token))
	if err != nil {
		return []error{err}
	}
	var problems []error
	for _, ns := range append([]string{namespace, ""}, others...) {
		for _, probe := range accessProbes {
			for _, verb := range accessVerbs {
				attrs := probe
				attrs.Namespace, attrs.Verb = ns, verb
				want := ns == namespace && attrs.Group == "" && attrs.Resource == "pods" && attrs.Subresource == "" && slices.Contains(verbs, verb)
				review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
					&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}},
					metav1.CreateOptions{})
				if err != nil {
					return append(problems, fmt.Errorf("access review %s: %w", describe(attrs), err))
				}
				if review.Status.Allowed != want {
					problems = append(problems, fmt.Errorf("%s: allowed=%t, want %t (%s)", describe(attrs), review.Status.Allowed, want, review.Status.Reason))
				}
			}
		}
	}
	return append(problems, c.exercisePods(ctx, cs, namespace, others)...)
}

// exercisePods does with cs what the provider does to a pod in namespace,
// and checks that the same is Forbidden in others.
func (c *Cluster) exercisePods(ctx context.Context, cs kubernetes.Interface, namespace string, others []string) []error {
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "access-check-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "access-check:never-pulled"}}},
	}
	pods := cs.CoreV1().Pods(namespace)
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		fail("watch pods in %s: %v", namespace, err)
	} else {
		defer w.Stop()
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return append(problems, fmt.Errorf("create a pod in %s: %w", namespace, err))
	}
	if w != nil {
		if err := awaitPodEvent(ctx, w.ResultChan(), created.Name); err != nil {
			fail("watch pods in %s: %v", namespace, err)
		}
	}
	if _, err := pods.Get(ctx, created.Name, metav1.GetOptions{}); err != nil {
		fail("get the pod in %s: %v", namespace, err)
	}
	if l, err := pods.List(ctx, metav1.ListOptions{}); err != nil || !slices.ContainsFunc(l.Items, func(p corev1.Pod) bool { return p.Name == created.Name }) {
		fail("list pods in %s: the created pod missing (%v)", namespace, err)
	}
	if err := pods.Delete(ctx, created.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		fail("delete the pod in %s: %v", namespace, err)
	}
	for _, ns := range others {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			fail("create a pod in %s: %v, want Forbidden", ns, err)
		}
		if _, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			fail("list pods in %s: %v, want Forbidden", ns, err)
		}
	}
	return problems
}

// awaitPodEvent waits for an event about the pod called name.
func awaitPodEvent(ctx context.Context, events <-chan watch.Event, name string) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("the watch ended before an event about the created pod")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && p.Name == name {
				return nil
			}
		case <-timeout.C:
			return errors.New("no event about the created pod within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func describe(a authorizationv1.ResourceAttributes) string {
	res := a.Resource
	if a.Group != "" {
		res += "." + a.Group
	}
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	where := "cluster-wide"
	if a.Namespace != "" {
		where = "in " + a.Namespace
	}
	return strings.Join([]string{a.Verb, res, where}, " ")
}
