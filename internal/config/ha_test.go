package config_test

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/lease"
)

func TestHADefaultsAreTheLeaseDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)
	if cfg.HA.Enabled {
		t.Error("ha.enabled: want off by default")
	}
	if got, want := cfg.HA.Timing(), lease.DefaultTiming(); got != want {
		t.Errorf("ha timing: got %+v, want the lease defaults %+v", got, want)
	}
	if cfg.HA.Bucket != lease.DefaultBucket {
		t.Errorf("ha.bucket: got %q, want %q", cfg.HA.Bucket, lease.DefaultBucket)
	}
}

func TestHAKeys(t *testing.T) {
	cases := []struct {
		name  string
		yml   string
		check func(t *testing.T, c config.Config)
	}{
		{"enabled on a cluster", "nats: {url: 'nats://a:4222,nats://b:4222,nats://c:4222', streams: {replicas: 3}}\nha: {enabled: true, replica_id: r1, lease_ttl: 6s, renew_interval: 1s}\n" + minimal,
			func(t *testing.T, c config.Config) {
				if !c.HA.Enabled || c.HA.ReplicaID != "r1" || c.HA.LeaseTTL.D() != 6*time.Second || c.HA.RenewInterval.D() != time.Second {
					t.Errorf("ha: got %+v", c.HA)
				}
				if c.NATS.Streams.Replicas != 3 {
					t.Errorf("nats.streams.replicas: got %d", c.NATS.Streams.Replicas)
				}
			}},
		{"nats.url as a YAML list", "nats:\n  url:\n    - nats://a:4222\n    - nats://b:4222\n" + minimal,
			func(t *testing.T, c config.Config) {
				if c.NATS.URL != "nats://a:4222,nats://b:4222" {
					t.Errorf("nats.url: got %q", c.NATS.URL)
				}
			}},
		{"nats.url as one string", "nats: {url: nats://a:4222}\n" + minimal,
			func(t *testing.T, c config.Config) {
				if c.NATS.URL != "nats://a:4222" {
					t.Errorf("nats.url: got %q", c.NATS.URL)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, mustParse(t, c.yml)) })
	}
}

func TestHAInvalidValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		yml  string
		want []string
	}{
		{"ha on the embedded server", top("ha: {enabled: true}"), []string{"ha.enabled|needs nats.url to name a NATS cluster"}},
		{"zero ttl", top("ha: {lease_ttl: 0s}"), []string{"ha.lease_ttl|positive duration"}},
		{"zero renew", top("ha: {renew_interval: 0s}"), []string{"ha.renew_interval|positive duration"}},
		{"drift too big", top("ha: {clock_drift: 0.5}"), []string{"ha.clock_drift|between 0 and 0.1"}},
		{"negative slack", top("ha: {safety_slack: -1s}"), []string{"ha.safety_slack|must not be negative"}},
		{"renew too slow for the ttl", top("ha: {lease_ttl: 3s, renew_interval: 2s}"), []string{"ha.lease_ttl|do not hold together|renew more often"}},
		{"bad bucket", top("ha: {bucket: 'a.b'}"), []string{"ha.bucket|letters, digits"}},
		{"bad url in a list", top("nats: {url: [nats://a:4222, bogus]}"), []string{"nats.url|\"bogus\" is not a NATS URL"}},
		{"replicas beyond 5", top("nats: {url: nats://a:4222, streams: {replicas: 7}}"), []string{"nats.streams.replicas|1 to 5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantProblems(t, c.yml, nil, c.want...) })
	}
}
