package config_test

import (
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

func inputsConfig(t *testing.T, in ...config.Input) config.Config {
	t.Helper()
	cfg := config.Defaults()
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "img"
	cfg.Pools = []config.Pool{p}
	cfg.Inputs = in
	return cfg
}

func TestInputs(t *testing.T) {
	t.Run("none is the own contract", func(t *testing.T) {
		cfg := inputsConfig(t)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		got := cfg.InputList()
		if len(got) != 1 || got[0].Format != config.FormatCloudEvents || got[0].Subjects[0] != "hodei.jobs.>" {
			t.Errorf("inputs %+v", got)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		cfg := inputsConfig(t, config.Input{Format: "hodei-jobs", DefaultPool: "p1"}, config.Input{Format: "cloudevents"})
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		got := cfg.InputList()
		if got[0].Name != "hodei-jobs" || got[0].Stream != "HODEI_EVENTS" || got[0].Subjects[0] != "hodei.events.jobs.>" || got[1].Subjects[0] != "hodei.jobs.>" {
			t.Errorf("inputs %+v", got)
		}
	})
	for _, c := range []struct {
		name string
		in   []config.Input
		want string
	}{
		{"unknown format", []config.Input{{Format: "avro"}}, `inputs[0].format: must be cloudevents or hodei-jobs (got "avro")`},
		{"hodei without a pool", []config.Input{{Format: "hodei-jobs"}}, "needs routes or a default_pool"},
		{"route to an unknown pool", []config.Input{{Format: "hodei-jobs", Routes: []routing.Rule{{Pool: "nope", Match: routing.Match{Provider: "x"}}}}}, `inputs[0].routes[0].pool: pool "nope" is not configured`},
		{"subject outside", []config.Input{{Format: "hodei-jobs", DefaultPool: "p1", Subjects: []string{"other.>"}}}, "must be a NATS subject under hodei.events."},
		{"cloudevents subject outside", []config.Input{{Format: "cloudevents", Subjects: []string{"hodei.workers.>"}}}, "under hodei.jobs."},
		{"same name twice", []config.Input{{Format: "cloudevents"}, {Format: "cloudevents"}}, "used by another input"},
		{"cloudevents with a stream", []config.Input{{Format: "cloudevents", Stream: "X"}}, "only a hodei-jobs input reads another stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := inputsConfig(t, c.in...)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}
