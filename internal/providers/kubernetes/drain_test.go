package kubernetes_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	kprov "github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
)

// The drain handshake on the real API server: the pod's
// terminationGracePeriodSeconds is drain_timeout; a drain deletes it with
// drain_timeout as the grace (the kubelet's SIGTERM; the example worker
// takes no new job and finishes its running ones), sends nothing more
// while the worker reports busy, and kills it (grace 0) once it is idle
// and stop_grace_period has passed, or at drain_timeout, reporting a busy
// kill. The pods are bound to a node no kubelet (and no kwok) serves, so
// a deleted pod stays terminating until the provider's kill or the
// test's own removal (the worker exiting by itself): what the provider
// sends is what the test sees.
func TestDrainHonoursDrainTimeout(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	admin := c.Clientset()
	ns := namespace(t, c, "drain")
	p, _ := newProvider(t, c, ns, func(cfg *kprov.Config) {
		cfg.StopGrace = time.Second
		cfg.DrainTimeout = time.Hour
		cfg.Kubernetes.PodTemplate = map[string]any{"nodeName": "hodei-drain-test-no-kubelet"}
	})
	ctx := ctxT(t, 3*time.Minute)
	get := func(id domain.WorkerID) (*corev1.Pod, bool) {
		t.Helper()
		pod, err := admin.CoreV1().Pods(ns).Get(ctx, domain.WorkerName(id), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return pod, true
	}
	type result struct {
		killedBusy bool
		err        error
		at         time.Time
	}
	cases := []struct {
		name    string
		spec    providers.DrainSpec
		busy    bool
		idleAt  time.Duration // busy turns false after this (0: never)
		exitAt  time.Duration // the worker exits by itself after this (0: never)
		minKill time.Duration // the pod must outlive the SIGTERM by at least this
		want    bool          // killedBusy
	}{
		{"busy, then idle: killed only once idle", providers.DrainSpec{Grace: time.Second, Timeout: time.Hour}, true, 3 * time.Second, 0, 3 * time.Second, false},
		{"busy throughout, exits when its job ends: never killed", providers.DrainSpec{Grace: time.Second, Timeout: time.Hour}, true, 0, 3 * time.Second, 3 * time.Second, false},
		{"busy past drain_timeout: killed and reported", providers.DrainSpec{Grace: time.Second, Timeout: 3 * time.Second}, true, 0, 0, 3 * time.Second, true},
		{"idle: killed after stop_grace_period", providers.DrainSpec{Grace: 2 * time.Second, Timeout: time.Hour}, false, 0, 0, 2 * time.Second, false},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			id := domain.NewWorkerID()
			if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: "p1"}); err != nil {
				t.Fatal(err)
			}
			pod, ok := get(id)
			if !ok || pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds != 3600 {
				t.Fatalf("pod %v: terminationGracePeriodSeconds %v, want 3600 (drain_timeout)", ok, pod.Spec.TerminationGracePeriodSeconds)
			}
			var busy atomic.Bool
			busy.Store(cs.busy)
			spec := cs.spec
			spec.Busy, spec.Poll = busy.Load, 100*time.Millisecond
			start := time.Now()
			// Every change of the pod's deletion grace, in order, from
			// before the drain: a poll would see only some of them, and
			// an API server's kill is two writes (the grace set to 0, then
			// the removal) that a poll may catch in between.
			changes := watchGrace(t, ctx, admin, ns, pod, start)
			done := make(chan result, 1)
			go func() {
				kb, err := p.Drain(ctx, id, spec)
				done <- result{kb, err, time.Now()}
			}()
			var idle, exit <-chan time.Time
			if cs.idleAt > 0 {
				idle = time.After(cs.idleAt)
			}
			if cs.exitAt > 0 {
				exit = time.After(cs.exitAt)
			}
			var res result
			sigterm, returned, removed := false, false, false
			for !returned || !removed {
				select {
				case <-idle:
					busy.Store(false)
					idle = nil
				case <-exit:
					zero := int64(0) // the worker's job ended, it exited: the pod goes
					if err := admin.CoreV1().Pods(ns).Delete(ctx, domain.WorkerName(id), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
						t.Fatal(err)
					}
					exit = nil
				case c, ok := <-changes:
					if !ok {
						t.Fatal("the watch on the pod ended")
					}
					switch {
					case !sigterm && c.grace != int64(spec.Timeout.Seconds()):
						t.Fatalf("the first deletion grace is %s, want %s (the SIGTERM: drain_timeout)", c, spec.Timeout)
					case !sigterm:
						sigterm = true
					// Received no later than it happened: one received
					// before minKill was made before it.
					case c.at < cs.minKill:
						t.Fatalf("after %s the deletion grace is %s, before the case allows a kill (%s)", c.at.Round(time.Millisecond), c, cs.minKill)
					case c.grace > 0:
						t.Fatalf("after %s the deletion grace is %s, want 0 (a kill) or the pod gone", c.at.Round(time.Millisecond), c)
					}
					if c.grace < 0 {
						removed, changes = true, nil // the watch ends with the removal
					}
				case res = <-done:
					returned = true
				case <-ctx.Done():
					t.Fatalf("drain returned %v, pod removed %v when the test timed out", returned, removed)
				}
			}
			if res.err != nil {
				t.Fatalf("Drain: %v", res.err)
			}
			if res.killedBusy != cs.want {
				t.Errorf("killedBusy = %v, want %v", res.killedBusy, cs.want)
			}
			if took := res.at.Sub(start); took < cs.minKill {
				t.Errorf("the pod went %s after the SIGTERM, want at least %s", took.Round(time.Millisecond), cs.minKill)
			}
			if _, ok := get(id); ok {
				t.Errorf("pod still there after Drain returned")
			}
			t.Logf("drained in %s (killed busy %v)", res.at.Sub(start).Round(time.Millisecond), res.killedBusy)
		})
	}
}

// graceChange is a change of a pod's deletion grace as a watch saw it:
// the new grace in seconds (-1: the pod was removed), and how long after
// the test's start the test received it.
type graceChange struct {
	grace int64
	at    time.Duration
}

func (c graceChange) String() string {
	if c.grace < 0 {
		return "none (the pod removed)"
	}
	return (time.Duration(c.grace) * time.Second).String()
}

// watchGrace follows pod from the version given (so nothing after it is
// missed, also when the API server ends a watch and it is resumed) and
// sends each change of its deletion grace, up to its removal.
func watchGrace(t *testing.T, ctx context.Context, cs k8s.Interface, ns string, pod *corev1.Pod, start time.Time) <-chan graceChange {
	t.Helper()
	w, err := watchtools.NewRetryWatcherWithContext(ctx, pod.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = "metadata.name=" + pod.Name
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	out := make(chan graceChange, 16)
	go func() {
		defer close(out)
		last := int64(-2)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.UID != pod.UID {
				continue
			}
			g := int64(-1)
			if ev.Type != watch.Deleted {
				if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil {
					continue
				}
				g = *p.DeletionGracePeriodSeconds
			}
			if g == last {
				continue
			}
			last = g
			select {
			case out <- graceChange{grace: g, at: time.Since(start)}:
			case <-ctx.Done():
				return
			}
			if g < 0 {
				return
			}
		}
	}()
	return out
}
