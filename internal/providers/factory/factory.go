// Package factory builds the provider a pool's configuration names. Every
// provider is compiled in; the choice is made at run time, per pool.
package factory

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/docker"
	"github.com/hodei/hodei-autoscaler/internal/providers/kubernetes"
)

// New returns the provider for pool, owned by the autoscaler named owner.
func New(owner string, pool config.Pool, log zerolog.Logger) (providers.Provider, error) {
	log = log.With().Str("pool", pool.Name).Str("provider", pool.Provider).Logger()
	switch pool.Provider {
	case docker.Name:
		p, err := docker.New(docker.Config{
			Owner:     owner,
			Pool:      pool.PoolName(),
			Docker:    pool.Docker,
			Resources: pool.Resources,
			Env:       pool.Env,
			Slots:     pool.JobsPerWorker,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", pool.Name, err)
		}
		return p, nil
	case kubernetes.Name:
		p, err := kubernetes.New(kubernetes.Config{
			Owner:      owner,
			Pool:       pool.PoolName(),
			Kubernetes: pool.Kubernetes,
			Resources:  pool.Resources,
			Env:        pool.Env,
			Slots:      pool.JobsPerWorker,
			StopGrace:  pool.StopGracePeriod.D(),
		}, log)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", pool.Name, err)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("pool %s: provider %q is not available", pool.Name, pool.Provider)
	}
}

// Validate checks the pool's provider section with the provider's own
// rules (the ones New applies), without connecting to anything: for a
// docker pool the image, pull policy, network and mounts; for a kubernetes
// pool the same basics plus pod_template, label, toleration and selector
// syntax. Each problem is one error, keyed from the provider's section
// ("docker.mounts: ..."). autoscaler validate and the daemon's start both
// call it.
func Validate(pool config.Pool) error {
	switch pool.Provider {
	case docker.Name:
		return docker.ValidateConfig(pool.Docker)
	case kubernetes.Name:
		return kubernetes.ValidateConfig(pool.Kubernetes)
	}
	return fmt.Errorf("provider: %q is not available: use docker or kubernetes", pool.Provider)
}
