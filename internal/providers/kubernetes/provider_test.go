package kubernetes_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
	"github.com/hodei/hodei-autoscaler/internal/testutil/k8scluster"
)

// watchFor reads changes until one satisfies ok.
func watchFor(t *testing.T, ch <-chan domain.WorkerChange, timeout time.Duration, what string, ok func(domain.WorkerChange) bool) domain.WorkerChange {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case c, open := <-ch:
			if !open {
				t.Fatalf("watch closed while waiting for %s", what)
			}
			if ok(c) {
				return c
			}
			seen = append(seen, string(c.Worker.Phase)+" "+c.Worker.Reason)
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s; saw %q", timeout, what, seen)
		}
	}
}

// The provider against a real kube-apiserver, scheduler and kwok: the pod
// it creates is accepted by the server, scheduled and Running; its
// informer sees only the pool's pods; Create is idempotent and refuses a
// pod it does not own; status changes come through Watch with the
// cluster's reasons; Stop and Delete remove the pod.
func TestProviderAgainstAPIServer(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ns := namespace(t, c, "prov")
	p, owner := newProvider(t, c, ns, nil)
	ctx := ctxT(t, 2*time.Minute)

	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ch, err := p.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Noise the informer must not see: our labels in another namespace,
	// another pool, another owner.
	other := namespace(t, c, "prov-other")
	noise := []struct{ ns, owner, pool string }{{other, "", "p1"}, {ns, "", "p2"}, {ns, "someone-else", "p1"}}
	for i, n := range noise {
		o := n.owner
		if o == "" {
			o = owner
		}
		id := domain.WorkerID("00000000-0000-4000-8000-00000000000" + string(rune('1'+i)))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: domain.WorkerName(id), Labels: domain.WorkerLabels(o, domain.PoolName(n.pool), id)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: testImage}}},
		}
		if _, err := admin.CoreV1().Pods(n.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating noise pod: %v", err)
		}
	}

	id := domain.NewWorkerID()
	start := time.Now()
	w, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: "p1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if w.ID != id || w.Phase != domain.PhasePending || w.CreatedAt.IsZero() {
		t.Errorf("Create returned %+v", w)
	}
	ready := watchFor(t, ch, 30*time.Second, "ready", func(c domain.WorkerChange) bool {
		return c.ID == id && c.Worker.Phase == domain.PhaseReady
	})
	t.Logf("created to Ready (via Watch) in %s: %q", time.Since(start).Round(time.Millisecond), ready.Worker.Reason)
	if !strings.HasPrefix(ready.Worker.Reason, "running and ready on node "+k8scluster.NodeNamePrefix) {
		t.Errorf("ready reason %q", ready.Worker.Reason)
	}

	ws, err := p.List(ctx)
	if err != nil || len(ws) != 1 || ws[0].ID != id || ws[0].Phase != domain.PhaseReady || ws[0].Provider != "kubernetes" || ws[0].Pool != "p1" {
		t.Fatalf("List = %+v, %v; want only the worker (no noise)", ws, err)
	}

	// Create again: adopted, not duplicated.
	if w2, err := p.Create(ctx, providers.WorkerSpec{ID: id}); err != nil || w2.Phase != domain.PhaseReady {
		t.Errorf("second Create = %+v, %v", w2, err)
	}
	// A pod of a worker's name that is someone else's: refused, untouched.
	foreign := domain.WorkerID("00000000-0000-4000-8000-000000000003")
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: foreign}); !errors.Is(err, kprov.ErrNotOwned) {
		t.Errorf("Create over a foreign pod: %v", err)
	}
	if err := p.Delete(ctx, foreign); !errors.Is(err, kprov.ErrNotOwned) {
		t.Errorf("Delete of a foreign pod: %v", err)
	}
	if _, err := admin.CoreV1().Pods(ns).Get(ctx, domain.WorkerName(foreign), metav1.GetOptions{}); err != nil {
		t.Errorf("foreign pod: %v", err)
	}

	// The kubelet's verdicts, written as the kubelet would: Failed with a
	// terminated container, and Succeeded.
	setStatus := func(id domain.WorkerID, st corev1.PodStatus) {
		t.Helper()
		pod, err := admin.CoreV1().Pods(ns).Get(ctx, domain.WorkerName(id), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = st.Phase
		pod.Status.Reason, pod.Status.Message = st.Reason, st.Message
		pod.Status.ContainerStatuses = st.ContainerStatuses
		if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating status: %v", err)
		}
	}
	now := metav1.Now()
	setStatus(id, corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "worker", Image: testImage, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 3, Reason: "Error", Message: "lost the bus", StartedAt: now, FinishedAt: now,
		}},
	}}})
	failed := watchFor(t, ch, 10*time.Second, "failed", func(c domain.WorkerChange) bool {
		return c.ID == id && c.Worker.Phase == domain.PhaseFailed
	})
	if want := "pod failed; container worker terminated: Error (exit code 3): lost the bus"; failed.Worker.Reason != want {
		t.Errorf("failed reason %q, want %q", failed.Worker.Reason, want)
	}

	id2 := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id2}); err != nil {
		t.Fatal(err)
	}
	watchFor(t, ch, 30*time.Second, "second ready", func(c domain.WorkerChange) bool { return c.ID == id2 && c.Worker.Phase == domain.PhaseReady })
	setStatus(id2, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "worker", Image: testImage, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "Completed", StartedAt: now, FinishedAt: now,
		}},
	}}})
	exited := watchFor(t, ch, 10*time.Second, "exited", func(c domain.WorkerChange) bool {
		return c.ID == id2 && c.Worker.Phase == domain.PhaseExited
	})
	t.Logf("exited reason: %q", exited.Worker.Reason)

	// Delete (grace 0) removes the pod at once; Stop deletes with the grace
	// period and returns once it is gone.
	if err := p.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := admin.CoreV1().Pods(ns).Get(ctx, domain.WorkerName(id), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after Delete: %v", err)
	}
	watchFor(t, ch, 10*time.Second, "gone", func(c domain.WorkerChange) bool { return c.ID == id && c.Gone })

	id3 := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id3}); err != nil {
		t.Fatal(err)
	}
	watchFor(t, ch, 30*time.Second, "third ready", func(c domain.WorkerChange) bool { return c.ID == id3 && c.Worker.Phase == domain.PhaseReady })
	rec := recordPods(t, admin, ns, owner)
	start = time.Now()
	if err := p.Stop(ctx, id3, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop (grace 5s) returned in %s", time.Since(start).Round(time.Millisecond))
	if _, err := admin.CoreV1().Pods(ns).Get(ctx, domain.WorkerName(id3), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after Stop: %v", err)
	}
	eventually(t, 5*time.Second, "the deletion seen by a watcher", func() string {
		if rec.wasDeleted(domain.WorkerName(id3)) {
			return ""
		}
		return "not yet"
	})
	for _, missing := range []domain.WorkerID{id3, domain.NewWorkerID()} {
		if err := p.Stop(ctx, missing, time.Second); err != nil {
			t.Errorf("Stop of a missing pod: %v", err)
		}
		if err := p.Delete(ctx, missing); err != nil {
			t.Errorf("Delete of a missing pod: %v", err)
		}
	}
	ws, _ = p.List(ctx)
	for _, w := range ws {
		if w.ID == id || w.ID == id3 {
			t.Errorf("List after Delete/Stop still has %+v", w)
		}
	}
}

// A pod no node can take stays Pending, and the provider reports the
// scheduler's own words as the reason.
func TestProviderReportsTheSchedulersReason(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	ns := namespace(t, c, "unsched")
	p, _ := newProvider(t, c, ns, func(cfg *kprov.Config) {
		cfg.Kubernetes.NodeSelector = map[string]string{"hodei.test/node": "none"}
	})
	ctx := ctxT(t, time.Minute)
	ch, err := p.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id}); err != nil {
		t.Fatal(err)
	}
	c2 := watchFor(t, ch, 20*time.Second, "unschedulable", func(c domain.WorkerChange) bool {
		return c.ID == id && strings.HasPrefix(c.Worker.Reason, "Unschedulable")
	})
	if c2.Worker.Phase != domain.PhasePending || !strings.Contains(c2.Worker.Reason, "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector") {
		t.Errorf("got %s %q", c2.Worker.Phase, c2.Worker.Reason)
	}
	t.Logf("reason: %q", c2.Worker.Reason)
	ws, err := p.List(ctx)
	if err != nil || len(ws) != 1 || ws[0].Reason != c2.Worker.Reason {
		t.Errorf("List = %+v, %v", ws, err)
	}
}
