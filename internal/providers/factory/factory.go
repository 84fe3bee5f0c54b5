// Package factory builds the provider a pool's configuration names. Every
// provider is compiled in; the choice is made at run time, per pool.
package factory

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/docker"
)

// New returns the provider for pool, owned by the autoscaler named owner.
func New(owner string, pool config.Pool, log zerolog.Logger) (providers.Provider, error) {
	log = log.With().Str("pool", pool.Name).Str("provider", pool.Provider).Logger()
	switch pool.Provider {
	case "docker":
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
	default:
		return nil, fmt.Errorf("pool %s: provider %q is not available", pool.Name, pool.Provider)
	}
}
