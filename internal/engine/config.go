package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// PoolConfig is what the engine needs to know about a pool. The daemon and
// the simulator get it from the configuration file through one conversion
// (config.Config.EnginePool).
type PoolConfig struct {
	Name      domain.PoolName
	Provider  string
	Settings  policy.Settings
	DryRun    bool
	StopGrace time.Duration
	// RetryInitial and RetryMax bound the exponential backoff after
	// provider failures (randomised by RetryJitter, 0 to 1).
	RetryInitial time.Duration
	RetryMax     time.Duration
	RetryJitter  float64
}
