package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Every policy knob of a pool reaches the engine's settings.
func TestEnginePoolMapsThePolicyKnobs(t *testing.T) {
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
	s, err := cfg.EnginePool(cfg.Pools[0])
	if err != nil {
		t.Fatal(err)
	}
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

// The defaults are the wait-target policy: idle_workers, target_wait_p95
// and idle_timeout auto, the hold within 0 and 10m; explicit values map
// one to one.
func TestEnginePoolMapsTheWaitTargets(t *testing.T) {
	cfg, err := config.Parse([]byte(`
pools:
  - name: a
    docker: {image: img}
  - name: b
    docker: {image: img}
    target_wait_p95: 10s
    target_wait_p99: 30s
    idle_timeout: 90s
    idle_timeout_min: 5s
    idle_timeout_max: 3m
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cfg.EnginePool(cfg.Pools[0])
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Settings; !s.IdleAuto || !s.TargetWaitAuto || s.TargetWaitP95 != 0 || s.TargetWaitP99 != 0 ||
		!s.IdleTimeoutAuto || s.IdleTimeoutMin != 0 || s.IdleTimeoutMax != policy.DefaultIdleTimeoutMax {
		t.Errorf("defaults: %+v", s)
	}
	b, err := cfg.EnginePool(cfg.Pools[1])
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Settings; s.TargetWaitAuto || s.TargetWaitP95 != 10*time.Second || s.TargetWaitP99 != 30*time.Second ||
		s.IdleTimeoutAuto || s.IdleTimeout != 90*time.Second || s.IdleTimeoutMin != 5*time.Second || s.IdleTimeoutMax != 3*time.Minute {
		t.Errorf("explicit: %+v", s)
	}
}

// A pool built in code that Load would refuse does not convert quietly:
// every value that does not convert is named, keyed from the pool.
func TestEnginePoolReportsWhatDoesNotConvert(t *testing.T) {
	cfg := config.Defaults()
	p := config.PoolDefaults()
	p.Name = "a"
	p.ScaleUp.Max = "lots"
	p.ScaleDown.Max = "x%"
	p.Schedules = []config.Schedule{{Name: "office", Days: []string{"someday"}, Start: "8", End: "18:00"}}
	cfg.Pools = []config.Pool{p}
	_, err := cfg.EnginePools()
	if err == nil {
		t.Fatal("converted a pool with unparseable limits and schedules")
	}
	for _, want := range []string{
		`pool a: scale_up.max: invalid step "lots"`,
		"scale_down.max: invalid percentage",
		`schedules[0] (office).days: "someday" is not a day`,
		`schedules[0] (office).start: invalid time "8"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
