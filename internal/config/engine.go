package config

import (
	"errors"
	"fmt"

	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// EnginePool is the one conversion of a pool's configuration into the
// engine's settings, used by the daemon and the simulator alike. The error
// lists every value that does not convert, keyed from the pool; a config
// that Load accepted always converts.
func (c Config) EnginePool(p Pool) (engine.PoolConfig, error) {
	up, errUp := p.ScaleUp.Max.Limit(p.ScaleUp.Period)
	down, errDown := p.ScaleDown.Max.Limit(p.ScaleDown.Period)
	schedules, errSchedules := p.PolicySchedules()
	if err := errors.Join(keyed("scale_up.max", errUp), keyed("scale_down.max", errDown), errSchedules); err != nil {
		return engine.PoolConfig{}, fmt.Errorf("pool %s: %w", p.Name, err)
	}
	return engine.PoolConfig{
		Name:     p.PoolName(),
		Provider: p.Provider,
		Settings: policy.Settings{
			MinWorkers:                p.MinWorkers,
			MaxWorkers:                p.MaxWorkers,
			JobsPerWorker:             p.JobsPerWorker,
			IdleWorkers:               p.IdleWorkers.Count,
			IdleAuto:                  p.IdleWorkers.Auto,
			MaxIdleWorkers:            p.MaxIdleWorkers,
			ArrivalWindow:             p.ArrivalRateWindow.D(),
			Schedules:                 schedules,
			ScaleUp:                   policy.Behavior{Limit: up, Cooldown: p.ScaleUp.Cooldown.D()},
			ScaleDown:                 policy.Behavior{Limit: down, Cooldown: p.ScaleDown.Cooldown.D()},
			StabilizationWindow:       p.ScaleDown.StabilizationWindow.D(),
			MaxJobsPerWorker:          p.MaxJobsPerWorker,
			TargetWaitP95:             p.TargetWaitP95.Value.D(),
			TargetWaitAuto:            p.TargetWaitP95.Auto,
			TargetWaitP99:             p.TargetWaitP99.D(),
			IdleTimeout:               p.IdleTimeout.Value.D(),
			IdleTimeoutAuto:           p.IdleTimeout.Auto,
			IdleTimeoutMin:            p.IdleTimeoutMin.D(),
			IdleTimeoutMax:            p.IdleTimeoutMax.D(),
			ProvisionTimeout:          p.ProvisionTimeout.D(),
			MaxConcurrentProvisioning: p.MaxConcurrentProvisioning,
		},
		DryRun:       p.IsDryRun(c.DryRun),
		StopGrace:    p.StopGracePeriod.D(),
		DrainTimeout: p.DrainTimeout.D(),
		Heartbeat:    p.HeartbeatTimeout.D(),
		RetryInitial: c.Reconcile.RetryInitial.D(),
		RetryMax:     c.Reconcile.RetryMax.D(),
		RetryJitter:  c.Reconcile.RetryJitter,
		Budget:       p.Budget,
		Priority:     p.Priority,
		Weight:       p.Weight,
		Guaranteed:   p.Guaranteed,
		Cost:         p.workerCost(),
		Tiers:        p.engineTiers(),
	}, nil
}

// EnginePools converts every pool, in configuration order.
func (c Config) EnginePools() ([]engine.PoolConfig, error) {
	out := make([]engine.PoolConfig, 0, len(c.Pools))
	var errs []error
	for _, p := range c.Pools {
		pc, err := c.EnginePool(p)
		errs = append(errs, err)
		out = append(out, pc)
	}
	return out, errors.Join(errs...)
}

func keyed(key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", key, err)
}
