package kubernetes

import (
	"context"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

var _ providers.Drainer = (*Provider)(nil)

// Drain is the drain handshake on Kubernetes. The pod is deleted with
// gracePeriodSeconds = spec.Timeout (drain_timeout): the kubelet sends
// SIGTERM at once (the example worker then takes no new job and finishes
// its running ones) and kills only when that grace runs out. While
// spec.Busy says the worker runs a job nothing more is sent; once it is
// idle and spec.Grace (stop_grace_period) has passed since the SIGTERM,
// or once spec.Timeout has passed busy or not, the pod is deleted again
// with gracePeriodSeconds 0, which the API server applies as the shorter
// grace: the kill. killedBusy reports a kill (ours, or the kubelet's at
// the end of the grace) of a worker still busy. Drain waits for the pod's
// removal; a pod still terminating when ctx ends is left to Kubernetes.
func (p *Provider) Drain(ctx context.Context, id domain.WorkerID, spec providers.DrainSpec) (bool, error) {
	timeout := max(spec.Timeout, spec.Grace, 0)
	poll := spec.Poll
	if poll <= 0 {
		poll = time.Second
	}
	busy := func() bool { return spec.Busy != nil && spec.Busy() }
	var (
		wait    chan struct{}
		waitUID types.UID
	)
	pod, err := p.deletePod(ctx, id, int64(math.Ceil(timeout.Seconds())), func(pod *corev1.Pod) {
		// Registered before the delete, so its removal cannot be missed.
		if wait != nil {
			p.dropWaiter(waitUID)
		}
		wait, waitUID = p.goneWaiter(pod.UID), pod.UID
	})
	if wait != nil {
		defer p.dropWaiter(waitUID)
	}
	if err != nil {
		return false, fmt.Errorf("draining worker: %w", err)
	}
	if pod == nil {
		return false, nil
	}
	start := time.Now()
	forced, killedBusy := false, false
	gone := func() (bool, error) {
		if !forced && time.Since(start) >= timeout && busy() {
			killedBusy = true // the kubelet's kill at the end of the grace
		}
		p.log.Debug().Str("worker_id", string(id)).Stringer("took", time.Since(start)).Bool("killed_busy", killedBusy).Msg("pod drained and removed")
		return killedBusy, nil
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-wait:
			return gone()
		case <-tick.C:
			if p.inf.HasSynced() && !p.cached(pod) {
				return gone()
			}
			if forced {
				continue
			}
			elapsed, b := time.Since(start), busy()
			if (elapsed >= spec.Grace && !b) || elapsed >= timeout {
				forced, killedBusy = true, b
				if err := p.kill(ctx, pod); err != nil {
					return killedBusy, err
				}
			}
		case <-ctx.Done():
			p.log.Warn().Str("worker_id", string(id)).Stringer("drain_timeout", timeout).Msg("pod still terminating; Kubernetes will finish removing it")
			return killedBusy, nil
		case <-p.ctx.Done():
			return killedBusy, nil
		}
	}
}

// kill shortens a terminating pod's grace to 0 (the same pod: its UID is
// the precondition).
func (p *Provider) kill(ctx context.Context, pod *corev1.Pod) error {
	zero, uid := int64(0), pod.UID
	err := p.cs.CoreV1().Pods(p.ns).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("killing pod %s in namespace %s after its drain: %w", pod.Name, p.ns, err)
	}
	return nil
}
