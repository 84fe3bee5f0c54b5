package config

import (
	"fmt"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Budget is a named capacity shared by the pools that name it (pool
// budget): at most this many workers, CPU millis and MiB of memory at once,
// counted from each worker's resources. A zero (or left out) limit is no
// limit on that dimension.
type Budget struct {
	Workers   int   `yaml:"workers"`
	CPUMillis int64 `yaml:"cpu_millis"`
	MemoryMB  int64 `yaml:"memory_mb"`
}

// Tier is one provider a pool spills over to, in order: scale-up fills the
// first tier with room, then the next; scale-down stops the last tier's
// idle workers first; a tier whose provider is down is skipped.
type Tier struct {
	// Name labels the tier's workers (hodei.worker.tier); the provider's
	// name when left out.
	Name       string `yaml:"name"`
	Provider   string `yaml:"provider"` // docker or kubernetes
	MaxWorkers int    `yaml:"max_workers"`
	// Resources of the tier's workers; the pool's when left out.
	Resources *domain.Resources `yaml:"resources"`
	// Docker or Kubernetes: the tier's own provider settings (image,
	// host or namespace, ...), required for its provider.
	Docker     Docker     `yaml:"docker"`
	Kubernetes Kubernetes `yaml:"kubernetes"`

	// HasDocker and HasKubernetes record that the file gave the section.
	HasDocker     bool `yaml:"-"`
	HasKubernetes bool `yaml:"-"`
}

// UnmarshalYAML starts the provider sections from the pool defaults and
// records which sections the file gave.
func (t *Tier) UnmarshalYAML(n *yaml.Node) error {
	type plain Tier
	d := PoolDefaults()
	v := plain{Docker: d.Docker, Kubernetes: d.Kubernetes}
	if err := n.Decode(&v); err != nil {
		return err
	}
	var given struct {
		Docker     *yaml.Node `yaml:"docker"`
		Kubernetes *yaml.Node `yaml:"kubernetes"`
	}
	if err := n.Decode(&given); err != nil {
		return err
	}
	v.HasDocker = given.Docker != nil && !isNull(given.Docker)
	v.HasKubernetes = given.Kubernetes != nil && !isNull(given.Kubernetes)
	*t = Tier(v)
	return nil
}

// TierName is the tier's label value: its name, or its provider's.
func (t Tier) TierName() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Provider
}

// Tiered reports whether the pool spills over provider tiers.
func (p Pool) Tiered() bool { return len(p.Tiers) > 0 }

// TierPool is the pool as tier i's provider sees it: the pool with the
// tier's provider, size bound, resources and provider settings.
func (p Pool) TierPool(i int) Pool {
	t := p.Tiers[i]
	out := p
	out.Tiers = nil
	out.Provider = t.Provider
	out.MaxWorkers = t.MaxWorkers
	out.Docker = t.Docker
	out.Kubernetes = t.Kubernetes
	if t.Resources != nil {
		out.Resources = *t.Resources
	}
	return out
}

// applyTiers makes a tiered pool's provider its first tier's and its
// max_workers the sum of its tiers'.
func (p *Pool) applyTiers() {
	if !p.Tiered() {
		return
	}
	p.Provider = p.Tiers[0].Provider
	p.MaxWorkers = 0
	for _, t := range p.Tiers {
		p.MaxWorkers += max(t.MaxWorkers, 0)
	}
}

// Tier name rules: a Kubernetes label value.
func (p *Pool) validateTiers(v *validator, key string) {
	names := map[string]int{}
	for i, t := range p.Tiers {
		tk := fmt.Sprintf("%s.tiers[%d]", key, i)
		if t.Name != "" {
			tk = fmt.Sprintf("%s.tiers[%d] (%s)", key, i, t.Name)
		}
		if !slices.Contains(knownProviders, t.Provider) {
			v.add(tk+".provider", "unknown provider %q: use docker or kubernetes", t.Provider)
		}
		if t.MaxWorkers < 1 {
			v.add(tk+".max_workers", "must be at least 1 (got %d)", t.MaxWorkers)
		}
		if name := t.TierName(); name != "" {
			if !labelValueRE.MatchString(name) {
				v.add(tk+".name", "must be 1-63 letters, digits, '-', '_' or '.' (got %q): it is the hodei.worker.tier label of the tier's workers", name)
			}
			if j, dup := names[name]; dup {
				v.add(tk+".name", "tier %d is also called %q: give each tier of a pool its own name", j, name)
			}
			names[name] = i
		}
		if r := t.Resources; r != nil {
			if r.CPUMillis < 0 {
				v.add(tk+".resources.cpu_millis", "must be 0 (no limit) or more (got %d)", r.CPUMillis)
			}
			if r.MemoryMB < 0 || (r.MemoryMB > 0 && r.MemoryMB < 6) {
				v.add(tk+".resources.memory_mb", "must be 0 (no limit) or at least 6 (got %d)", r.MemoryMB)
			}
		}
		switch t.Provider {
		case "docker":
			if !t.HasDocker {
				v.add(tk+".docker", "a docker tier needs its own provider settings: docker: {image: ..., host: ...}")
			} else {
				t.Docker.validate(v, tk+".docker")
			}
		case "kubernetes":
			if !t.HasKubernetes {
				v.add(tk+".kubernetes", "a kubernetes tier needs its own provider settings: kubernetes: {image: ..., namespace: ...}")
			} else {
				t.Kubernetes.validate(v, tk+".kubernetes")
			}
		}
	}
}

// validateShare checks a pool's budget keys against the budgets.
func (p *Pool) validateShare(v *validator, key string, budgets map[string]Budget) {
	if p.Priority < 0 || p.Priority > 100 {
		v.add(key+".priority", "must be 0 to 100, higher first (got %d)", p.Priority)
	}
	if p.Weight < 1 || p.Weight > 100 {
		v.add(key+".weight", "must be 1 to 100, the pool's fair share among equal priorities (got %d)", p.Weight)
	}
	if p.Guaranteed < 0 {
		v.add(key+".guaranteed", "must be 0 or more (got %d)", p.Guaranteed)
	}
	if p.Budget == "" {
		if p.Guaranteed > 0 {
			v.add(key+".guaranteed", "is a share of a budget: set budget too")
		}
		return
	}
	b, ok := budgets[p.Budget]
	if !ok {
		v.add(key+".budget", "names no budget %q: define it under budgets (known: %v)", p.Budget, slices.Sorted(maps.Keys(budgets)))
		return
	}
	if p.Guaranteed > p.MaxWorkers {
		v.add(key+".guaranteed", "%d is above the pool's max_workers %d", p.Guaranteed, p.MaxWorkers)
	}
	if b.Workers > 0 && p.Guaranteed > b.Workers {
		v.add(key+".guaranteed", "%d is above budget %s's %d workers", p.Guaranteed, p.Budget, b.Workers)
	}
	for i := -1; i < len(p.Tiers); i++ {
		r, rk := p.Resources, key+".resources"
		if i >= 0 {
			if p.Tiers[i].Resources == nil {
				continue
			}
			r, rk = *p.Tiers[i].Resources, fmt.Sprintf("%s.tiers[%d].resources", key, i)
		}
		if b.CPUMillis > 0 && r.CPUMillis == 0 {
			v.add(rk+".cpu_millis", "budget %s limits cpu_millis: set the workers' cpu_millis so they can be counted", p.Budget)
		}
		if b.MemoryMB > 0 && r.MemoryMB == 0 {
			v.add(rk+".memory_mb", "budget %s limits memory_mb: set the workers' memory_mb so they can be counted", p.Budget)
		}
		if b.CPUMillis > 0 && p.Guaranteed > 0 && int64(p.Guaranteed)*r.CPUMillis > b.CPUMillis {
			v.add(key+".guaranteed", "%d workers of %dm cpu are above budget %s's %dm", p.Guaranteed, r.CPUMillis, p.Budget, b.CPUMillis)
		}
		if b.MemoryMB > 0 && p.Guaranteed > 0 && int64(p.Guaranteed)*r.MemoryMB > b.MemoryMB {
			v.add(key+".guaranteed", "%d workers of %dMB are above budget %s's %dMB", p.Guaranteed, r.MemoryMB, p.Budget, b.MemoryMB)
		}
	}
}

// validateBudgets checks the budgets and that the guarantees of the pools
// drawing from each fit in it.
func (c *Config) validateBudgets(v *validator) {
	for _, name := range slices.Sorted(maps.Keys(c.Budgets)) {
		b := c.Budgets[name]
		key := "budgets." + name
		if !labelValueRE.MatchString(name) {
			v.add(key, "a budget name must be 1-63 letters, digits, '-', '_' or '.'")
		}
		if b.Workers < 0 || b.CPUMillis < 0 || b.MemoryMB < 0 {
			v.add(key, "workers, cpu_millis and memory_mb must be 0 (no limit) or more")
		}
		if b.Workers == 0 && b.CPUMillis == 0 && b.MemoryMB == 0 {
			v.add(key, "limits nothing: set workers, cpu_millis or memory_mb")
		}
		guaranteed := 0
		for _, p := range c.Pools {
			if p.Budget == name {
				guaranteed += max(p.Guaranteed, 0)
			}
		}
		if b.Workers > 0 && guaranteed > b.Workers {
			v.add(key+".workers", "%d is below the pools' guaranteed shares, %d together: lower a guaranteed or raise the budget", b.Workers, guaranteed)
		}
	}
}

// workerCost is what one worker of the pool counts against a budget: its
// resources, for a tiered pool the most any tier's worker costs.
func (p Pool) workerCost() domain.Resources {
	c := p.Resources
	for i := range p.Tiers {
		r := p.TierPool(i).Resources
		c.CPUMillis, c.MemoryMB = max(c.CPUMillis, r.CPUMillis), max(c.MemoryMB, r.MemoryMB)
	}
	return c
}

// engineTiers converts the tiers for the engine (nil for a plain pool).
func (p Pool) engineTiers() []engine.TierConfig {
	var out []engine.TierConfig
	for _, t := range p.Tiers {
		out = append(out, engine.TierConfig{Name: t.TierName(), Provider: t.Provider, MaxWorkers: t.MaxWorkers})
	}
	return out
}

// EngineBudgets converts the budgets for the engine, sorted by name.
func (c Config) EngineBudgets() []policy.Budget {
	out := make([]policy.Budget, 0, len(c.Budgets))
	for _, name := range slices.Sorted(maps.Keys(c.Budgets)) {
		b := c.Budgets[name]
		out = append(out, policy.Budget{Name: name, Workers: b.Workers, CPUMillis: b.CPUMillis, MemoryMB: b.MemoryMB})
	}
	return out
}
