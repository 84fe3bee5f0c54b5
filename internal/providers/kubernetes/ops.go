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

// Create creates the worker's pod. It is idempotent: when a pod of the
// worker's name exists and carries this provider's labels for that id, it
// is adopted; a pod of that name that is not ours is an error wrapping
// ErrNotOwned, and so is one being deleted (the worker cannot be created
// until it is gone). The worker is returned as the API server answered.
func (p *Provider) Create(ctx context.Context, spec providers.WorkerSpec) (domain.Worker, error) {
	name := domain.WorkerName(spec.ID)
	if err := spec.Check(p.cfg.Pool); err != nil {
		return domain.Worker{}, fmt.Errorf("creating pod %s: %w", name, err)
	}
	if p.ctx.Err() != nil {
		return domain.Worker{}, errClosed
	}
	p.start() // so the informer shows the pod as it goes
	pods := p.cs.CoreV1().Pods(p.ns)
	created, err := pods.Create(ctx, p.tmpl.pod(p.cfg.Owner, p.cfg.Pool, spec.ID), metav1.CreateOptions{})
	if err == nil {
		p.mu.Lock()
		if !p.inCacheLocked(created) {
			p.created[name] = createdPod{pod: created, at: time.Now()}
		}
		p.mu.Unlock()
		p.log.Debug().Str("worker_id", string(spec.ID)).Msg("pod created")
		return p.workerOf(created, spec.ID), nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return domain.Worker{}, fmt.Errorf("creating pod %s in namespace %s: %w", name, p.ns, err)
	}
	// A retried Create, or one that raced another: adopt the pod if it is
	// this worker's.
	existing, gerr := pods.Get(ctx, name, metav1.GetOptions{})
	if gerr != nil {
		return domain.Worker{}, fmt.Errorf("creating pod %s: the name is taken and reading that pod failed: %w", name, gerr)
	}
	if !p.ownedAs(existing.Labels, spec.ID) {
		return domain.Worker{}, fmt.Errorf("creating pod %s in namespace %s: the name belongs to a pod this autoscaler pool does not own: %w", name, p.ns, ErrNotOwned)
	}
	if existing.DeletionTimestamp != nil {
		return domain.Worker{}, fmt.Errorf("creating pod %s: a pod of that name is being deleted; a new worker id is needed", name)
	}
	p.log.Debug().Str("worker_id", string(spec.ID)).Msg("adopted existing pod")
	return p.workerOf(existing, spec.ID), nil
}

// inCacheLocked reports whether the informer already holds pod.
func (p *Provider) inCacheLocked(pod *corev1.Pod) bool {
	obj, ok, _ := p.inf.GetIndexer().GetByKey(p.ns + "/" + pod.Name)
	return ok && podOf(obj) != nil && podOf(obj).UID == pod.UID
}

// lookup finds the worker's pod: in the informer's cache, else among the
// pods just created, else from the API. found is false when no pod has the
// worker's name; a pod of that name that is not ours is ErrNotOwned.
func (p *Provider) lookup(ctx context.Context, id domain.WorkerID, fresh bool) (*corev1.Pod, bool, error) {
	name := domain.WorkerName(id)
	if !fresh {
		p.mu.Lock()
		c, justCreated := p.created[name]
		p.mu.Unlock()
		if obj, ok, _ := p.inf.GetIndexer().GetByKey(p.ns + "/" + name); ok {
			if pod := podOf(obj); pod != nil && p.ownedAs(pod.Labels, id) {
				return pod, true, nil
			}
		} else if justCreated {
			return c.pod, true, nil
		}
	}
	pod, err := p.cs.CoreV1().Pods(p.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading pod %s in namespace %s: %w", name, p.ns, err)
	}
	if !p.ownedAs(pod.Labels, id) {
		return nil, false, fmt.Errorf("pod %s in namespace %s: %w", name, p.ns, ErrNotOwned)
	}
	return pod, true, nil
}

// deletePod deletes the worker's pod with a grace period, only if it is
// the pod looked up (the delete has its UID as precondition), calling
// beforeDelete with it first. It returns the pod deleted, or nil if there
// was nothing to delete.
func (p *Provider) deletePod(ctx context.Context, id domain.WorkerID, grace int64, beforeDelete func(*corev1.Pod)) (*corev1.Pod, error) {
	name := domain.WorkerName(id)
	for attempt := 0; ; attempt++ {
		pod, found, err := p.lookup(ctx, id, attempt > 0)
		if err != nil || !found {
			return nil, err
		}
		if beforeDelete != nil {
			beforeDelete(pod)
		}
		uid := pod.UID
		err = p.cs.CoreV1().Pods(p.ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: &grace,
			Preconditions:      &metav1.Preconditions{UID: &uid},
		})
		switch {
		case err == nil:
			p.mu.Lock()
			p.deleted[uid] = time.Now()
			if c, ok := p.created[name]; ok && c.pod.UID == uid {
				delete(p.created, name)
			}
			p.mu.Unlock()
			return pod, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case apierrors.IsConflict(err) && attempt == 0:
			// The cache held an older pod of that name: look again.
			continue
		}
		return nil, fmt.Errorf("deleting pod %s in namespace %s: %w", name, p.ns, err)
	}
}

// Stop deletes the worker's pod with gracePeriodSeconds = grace (rounded
// up to whole seconds): the kubelet sends SIGTERM, then SIGKILL after the
// grace period, and removes the pod. Stop waits for the removal until ctx
// ends; a pod still terminating then (a node that does not answer) is left
// to Kubernetes and Stop succeeds, as the worker is already out of the
// pool. A missing pod is success; a pod of that name that is not ours is
// left alone and reported with ErrNotOwned.
func (p *Provider) Stop(ctx context.Context, id domain.WorkerID, grace time.Duration) error {
	secs := int64(math.Ceil(max(grace, 0).Seconds()))
	var (
		wait    chan struct{}
		waitUID types.UID
	)
	pod, err := p.deletePod(ctx, id, secs, func(pod *corev1.Pod) {
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
		return fmt.Errorf("stopping worker: %w", err)
	}
	if pod == nil {
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-wait:
			p.log.Debug().Str("worker_id", string(id)).Stringer("grace", grace).Msg("pod stopped and removed")
			return nil
		case <-tick.C:
			if p.inf.HasSynced() && !p.cached(pod) {
				return nil
			}
		case <-ctx.Done():
			p.log.Warn().Str("worker_id", string(id)).Stringer("grace", grace).Msg("pod still terminating; Kubernetes will finish removing it")
			return nil
		case <-p.ctx.Done():
			return nil
		}
	}
}

// Delete removes the worker's pod at once (gracePeriodSeconds 0). A
// missing pod is success; a pod of that name that is not ours is left
// alone and reported with ErrNotOwned.
func (p *Provider) Delete(ctx context.Context, id domain.WorkerID) error {
	pod, err := p.deletePod(ctx, id, 0, nil)
	if err != nil {
		return err
	}
	if pod != nil {
		p.log.Debug().Str("worker_id", string(id)).Msg("pod deleted")
	}
	return nil
}

// cached reports whether the informer still holds pod (same UID).
func (p *Provider) cached(pod *corev1.Pod) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inCacheLocked(pod)
}

func (p *Provider) goneWaiter(uid types.UID) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.gone[uid]
	if !ok {
		ch = make(chan struct{})
		p.gone[uid] = ch
	}
	return ch
}

func (p *Provider) dropWaiter(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.gone, uid)
}
