package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// watchBuffer is how many changes a Watch channel holds beyond the
// current state it starts with. A reader that falls this far behind has
// its channel closed, and re-lists.
const watchBuffer = 1024

// pendingTTL bounds how long the created and deleted bookkeeping waits for
// the informer to show a write: far longer than any watch lag.
const pendingTTL = 2 * time.Minute

// errClosed is returned by calls made after Close.
var errClosed = errors.New("kubernetes provider is closed")

// subscriber is one Watch.
type subscriber struct {
	ch   chan domain.WorkerChange
	done chan struct{}
}

// newInformer builds the pool's pod informer: the namespace, the ownership
// selector, no periodic resync (the reconciler re-lists from the cache on
// its own schedule), managed fields dropped to save memory.
func (p *Provider) newInformer() cache.SharedIndexInformer {
	sel := p.sel.String()
	inf := coreinformers.NewFilteredPodInformer(p.cs, p.ns, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = sel
	})
	_ = inf.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		if p.ctx.Err() != nil {
			return
		}
		// Expired resource versions and closed streams are routine: the
		// reflector lists again.
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			p.log.Debug().Err(err).Msg("pod watch ended; re-listing")
			return
		}
		p.log.Warn().Err(err).Msg("listing or watching pods failed; retrying with backoff")
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.seen(obj, nil) },
		UpdateFunc: func(old, obj any) { p.seen(obj, old) },
		DeleteFunc: p.removed,
	})
	return inf
}

// start runs the informer (once, until Close).
func (p *Provider) start() {
	p.startOnce.Do(func() {
		go func() {
			defer close(p.stopped)
			p.inf.RunWithContext(p.ctx)
		}()
	})
}

// waitSynced starts the informer and waits for its first listing. If the
// listing failed, its error is returned at once (Forbidden, unreachable
// server), so the caller's retry and circuit breaker see it.
func (p *Provider) waitSynced(ctx context.Context) error {
	p.start()
	if p.inf.HasSynced() {
		return nil
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.inf.HasSynced() {
			return nil
		}
		p.mu.Lock()
		err := p.lastErr
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("listing pods in namespace %s: %w", p.ns, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the pod informer of namespace %s to sync: %w", p.ns, ctx.Err())
		case <-p.ctx.Done():
			return errClosed
		case <-tick.C:
		}
	}
}

// podOf extracts a pod from an informer notification.
func podOf(obj any) *corev1.Pod {
	switch o := obj.(type) {
	case *corev1.Pod:
		return o
	case cache.DeletedFinalStateUnknown:
		pod, _ := o.Obj.(*corev1.Pod)
		return pod
	}
	return nil
}

// seen handles an added or updated pod (old is nil for an add).
func (p *Provider) seen(obj, oldObj any) {
	pod := podOf(obj)
	if pod == nil {
		return
	}
	id, ok := p.owned(pod.Labels)
	if !ok {
		return
	}
	old := podOf(oldObj)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.created[pod.Name]; ok && c.pod.UID == pod.UID {
		delete(p.created, pod.Name)
	}
	var change domain.WorkerChange
	switch {
	case pod.DeletionTimestamp != nil:
		// Being deleted: gone from the pool's point of view (it takes no
		// more jobs), whoever deleted it.
		delete(p.deleted, pod.UID)
		if old != nil && old.DeletionTimestamp != nil {
			return
		}
		change = domain.WorkerChange{ID: id, Gone: true}
	case p.isDeletedLocked(pod.UID):
		change = domain.WorkerChange{ID: id, Gone: true}
	default:
		w := p.workerOf(pod, id)
		if old != nil && old.DeletionTimestamp == nil {
			if prev := p.workerOf(old, id); prev.Phase == w.Phase && prev.Reason == w.Reason {
				return // nothing the scaler cares about changed
			}
		}
		change = domain.WorkerChange{ID: id, Worker: w}
	}
	p.broadcastLocked(change)
}

// removed handles a pod deleted from the cache.
func (p *Provider) removed(obj any) {
	pod := podOf(obj)
	if pod == nil {
		return
	}
	id, ok := p.owned(pod.Labels)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.deleted, pod.UID)
	if c, ok := p.created[pod.Name]; ok && c.pod.UID == pod.UID {
		delete(p.created, pod.Name)
	}
	if ch, ok := p.gone[pod.UID]; ok {
		close(ch)
		delete(p.gone, pod.UID)
	}
	if ok {
		p.broadcastLocked(domain.WorkerChange{ID: id, Gone: true})
	}
}

func (p *Provider) isDeletedLocked(uid types.UID) bool {
	_, ok := p.deleted[uid]
	return ok
}

// broadcastLocked hands a change to every Watch without blocking the
// informer: a subscriber whose buffer is full is dropped (its channel
// closed), and re-lists.
func (p *Provider) broadcastLocked(c domain.WorkerChange) {
	for s := range p.subs {
		select {
		case s.ch <- c:
		default:
			p.log.Warn().Int("buffer", watchBuffer).Msg("watch reader fell behind; closing its channel so it re-lists")
			p.unsubscribeLocked(s)
		}
	}
}

func (p *Provider) unsubscribeLocked(s *subscriber) {
	if _, ok := p.subs[s]; !ok {
		return
	}
	delete(p.subs, s)
	close(s.ch)
	close(s.done)
}

// Watch pushes every change of the pool's pods, starting with the current
// state of each (so nothing falls between a List and the Watch), until ctx
// ends, the provider is closed or the reader falls more than watchBuffer
// changes behind; the channel is then closed. A pod being deleted is
// reported Gone at once.
func (p *Provider) Watch(ctx context.Context) (<-chan domain.WorkerChange, error) {
	p.start()
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		return nil, errClosed
	}
	current := p.listLocked()
	s := &subscriber{ch: make(chan domain.WorkerChange, len(current)+watchBuffer), done: make(chan struct{})}
	for _, w := range current {
		s.ch <- domain.WorkerChange{ID: w.ID, Worker: w}
	}
	p.subs[s] = struct{}{}
	p.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-p.ctx.Done():
		case <-s.done:
			return
		}
		p.mu.Lock()
		p.unsubscribeLocked(s)
		p.mu.Unlock()
	}()
	return s.ch, nil
}

// List returns every worker of the pool from the informer's cache (after
// its first listing), including pods this provider just created that the
// cache does not show yet, and leaving out pods being deleted.
func (p *Provider) List(ctx context.Context) ([]domain.Worker, error) {
	if err := p.waitSynced(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listLocked(), nil
}

func (p *Provider) listLocked() []domain.Worker {
	now := time.Now()
	objs := p.inf.GetIndexer().List()
	out := make([]domain.Worker, 0, len(objs)+len(p.created))
	inCache := make(map[string]bool, len(objs))
	for _, obj := range objs {
		pod := podOf(obj)
		if pod == nil {
			continue
		}
		inCache[pod.Name] = true
		id, ok := p.owned(pod.Labels)
		if !ok || pod.DeletionTimestamp != nil || p.isDeletedLocked(pod.UID) {
			continue
		}
		out = append(out, p.workerOf(pod, id))
	}
	for name, c := range p.created {
		switch {
		case now.Sub(c.at) > pendingTTL:
			delete(p.created, name) // the informer never showed it: it is gone
		case !inCache[name]:
			id, _ := p.owned(c.pod.Labels)
			out = append(out, p.workerOf(c.pod, id))
		}
	}
	for uid, at := range p.deleted {
		if now.Sub(at) > pendingTTL {
			delete(p.deleted, uid)
		}
	}
	slices.SortFunc(out, func(a, b domain.Worker) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}
