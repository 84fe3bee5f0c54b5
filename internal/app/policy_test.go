package app

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Every policy knob of a pool reaches the engine's settings.
func TestPoolConfigMapsThePolicyKnobs(t *testing.T) {
	cfg, err := config.Parse([]byte(`
dry_run: true
pools:
  - name: a
    docker: {image: img}
    idle_workers: auto
    max_idle_workers: 4
    arrival_rate_window: 3m
    max_jobs_per_worker: 2
    scale_up: {max: "100%", period: 15s, cooldown: 5s}
    scale_down: {max: 1, period: 2m, cooldown: 1m, stabilization_window: 5m}
    schedules:
      - {name: office, days: [mon-fri], start: "08:00", end: "18:00", timezone: Europe/Madrid, min_workers: 2}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := PoolConfig(cfg, cfg.Pools[0])
	got := s.Settings
	if !s.DryRun || !got.IdleAuto || got.MaxIdleWorkers != 4 || got.ArrivalWindow != 3*time.Minute || got.MaxJobsPerWorker != 2 {
		t.Errorf("settings %+v", got)
	}
	if got.ScaleUp != (policy.Behavior{Limit: policy.RateLimit{Percent: 100, Period: 15 * time.Second}, Cooldown: 5 * time.Second}) {
		t.Errorf("scale up %+v", got.ScaleUp)
	}
	if got.ScaleDown != (policy.Behavior{Limit: policy.RateLimit{Workers: 1, Period: 2 * time.Minute}, Cooldown: time.Minute}) || got.StabilizationWindow != 5*time.Minute {
		t.Errorf("scale down %+v window %v", got.ScaleDown, got.StabilizationWindow)
	}
	if len(got.Schedules) != 1 || got.Schedules[0].Location.String() != "Europe/Madrid" || *got.Schedules[0].MinWorkers != 2 {
		t.Errorf("schedules %+v", got.Schedules)
	}
}
