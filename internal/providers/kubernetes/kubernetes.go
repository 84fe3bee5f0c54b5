// Package kubernetes implements providers.Provider on a Kubernetes cluster
// with client-go: one bare Pod per worker, named after the worker id and
// labelled with the ownership labels of the event contract.
//
// Status comes from one shared informer per pool, restricted to the pool's
// namespace and to the label selector
// hodei.autoscaler=<owner>,hodei.worker.pool=<pool>: List answers from its
// cache and Watch from its events, so steady state costs one watch
// connection and no polling. The API is only called to create and delete
// pods, to read a pod whose name is already taken (Create's adoption) and
// to Ping. That is exactly the RBAC of deploy/kubernetes: pods create,
// delete, get, list and watch in the workers' namespace.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Name is the provider name reported in domain.Worker.Provider.
const Name = "kubernetes"

// WorkerContainer is the name of the worker's container in every pod. A
// container of this name in pod_template is merged under the provider's.
const WorkerContainer = "worker"

// Client rate limits used when the pool's qps or burst is not set. The
// client-go defaults (5 and 10) would throttle a scale-up of 100 workers
// to 20 seconds of creates.
const (
	DefaultQPS   = 100
	DefaultBurst = 200
)

// ErrNotOwned reports that a pod with a worker's name exists but does not
// carry this provider's ownership labels. Like the Docker provider's, it
// wraps providers.ErrNotFound: for this pool the worker does not exist, and
// the pod is never touched.
var ErrNotOwned = fmt.Errorf("pod is not owned by this autoscaler pool: %w", providers.ErrNotFound)

// Config is what the provider needs from the daemon's configuration for one
// pool.
type Config struct {
	// Owner is the autoscaler's name (the hodei.autoscaler label value).
	Owner string
	// Pool is the pool the provider serves.
	Pool domain.PoolName
	// Kubernetes holds the pool's settings (connection, namespace, image,
	// scheduling, pod_template).
	Kubernetes config.Kubernetes
	// Resources are every worker container's requests and limits (0 =
	// not set).
	Resources domain.Resources
	// Env is added to every worker's environment.
	Env map[string]string
	// Slots is HODEI_WORKER_SLOTS (jobs_per_worker); values below 1 mean 1.
	Slots int
	// StopGrace is how long an idle worker is given to exit after
	// SIGTERM. DrainTimeout is how long a busy one may take to finish its
	// jobs (the drain handshake, Drain). The pod's
	// terminationGracePeriodSeconds is the longer of the two (rounded up
	// to whole seconds), so that an eviction or a kubectl delete gives a
	// busy worker the same time to finish as the autoscaler's own stop.
	StopGrace    time.Duration
	DrainTimeout time.Duration
	// Tier is the pool's tier this provider serves (the hodei.worker.tier
	// label of its pods): it only sees pods labelled with it. "" for a
	// pool with one provider.
	Tier string
}

// Provider drives the pods of one pool in one namespace.
type Provider struct {
	cfg  Config
	ns   string
	cs   k8s.Interface
	log  zerolog.Logger
	tmpl *podTemplate
	sel  labels.Selector

	inf       cache.SharedIndexInformer
	startOnce sync.Once
	ctx       context.Context // ends with Close; runs the informer
	cancel    context.CancelFunc
	stopped   chan struct{} // closed when the informer has returned

	mu      sync.Mutex
	lastErr error // the informer's last list/watch error (List reports it until the first sync)
	subs    map[*subscriber]struct{}
	// created holds pods this provider created that the informer has not
	// shown yet, so that a List right after a Create does not miss them.
	created map[string]createdPod
	// deleted holds the UIDs of pods this provider deleted whose deletion
	// the informer has not shown yet, so that a List right after a Stop
	// or Delete does not bring them back.
	deleted map[types.UID]time.Time
	// gone are waiters for a pod's removal (Stop), by UID.
	gone map[types.UID]chan struct{}
}

var _ providers.Provider = (*Provider)(nil)

// createdPod is a pod this provider created, and when (by its own clock).
type createdPod struct {
	pod *corev1.Pod
	at  time.Time
}

// New checks cfg, builds a client for the pool's cluster and returns the
// provider. It does not contact the cluster: the informer starts on the
// first List, Watch or Create, and Ping checks access.
//
// The connection is, in order: the pool's kubeconfig (with its context, if
// set); the in-cluster configuration when running in a pod; otherwise
// $KUBECONFIG or ~/.kube/config (with the pool's context, if set).
func New(cfg Config, log zerolog.Logger) (*Provider, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	rc, source, err := RESTConfig(cfg.Kubernetes)
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider for pool %s: %w", cfg.Pool, err)
	}
	rc.WarningHandler = &warnOnce{log: log.With().Str("provider", Name).Str("pool", string(cfg.Pool)).Logger()}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider for pool %s: creating client for %s: %w", cfg.Pool, rc.Host, err)
	}
	p, err := NewForClient(cfg, cs, log)
	if err != nil {
		return nil, err
	}
	p.log.Debug().Str("server", rc.Host).Str("config", source).Float32("qps", rc.QPS).Int("burst", rc.Burst).Msg("kubernetes client ready")
	return p, nil
}

// NewForClient is New with a clientset made by the caller (tests use
// client-go's fake clientset).
func NewForClient(cfg Config, cs k8s.Interface, log zerolog.Logger) (*Provider, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.Slots < 1 {
		cfg.Slots = 1
	}
	cfg.Env = maps.Clone(cfg.Env)
	tmpl, err := buildTemplate(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider for pool %s: %w", cfg.Pool, err)
	}
	set := labels.Set{
		domain.LabelOwner:      cfg.Owner,
		domain.LabelWorkerPool: string(cfg.Pool),
	}
	if cfg.Tier != "" {
		set[domain.LabelWorkerTier] = cfg.Tier
		if tmpl.meta.Labels == nil {
			tmpl.meta.Labels = map[string]string{}
		}
		tmpl.meta.Labels[domain.LabelWorkerTier] = cfg.Tier
	}
	sel := labels.SelectorFromSet(set)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		cfg:     cfg,
		ns:      cfg.Kubernetes.Namespace,
		cs:      cs,
		log:     log.With().Str("provider", Name).Str("pool", string(cfg.Pool)).Str("namespace", cfg.Kubernetes.Namespace).Logger(),
		tmpl:    tmpl,
		sel:     sel,
		ctx:     ctx,
		cancel:  cancel,
		stopped: make(chan struct{}),
		subs:    map[*subscriber]struct{}{},
		created: map[string]createdPod{},
		deleted: map[types.UID]time.Time{},
		gone:    map[types.UID]chan struct{}{},
	}
	p.inf = p.newInformer()
	return p, nil
}

func checkConfig(cfg Config) error {
	if cfg.Owner == "" {
		return errors.New("kubernetes provider: owner (the autoscaler name) is empty")
	}
	if err := domain.ValidatePoolName(string(cfg.Pool)); err != nil {
		return fmt.Errorf("kubernetes provider: %w", err)
	}
	if cfg.Resources.CPUMillis < 0 || cfg.Resources.MemoryMB < 0 {
		return fmt.Errorf("kubernetes provider for pool %s: resources must not be negative", cfg.Pool)
	}
	if err := ValidateConfig(cfg.Kubernetes); err != nil {
		return fmt.Errorf("kubernetes provider for pool %s: %w", cfg.Pool, err)
	}
	return nil
}

// RESTConfig returns the client configuration for a pool's settings and
// says where it came from. QPS and burst are the pool's (DefaultQPS and
// DefaultBurst when not set).
func RESTConfig(k config.Kubernetes) (*rest.Config, string, error) {
	var (
		rc     *rest.Config
		source string
		err    error
	)
	switch {
	case k.Kubeconfig != "":
		source = "kubeconfig " + k.Kubeconfig
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	default:
		if k.Context == "" {
			rc, err = rest.InClusterConfig()
			if err == nil {
				source = "in-cluster service account"
				break
			}
			if !errors.Is(err, rest.ErrNotInCluster) {
				return nil, "", fmt.Errorf("loading in-cluster configuration: %w", err)
			}
		}
		source = "$KUBECONFIG or ~/.kube/config"
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(),
			&clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	}
	if err != nil {
		return nil, "", fmt.Errorf("loading %s: %w", source, err)
	}
	if k.Context != "" {
		source += " (context " + k.Context + ")"
	}
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = float32(k.QPS), k.Burst
	if rc.QPS <= 0 {
		rc.QPS = DefaultQPS
	}
	if rc.Burst <= 0 {
		rc.Burst = DefaultBurst
	}
	rc.UserAgent = "hodei-autoscaler"
	return rc, source, nil
}

// Name returns "kubernetes".
func (p *Provider) Name() string { return Name }

// Namespace is the namespace of the pool's pods.
func (p *Provider) Namespace() string { return p.ns }

// Close stops the informer and ends every Watch. It is safe to call more
// than once.
func (p *Provider) Close() error {
	p.cancel()
	// Never started: mark it started, so it never will be, and done.
	p.startOnce.Do(func() { close(p.stopped) })
	<-p.stopped
	p.mu.Lock()
	for s := range p.subs {
		p.unsubscribeLocked(s)
	}
	p.mu.Unlock()
	return nil
}

// Ping checks that the cluster answers and that this provider may list the
// pool's pods in its namespace (one pod at most is returned).
func (p *Provider) Ping(ctx context.Context) error {
	_, err := p.cs.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{LabelSelector: p.sel.String(), Limit: 1})
	if err != nil {
		return fmt.Errorf("listing pods in namespace %s: %w", p.ns, err)
	}
	return nil
}

// owned reports whether labels mark a worker of this owner and pool, and
// returns its id.
func (p *Provider) owned(l map[string]string) (domain.WorkerID, bool) {
	return domain.OwnedTierWorker(l, p.cfg.Owner, p.cfg.Pool, p.cfg.Tier)
}

// ownedAs reports whether labels mark exactly worker id of this owner and
// pool.
func (p *Provider) ownedAs(l map[string]string, id domain.WorkerID) bool {
	got, ok := p.owned(l)
	return ok && got == id
}

// warnOnce logs each distinct warning of the API server once, through the
// provider's logger instead of klog. A namespace labelled
// pod-security.kubernetes.io/warn=restricted, for example, answers every
// pod creation with the same warning.
type warnOnce struct {
	log  zerolog.Logger
	mu   sync.Mutex
	seen map[string]bool
}

func (w *warnOnce) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	dup := w.seen[text]
	if !dup && len(w.seen) < 256 { // bounded: past that, every warning is logged
		if w.seen == nil {
			w.seen = map[string]bool{}
		}
		w.seen[text] = true
	}
	w.mu.Unlock()
	if !dup {
		w.log.Warn().Str("warning", text).Msg("kubernetes API warning (logged once)")
	}
}
