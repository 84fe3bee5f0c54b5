// Package routing maps a job to a pool from what its event says: an
// input's rules, tried in order, the first that matches wins, and an
// optional default pool for a job no rule matches. It is pure (no I/O,
// no state): the inputs, `autoscaler validate` and the simulator share it.
package routing

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Attrs are what a job event says that rules can match on. For Hodei's
// events: Provider (the preferred provider, by id or name), Labels (the
// job's required_labels), the resources and the image. For CloudEvents:
// Pool (the subject's pool) and Labels.
type Attrs struct {
	Pool      string
	Provider  string
	Labels    map[string]string
	CPUMillis int64
	MemoryMB  int64
	GPU       bool
	Image     string
}

// Match is a rule's condition; every field set must hold (an empty Match
// matches every job).
type Match struct {
	// Pool is the event's own pool (CloudEvents subjects), exactly.
	Pool string `yaml:"pool,omitempty"`
	// Provider is the preferred provider, exactly.
	Provider string `yaml:"provider,omitempty"`
	// Labels must all be present with these values ("*": any value).
	Labels map[string]string `yaml:"labels,omitempty"`
	// Image is a shell pattern (path.Match) on the job's image.
	Image string `yaml:"image,omitempty"`
	// Resource bounds, inclusive; 0 is no bound.
	MinCPUMillis int64 `yaml:"min_cpu_millis,omitempty"`
	MaxCPUMillis int64 `yaml:"max_cpu_millis,omitempty"`
	MinMemoryMB  int64 `yaml:"min_memory_mb,omitempty"`
	MaxMemoryMB  int64 `yaml:"max_memory_mb,omitempty"`
	// GPU, when set, must equal the job's gpu_required.
	GPU *bool `yaml:"gpu,omitempty"`
}

// Rule sends the jobs that match to Pool.
type Rule struct {
	Pool  string `yaml:"pool"`
	Match Match  `yaml:"match"`
}

// Router is an input's rules and default pool. The zero Router sends every
// job to its own pool (Attrs.Pool) and has no route for a job without one.
type Router struct {
	Rules   []Rule `yaml:"routes,omitempty"`
	Default string `yaml:"default_pool,omitempty"`
}

// ErrNoRoute is wrapped by Route's error when nothing matches.
var ErrNoRoute = errors.New("no route")

// Route returns the pool of the first rule that matches a, else the
// default pool, else a's own pool when there are no rules at all. The
// error says why nothing matched.
func (r Router) Route(a Attrs) (string, error) {
	for _, rule := range r.Rules {
		if rule.Match.matches(a) {
			return rule.Pool, nil
		}
	}
	if r.Default != "" {
		return r.Default, nil
	}
	if len(r.Rules) == 0 && a.Pool != "" {
		return a.Pool, nil
	}
	return "", fmt.Errorf("%w: none of %d rules matches %s and there is no default_pool", ErrNoRoute, len(r.Rules), a)
}

func (m Match) matches(a Attrs) bool {
	switch {
	case m.Pool != "" && m.Pool != a.Pool,
		m.Provider != "" && m.Provider != a.Provider,
		m.MinCPUMillis > 0 && a.CPUMillis < m.MinCPUMillis,
		m.MaxCPUMillis > 0 && a.CPUMillis > m.MaxCPUMillis,
		m.MinMemoryMB > 0 && a.MemoryMB < m.MinMemoryMB,
		m.MaxMemoryMB > 0 && a.MemoryMB > m.MaxMemoryMB,
		m.GPU != nil && *m.GPU != a.GPU:
		return false
	}
	if m.Image != "" {
		if ok, err := path.Match(m.Image, a.Image); err != nil || !ok {
			return false
		}
	}
	for k, want := range m.Labels {
		got, ok := a.Labels[k]
		if !ok || (want != "*" && got != want) {
			return false
		}
	}
	return true
}

// String describes the attributes for a log line or an error.
func (a Attrs) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("pool", a.Pool)
	add("provider", a.Provider)
	add("image", a.Image)
	if a.CPUMillis != 0 {
		parts = append(parts, fmt.Sprintf("cpu_millis=%d", a.CPUMillis))
	}
	if a.MemoryMB != 0 {
		parts = append(parts, fmt.Sprintf("memory_mb=%d", a.MemoryMB))
	}
	if a.GPU {
		parts = append(parts, "gpu=true")
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, "labels."+k+"="+a.Labels[k])
	}
	if len(parts) == 0 {
		return "a job that says nothing to route on"
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// Validate checks the rules against the configured pools; each problem is
// one error naming key's field and the fix.
func (r Router) Validate(key string, pools []string) []error {
	var errs []error
	known := func(field, p string) {
		if !slices.Contains(pools, p) {
			errs = append(errs, fmt.Errorf("%s: pool %q is not configured (pools: %s)", field, p, strings.Join(pools, ", ")))
		}
	}
	if r.Default != "" {
		known(key+".default_pool", r.Default)
	}
	for i, rule := range r.Rules {
		k := fmt.Sprintf("%s.routes[%d]", key, i)
		if rule.Pool == "" {
			errs = append(errs, fmt.Errorf("%s.pool: required: the pool the matching jobs go to", k))
		} else {
			known(k+".pool", rule.Pool)
		}
		m := rule.Match
		if m.Image != "" {
			if _, err := path.Match(m.Image, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s.match.image: %q is not a valid pattern: %w", k, m.Image, err))
			}
		}
		for _, b := range []struct {
			name     string
			min, max int64
		}{{"cpu_millis", m.MinCPUMillis, m.MaxCPUMillis}, {"memory_mb", m.MinMemoryMB, m.MaxMemoryMB}} {
			if b.min < 0 || b.max < 0 {
				errs = append(errs, fmt.Errorf("%s.match: min_/max_%s must not be negative", k, b.name))
			}
			if b.max > 0 && b.min > b.max {
				errs = append(errs, fmt.Errorf("%s.match: min_%s %d is above max_%s %d: no job can match", k, b.name, b.min, b.name, b.max))
			}
		}
		for lk := range m.Labels {
			if lk == "" {
				errs = append(errs, fmt.Errorf("%s.match.labels: an empty label name", k))
			}
		}
		if m.isEmpty() && i < len(r.Rules)-1 {
			errs = append(errs, fmt.Errorf("%s.match: empty, so it matches every job and the rules after it never apply: move it last or use default_pool", k))
		}
	}
	return errs
}

func (m Match) isEmpty() bool {
	return m.Pool == "" && m.Provider == "" && len(m.Labels) == 0 && m.Image == "" &&
		m.MinCPUMillis == 0 && m.MaxCPUMillis == 0 && m.MinMemoryMB == 0 && m.MaxMemoryMB == 0 && m.GPU == nil
}
