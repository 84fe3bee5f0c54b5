package config

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/lease"
)

// HA configures running several replicas of one autoscaler (one name) on
// a NATS JetStream cluster: each pool is acted on by one replica at a
// time, the holder of its lease in the bucket (internal/lease,
// docs/operations.md "High availability"). With HA off the daemon still
// takes the name's exclusive lease, so a second daemon of the same name
// on the same bus refuses to start instead of fighting it.
type HA struct {
	Enabled bool `yaml:"enabled"`
	// ReplicaID names this replica among those of its name (the host
	// name when empty: a pod's name in Kubernetes).
	ReplicaID string `yaml:"replica_id"`
	// Bucket is the JetStream key-value bucket of the leases.
	Bucket string `yaml:"bucket"`
	// LeaseTTL is how long a replica may go unheard before the others
	// take its pools; the failover time is about this long.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// RenewInterval is how often a replica renews its session.
	RenewInterval Duration `yaml:"renew_interval"`
	// ClockDrift bounds any replica clock's rate error (0.005 is 0.5 %).
	ClockDrift float64 `yaml:"clock_drift"`
	// SafetySlack is added to the drift allowance of the fence.
	SafetySlack Duration `yaml:"safety_slack"`
	// CallTimeout bounds one call to the lease bucket.
	CallTimeout Duration `yaml:"call_timeout"`
}

// HADefaults are the lease package's defaults.
func HADefaults() HA {
	t := lease.DefaultTiming()
	return HA{Bucket: lease.DefaultBucket, LeaseTTL: Duration(t.TTL), RenewInterval: Duration(t.RenewEvery),
		ClockDrift: t.Drift, SafetySlack: Duration(t.Slack), CallTimeout: Duration(t.OpTimeout)}
}

// Timing is the lease protocol's timing these settings give.
func (h HA) Timing() lease.Timing {
	return lease.Timing{TTL: h.LeaseTTL.D(), RenewEvery: h.RenewInterval.D(), Drift: h.ClockDrift,
		Slack: h.SafetySlack.D(), OpTimeout: h.CallTimeout.D()}
}

func (h *HA) validate(v *validator, n NATS) {
	v.positive("ha.lease_ttl", h.LeaseTTL)
	v.positive("ha.renew_interval", h.RenewInterval)
	v.positive("ha.call_timeout", h.CallTimeout)
	if h.ClockDrift < 0 || h.ClockDrift > 0.1 || h.ClockDrift != h.ClockDrift {
		v.add("ha.clock_drift", "must be between 0 and 0.1, such as 0.005 for 0.5 %% (got %v)", h.ClockDrift)
	}
	if h.SafetySlack < 0 {
		v.add("ha.safety_slack", "must not be negative, such as 250ms (got %s)", h.SafetySlack)
	}
	if !subjectTokenRE.MatchString(h.Bucket) || strings.Contains(h.Bucket, ".") {
		v.add("ha.bucket", "must be a bucket name of letters, digits, '-' or '_' (got %q)", h.Bucket)
	}
	if h.LeaseTTL > 0 && h.RenewInterval > 0 && h.CallTimeout > 0 && h.SafetySlack >= 0 && h.ClockDrift >= 0 && h.ClockDrift <= 0.1 {
		if err := h.Timing().Validate(); err != nil {
			v.add("ha.lease_ttl", "the lease timings do not hold together: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if h.Enabled && n.URL == "embedded" {
		v.add("ha.enabled", "needs nats.url to name a NATS cluster the replicas share (nats://a:4222,nats://b:4222,nats://c:4222), not the embedded server")
	}
	if h.ReplicaID != "" && len(h.ReplicaID) > 128 {
		v.add("ha.replica_id", "must be at most 128 bytes (got %d)", len(h.ReplicaID))
	}
}

// joinURLList lets nats.url be a YAML list of URLs as well as one string
// (comma separated): a list is rewritten to that string before decoding.
func joinURLList(doc *yaml.Node) {
	nats := mappingValue(doc, "nats")
	if nats == nil {
		return
	}
	u := mappingValue(nats, "url")
	if u == nil || u.Kind != yaml.SequenceNode {
		return
	}
	parts := make([]string, 0, len(u.Content))
	for _, item := range u.Content {
		if item.Kind != yaml.ScalarNode {
			return // left for the checker to report
		}
		parts = append(parts, strings.TrimSpace(item.Value))
	}
	*u = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.Join(parts, ","), Line: u.Line, Column: u.Column}
}

// mappingValue is the value of key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
