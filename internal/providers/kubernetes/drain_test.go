package kubernetes_test

import (
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	grace := func(pod *corev1.Pod) int64 {
		if pod.DeletionTimestamp == nil || pod.DeletionGracePeriodSeconds == nil {
			return -1
		}
		return *pod.DeletionGracePeriodSeconds
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
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				kb, err := p.Drain(ctx, id, spec)
				done <- result{kb, err, time.Now()}
			}()
			eventually(t, 30*time.Second, "the SIGTERM: a delete with drain_timeout as the grace", func() string {
				pod, ok := get(id)
				if !ok {
					return "pod gone at once"
				}
				if g := grace(pod); g != int64(spec.Timeout.Seconds()) {
					return "deletion grace " + time.Duration(g*int64(time.Second)).String()
				}
				return ""
			})
			// Until the case's turn: the pod stays terminating with the
			// full grace, and the drain goes on.
			var res result
			for {
				el := time.Since(start)
				if cs.idleAt > 0 && el >= cs.idleAt && busy.Load() {
					busy.Store(false)
				}
				if cs.exitAt > 0 && el >= cs.exitAt {
					zero := int64(0) // the worker's job ended, it exited: the pod goes
					if err := admin.CoreV1().Pods(ns).Delete(ctx, domain.WorkerName(id), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
						t.Fatal(err)
					}
					cs.exitAt = 0
				}
				select {
				case res = <-done:
				default:
					if pod, ok := get(id); ok {
						if g := grace(pod); g != int64(spec.Timeout.Seconds()) {
							t.Fatalf("after %s the deletion grace is %ds while the drain goes on", time.Since(start).Round(time.Millisecond), g)
						}
					}
					time.Sleep(50 * time.Millisecond) // polling the API server, not a wait for a result
					continue
				}
				break
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
