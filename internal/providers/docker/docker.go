// Package docker implements providers.Provider on a Docker Engine: one
// container per worker, named after the worker id and labelled with the
// ownership labels of the event contract.
package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Name is the provider name reported in domain.Worker.Provider.
const Name = "docker"

// Pull policies (config.Docker.PullPolicy).
const (
	PullAlways       = config.PullAlways
	PullIfNotPresent = config.PullIfNotPresent
	PullNever        = config.PullNever
)

// ErrNotOwned reports that a container with a worker's name exists but does
// not carry this provider's ownership labels (another autoscaler, another
// pool, or no labels at all). It wraps providers.ErrNotFound: from this
// provider's point of view the worker does not exist, and it must not touch
// the container.
var ErrNotOwned = fmt.Errorf("container is not owned by this autoscaler pool: %w", providers.ErrNotFound)

// ErrImageNotPresent reports that the pool's image is missing locally and
// the pull policy forbids pulling it.
var ErrImageNotPresent = errors.New("image not present locally")

// Config is what the provider needs from the daemon's configuration for one
// pool.
type Config struct {
	// Owner is the autoscaler's name (the hodei.autoscaler label value).
	Owner string
	// Pool is the pool the provider serves.
	Pool domain.PoolName
	// Docker holds the pool's Docker settings (host, image, command, ...).
	Docker config.Docker
	// Resources limits every worker container (0 = unlimited).
	Resources domain.Resources
	// Env is added to every worker's environment.
	Env map[string]string
	// Slots is HODEI_WORKER_SLOTS, the jobs a worker may run at once
	// (jobs_per_worker); values below 1 mean 1.
	Slots int
	// Tier is the pool's tier this provider serves (the hodei.worker.tier
	// label of its containers): it only sees containers labelled with it.
	// "" for a pool with one provider.
	Tier string
	// SSHProgram is the ssh client for ssh:// hosts ("ssh" if empty).
	SSHProgram string
}

func (c Config) sshProgram() string {
	if c.SSHProgram != "" {
		return c.SSHProgram
	}
	return sshProgram
}

// Provider drives the containers of one pool on one Docker Engine.
type Provider struct {
	cfg    Config
	cli    *client.Client
	log    zerolog.Logger
	mounts []mount.Mount
	policy string

	// negotiating single-flights the API version negotiation; negotiated
	// says it is done (see negotiate).
	negotiating sync.Mutex
	negotiated  atomic.Bool
}

var _ providers.Provider = (*Provider)(nil)

// ValidateConfig reports every problem of a pool's docker section, keyed
// from "docker.": the rules of config.Docker.Check, which config
// validation applies too, so autoscaler validate and New refuse the same
// sections.
func ValidateConfig(d config.Docker) error { return d.Check() }

// New checks cfg and builds a client for the pool's engine: DOCKER_HOST and
// the other DOCKER_* variables, overridden by cfg.Docker.Host when set, with
// API version negotiation (the engine may be older than the client). It does
// not contact the engine; use Ping for that.
func New(cfg Config, log zerolog.Logger) (*Provider, error) {
	if cfg.Owner == "" {
		return nil, errors.New("docker provider: owner (the autoscaler name) is empty")
	}
	if err := domain.ValidatePoolName(string(cfg.Pool)); err != nil {
		return nil, fmt.Errorf("docker provider: %w", err)
	}
	if err := ValidateConfig(cfg.Docker); err != nil {
		return nil, fmt.Errorf("docker provider for pool %s: %w", cfg.Pool, err)
	}
	if cfg.Resources.CPUMillis < 0 || cfg.Resources.MemoryMB < 0 {
		return nil, fmt.Errorf("docker provider for pool %s: resources must not be negative", cfg.Pool)
	}
	mounts := make([]mount.Mount, 0, len(cfg.Docker.Mounts))
	for _, spec := range cfg.Docker.Mounts {
		m, err := parseMount(spec)
		if err != nil {
			return nil, fmt.Errorf("docker provider for pool %s: %w", cfg.Pool, err)
		}
		mounts = append(mounts, m)
	}
	if cfg.Slots < 1 {
		cfg.Slots = 1
	}
	cfg.Env = maps.Clone(cfg.Env)

	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	switch {
	case strings.HasPrefix(cfg.Docker.Host, "ssh://"):
		ssh, err := sshOpts(cfg.Docker.Host, cfg.sshProgram())
		if err != nil {
			return nil, fmt.Errorf("docker provider for pool %s: %w", cfg.Pool, err)
		}
		opts = append(opts, ssh...)
	case cfg.Docker.Host != "":
		opts = append(opts, client.WithHost(cfg.Docker.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker provider for pool %s: creating client: %w", cfg.Pool, err)
	}
	return &Provider{
		cfg:    cfg,
		cli:    cli,
		log:    log.With().Str("provider", Name).Str("pool", string(cfg.Pool)).Logger(),
		mounts: mounts,
		policy: cfg.Docker.PullPolicy,
	}, nil
}

// Name returns "docker".
func (p *Provider) Name() string { return Name }

// Close releases the client's connections.
func (p *Provider) Close() error {
	if err := p.cli.Close(); err != nil {
		return fmt.Errorf("closing docker client: %w", err)
	}
	return nil
}

// Ping checks that the engine answers (and settles the API version).
func (p *Provider) Ping(ctx context.Context) error {
	if p.negotiated.Load() {
		if _, err := p.cli.Ping(ctx); err != nil {
			return fmt.Errorf("pinging docker engine %s: %w", p.cli.DaemonHost(), err)
		}
		return nil
	}
	return p.negotiate(ctx)
}

// negotiate settles the engine's API version once, before the provider's
// first request. The client's own negotiation is lazy, on its first
// request, and writes the version while other first requests may read it
// without its lock (ContainerList, Events and ContainerStop read it to
// shape their query): the daemon's first calls on a pool come at once, so
// every method calls negotiate first. One ping, under a lock; a failed
// one is tried again by the next call (the engine may come up later).
func (p *Provider) negotiate(ctx context.Context) error {
	if p.negotiated.Load() {
		return nil
	}
	p.negotiating.Lock()
	defer p.negotiating.Unlock()
	if p.negotiated.Load() {
		return nil
	}
	ping, err := p.cli.Ping(ctx)
	if err != nil {
		return fmt.Errorf("pinging docker engine %s: %w", p.cli.DaemonHost(), err)
	}
	p.cli.NegotiateAPIVersionPing(ping)
	p.negotiated.Store(true)
	return nil
}

// parseMount turns a docker.mounts entry into a bind mount (the rules are
// config.ParseMount's).
func parseMount(spec string) (mount.Mount, error) {
	m, err := config.ParseMount(spec)
	if err != nil {
		return mount.Mount{}, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}, nil
}

// owned reports whether labels mark a worker of this owner and pool, and
// returns its id.
func (p *Provider) owned(labels map[string]string) (domain.WorkerID, bool) {
	return domain.OwnedTierWorker(labels, p.cfg.Owner, p.cfg.Pool, p.cfg.Tier)
}

// ownedAs reports whether labels mark exactly worker id of this owner and pool.
func (p *Provider) ownedAs(labels map[string]string, id domain.WorkerID) bool {
	got, ok := p.owned(labels)
	return ok && got == id
}

// labelFilters are the ownership filters of List and Watch.
func (p *Provider) labelFilters() []string {
	f := []string{
		domain.LabelWorker + "=true",
		domain.LabelOwner + "=" + p.cfg.Owner,
		domain.LabelWorkerPool + "=" + string(p.cfg.Pool),
	}
	if p.cfg.Tier != "" {
		f = append(f, domain.LabelWorkerTier+"="+p.cfg.Tier)
	}
	return f
}

// env returns the worker's environment: the pool's env, then the HODEI_*
// variables (which win over pool entries of the same name), sorted by key.
func (p *Provider) env(id domain.WorkerID) []string {
	vars := maps.Clone(p.cfg.Env)
	if vars == nil {
		vars = map[string]string{}
	}
	vars[domain.EnvWorkerID] = string(id)
	vars[domain.EnvWorkerPool] = string(p.cfg.Pool)
	vars[domain.EnvWorkerSlots] = strconv.Itoa(p.cfg.Slots)
	out := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// isNotFound reports a missing object (container, image).
func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// isConflict reports a name conflict or an operation already in progress.
func isConflict(err error) bool { return cerrdefs.IsConflict(err) }
