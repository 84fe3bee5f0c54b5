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
	// DrainTimeout bounds how long a stopped worker that still runs a job
	// may take to finish it; Heartbeat is how long a worker's heartbeat
	// is believed (heartbeat.go). Zero: StopGrace, and no heartbeats.
	DrainTimeout time.Duration
	Heartbeat    time.Duration
	// RetryInitial and RetryMax bound the exponential backoff after
	// provider failures (randomised by RetryJitter, 0 to 1).
	RetryInitial time.Duration
	RetryMax     time.Duration
	RetryJitter  float64

	// Budget, Priority, Weight, Guaranteed and Cost: the pool's share of
	// a budget (budget.go); Budget "" scales the pool alone.
	Budget     string
	Priority   int
	Weight     int
	Guaranteed int
	Cost       domain.Resources // one worker's resources
	// Tiers are the providers the pool spills over, in order (tiers.go);
	// none: one tier, Provider, up to Settings.MaxWorkers.
	Tiers []TierConfig
}
