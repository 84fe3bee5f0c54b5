// Package factory builds the provider a pool's configuration names. Every
// provider is compiled in; the choice is made at run time, per pool.
package factory

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/docker"
	"github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
)

// New returns the provider for pool, owned by the autoscaler named owner:
// for a pool with tiers a providers.Tiered of one provider per tier.
func New(owner string, pool config.Pool, log zerolog.Logger) (providers.Provider, error) {
	if !pool.Tiered() {
		return newOne(owner, pool, "", log)
	}
	var tiers []providers.Provider
	var names []string
	for i, t := range pool.Tiers {
		p, err := newOne(owner, pool.TierPool(i), t.TierName(), log)
		if err != nil {
			for _, q := range tiers {
				if c, ok := q.(io.Closer); ok {
					_ = c.Close() // the error that matters is err
				}
			}
			return nil, fmt.Errorf("tier %s: %w", t.TierName(), err)
		}
		tiers, names = append(tiers, p), append(names, t.TierName())
	}
	return providers.NewTiered(names, tiers), nil
}

// newOne builds one provider: the pool's, or one tier's (tier set).
func newOne(owner string, pool config.Pool, tier string, log zerolog.Logger) (providers.Provider, error) {
	log = log.With().Str("pool", pool.Name).Str("provider", pool.Provider).Logger()
	if tier != "" {
		log = log.With().Str("tier", tier).Logger()
	}
	var p providers.Provider
	var err error
	switch c := tierConfig(owner, pool, tier).(type) {
	case docker.Config:
		p, err = docker.New(c, log)
	case kubernetes.Config:
		p, err = kubernetes.New(c, log)
	default:
		return nil, fmt.Errorf("pool %s: provider %q is not available", pool.Name, pool.Provider)
	}
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	return p, nil
}

// providerConfig is what New gives the pool's provider: the one place
// that says which pool settings a provider uses.
func providerConfig(owner string, pool config.Pool) any {
	if !pool.Tiered() {
		return tierConfig(owner, pool, "")
	}
	out := make([]any, len(pool.Tiers))
	for i, t := range pool.Tiers {
		out[i] = tierConfig(owner, pool.TierPool(i), t.TierName())
	}
	return out
}

// tierConfig is providerConfig of one provider (tier: its tier label).
func tierConfig(owner string, pool config.Pool, tier string) any {
	switch pool.Provider {
	case docker.Name:
		return docker.Config{
			Owner:     owner,
			Pool:      pool.PoolName(),
			Docker:    pool.Docker,
			Resources: pool.Resources,
			Env:       pool.Env,
			Slots:     pool.JobsPerWorker,
			Tier:      tier,
		}
	case kubernetes.Name:
		return kubernetes.Config{
			Owner:        owner,
			Pool:         pool.PoolName(),
			Kubernetes:   pool.Kubernetes,
			Resources:    pool.Resources,
			Env:          pool.Env,
			Slots:        pool.JobsPerWorker,
			StopGrace:    pool.StopGracePeriod.D(),
			DrainTimeout: pool.DrainTimeout.D(),
			Tier:         tier,
		}
	}
	return nil
}

// Changed reports whether a pool's provider must be built again for new
// settings (a reload): whether New would give it another configuration
// (image, command, env, resources, slots ...). Workers that run keep what
// they were created with; new ones get the new settings.
func Changed(owner string, old, next config.Pool) bool {
	return !reflect.DeepEqual(providerConfig(owner, old), providerConfig(owner, next))
}

// Location says where a pool's workers live: the provider and, for
// docker, the engine (docker.host); for kubernetes, the cluster and the
// namespace (kubeconfig, context, namespace). A provider elsewhere could
// not see, stop or adopt the workers that run, so a reload cannot change
// it: the daemon keeps such a pool's settings and says so.
func Location(pool config.Pool) string {
	if pool.Tiered() {
		var parts []string
		for i, t := range pool.Tiers {
			parts = append(parts, "tier "+t.TierName()+": "+Location(pool.TierPool(i)))
		}
		return strings.Join(parts, "; ")
	}
	switch pool.Provider {
	case docker.Name:
		return "docker host " + strconv.Quote(pool.Docker.Host)
	case kubernetes.Name:
		k := pool.Kubernetes
		return fmt.Sprintf("kubernetes kubeconfig %q context %q namespace %q", k.Kubeconfig, k.Context, k.Namespace)
	}
	return "provider " + strconv.Quote(pool.Provider)
}

// Validate checks the pool's provider section with the provider's own
// rules (the ones New applies), without connecting to anything: for a
// docker pool the image, pull policy, network and mounts; for a kubernetes
// pool the same basics plus pod_template, label, toleration and selector
// syntax. Each problem is one error, keyed from the provider's section
// ("docker.mounts: ..."). autoscaler validate and the daemon's start both
// call it.
func Validate(pool config.Pool) error {
	if pool.Tiered() {
		var errs []error
		for i := range pool.Tiers {
			if err := Validate(pool.TierPool(i)); err != nil {
				errs = append(errs, fmt.Errorf("tiers[%d].%w", i, err))
			}
		}
		return errors.Join(errs...)
	}
	switch pool.Provider {
	case docker.Name:
		return docker.ValidateConfig(pool.Docker)
	case kubernetes.Name:
		return kubernetes.ValidateConfig(pool.Kubernetes)
	}
	return fmt.Errorf("provider: %q is not available: use docker or kubernetes", pool.Provider)
}
