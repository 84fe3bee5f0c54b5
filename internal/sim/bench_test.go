package sim

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// BenchmarkRunEngine replays a day of 600 jobs/h (about 14,000 jobs)
// through the engine: the simulator's own cost per run.
func BenchmarkRunEngine(b *testing.B) {
	tr, err := Generate(GenOptions{Kind: Steady, Seed: StandardSeed, Span: 24 * time.Hour, Rate: 600})
	if err != nil {
		b.Fatal(err)
	}
	pc := poolConfig(func(s *policy.Settings) { s.MaxWorkers, s.MaxConcurrentProvisioning = 1000, 1000 })
	prov := Provisioning{Median: 20 * time.Second, P95: 30 * time.Second}
	b.ResetTimer()
	for range b.N {
		RunEngine(tr, tr.Jobs, pc, prov, StandardSeed, false)
	}
}

// BenchmarkRunEngineTarget is the same day under a wait target with
// idle_timeout: auto.
func BenchmarkRunEngineTarget(b *testing.B) {
	tr, err := Generate(GenOptions{Kind: Steady, Seed: StandardSeed, Span: 24 * time.Hour, Rate: 600})
	if err != nil {
		b.Fatal(err)
	}
	pc := poolConfig(func(s *policy.Settings) {
		s.MaxWorkers, s.MaxConcurrentProvisioning = 1000, 1000
		s.IdleAuto, s.TargetWaitAuto, s.IdleTimeoutAuto = true, true, true
	})
	prov := Provisioning{Median: 20 * time.Second, P95: 30 * time.Second}
	b.ResetTimer()
	for range b.N {
		RunEngine(tr, tr.Jobs, pc, prov, StandardSeed, false)
	}
}

// BenchmarkOracle computes the oracle of the same day.
func BenchmarkOracle(b *testing.B) {
	tr, err := Generate(GenOptions{Kind: Steady, Seed: StandardSeed, Span: 24 * time.Hour, Rate: 600})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		Oracle(tr.Jobs, 20*time.Second, 1)
	}
}
