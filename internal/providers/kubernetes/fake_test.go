package kubernetes

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

func fakeProvider(t *testing.T, objs ...runtime.Object) (*Provider, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	p, err := NewForClient(baseConfig(kcfg(func(k *config.Kubernetes) { k.Namespace = "ci" })), cs, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, cs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next waits for the next change of a Watch that satisfies ok.
func next(t *testing.T, ch <-chan domain.WorkerChange, what string, ok func(domain.WorkerChange) bool) domain.WorkerChange {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c, open := <-ch:
			if !open {
				t.Fatalf("watch closed waiting for %s", what)
			}
			if ok(c) {
				return c
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The provider's calls, on client-go's fake clientset: create and adopt,
// refuse a pod it does not own, list and watch from the informer, stop and
// delete by UID, treat a missing pod as deleted.
func TestProviderOnFakeClientset(t *testing.T) {
	foreignID := domain.WorkerID("11111111-2222-4333-8444-555555555555")
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: domain.WorkerName(foreignID), Namespace: "ci",
		Labels: domain.WorkerLabels("someone-else", "linux", foreignID),
	}}
	p, cs := fakeProvider(t, foreign)
	ctx := ctxT(t)

	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ws, err := p.List(ctx)
	if err != nil || len(ws) != 0 {
		t.Fatalf("List = %v, %v; want nothing (the foreign pod is not ours)", ws, err)
	}
	ch, err := p.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	w, err := p.Create(ctx, providers.WorkerSpec{ID: testID, Pool: "linux"})
	if err != nil || w.ID != testID || w.Phase != domain.PhasePending || w.Provider != Name {
		t.Fatalf("Create = %+v, %v", w, err)
	}
	pod, err := cs.CoreV1().Pods("ci").Get(ctx, domain.WorkerName(testID), metav1.GetOptions{})
	if err != nil || pod.Labels[domain.LabelWorkerID] != string(testID) {
		t.Fatalf("pod %+v, %v", pod, err)
	}
	// Idempotent: the second create adopts the first pod.
	if w2, err := p.Create(ctx, providers.WorkerSpec{ID: testID}); err != nil || w2.ID != testID {
		t.Fatalf("second Create = %+v, %v", w2, err)
	}
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: foreignID}); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Create over a foreign pod: %v, want ErrNotOwned", err)
	}
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: testID, Pool: "other"}); err == nil {
		t.Error("Create for another pool succeeded")
	}
	next(t, ch, "the created pod", func(c domain.WorkerChange) bool { return c.ID == testID && !c.Gone })

	// The kubelet's part, by hand: Running and Ready.
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	pod.Spec.NodeName = "n1"
	if _, err := cs.CoreV1().Pods("ci").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := next(t, ch, "ready", func(c domain.WorkerChange) bool { return c.Worker.Phase == domain.PhaseReady })
	if c.Worker.Reason != "running and ready on node n1" || c.Worker.Pool != "linux" {
		t.Errorf("ready change %+v", c)
	}
	ws, err = p.List(ctx)
	if err != nil || len(ws) != 1 || ws[0].Phase != domain.PhaseReady {
		t.Fatalf("List = %+v, %v", ws, err)
	}

	// Stop and Delete: the foreign pod is refused (as not found), ours goes.
	if err := p.Delete(ctx, foreignID); !errors.Is(err, ErrNotOwned) || !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Delete of a foreign pod: %v", err)
	}
	if _, err := cs.CoreV1().Pods("ci").Get(ctx, foreign.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("foreign pod touched: %v", err)
	}
	var grace *int64
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		grace = a.(k8stesting.DeleteAction).GetDeleteOptions().GracePeriodSeconds
		return false, nil, nil
	})
	if err := p.Stop(ctx, testID, 2500*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if grace == nil || *grace != 3 {
		t.Errorf("Stop's gracePeriodSeconds %v, want 3", grace)
	}
	next(t, ch, "gone", func(c domain.WorkerChange) bool { return c.ID == testID && c.Gone })
	if ws, _ := p.List(ctx); len(ws) != 0 {
		t.Errorf("List after Stop = %+v", ws)
	}
	if err := p.Delete(ctx, testID); err != nil {
		t.Errorf("Delete of a missing pod: %v", err)
	}
	if err := p.Stop(ctx, testID, time.Second); err != nil {
		t.Errorf("Stop of a missing pod: %v", err)
	}

	// Delete uses grace 0.
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, "d"); err != nil || grace == nil || *grace != 0 {
		t.Errorf("Delete: %v, grace %v", err, grace)
	}

	// After Close, Watch channels are closed and calls fail.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch { // drain until closed
	}
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: "late"}); err == nil {
		t.Error("Create after Close succeeded")
	}
}

// A List right after a Create shows the pod even if the informer has not
// yet, and a List right after a Delete does not bring it back.
func TestListReadsItsOwnWrites(t *testing.T) {
	p, _ := fakeProvider(t)
	ctx := ctxT(t)
	if _, err := p.List(ctx); err != nil { // synced
		t.Fatal(err)
	}
	w, err := p.Create(ctx, providers.WorkerSpec{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	// Simulate a lagging cache: forget whatever the informer saw of it.
	if obj, ok, _ := p.inf.GetIndexer().GetByKey("ci/" + domain.WorkerName("a")); ok {
		_ = p.inf.GetIndexer().Delete(obj)
		p.created[domain.WorkerName("a")] = createdPod{pod: podOf(obj), at: time.Now()}
	}
	p.mu.Unlock()
	ws, err := p.List(ctx)
	if err != nil || len(ws) != 1 || ws[0].ID != w.ID {
		t.Fatalf("List after Create = %+v, %v", ws, err)
	}

	if err := p.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// The informer has seen the deletion; make it lag behind again by
	// putting the pod back: List must not show it.
	key := "ci/" + domain.WorkerName("a")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok, _ := p.inf.GetIndexer().GetByKey(key); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer never saw the deletion")
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: domain.WorkerName("a"), Namespace: "ci", UID: "uid-a",
		Labels: domain.WorkerLabels("hodei-test", "linux", "a")}}
	p.mu.Lock()
	p.deleted["uid-a"] = time.Now()
	_ = p.inf.GetIndexer().Add(pod)
	p.mu.Unlock()
	if ws, _ := p.List(ctx); len(ws) != 0 {
		t.Errorf("List after Delete = %+v", ws)
	}
}

// List fails at once with the API's error when the informer cannot list.
func TestListReportsForbidden(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("RBAC says no"))
	})
	p, err := NewForClient(baseConfig(kcfg(nil)), cs, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.List(ctxT(t))
	if !apierrors.IsForbidden(err) {
		t.Errorf("List = %v, want Forbidden", err)
	}
	if err := p.Ping(ctxT(t)); !apierrors.IsForbidden(err) {
		t.Errorf("Ping = %v, want Forbidden", err)
	}
}
