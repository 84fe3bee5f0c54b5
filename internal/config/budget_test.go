package config_test

import (
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

const budgetConfig = `
budgets:
  shared: {workers: 6}
pools:
  - name: release
    budget: shared
    priority: 10
    weight: 2
    guaranteed: 1
    tiers:
      - provider: docker
        max_workers: 3
        docker: {image: worker:1, host: "ssh://ci@build-1"}
      - name: burst
        provider: kubernetes
        max_workers: 9
        resources: {cpu_millis: 500, memory_mb: 256}
        kubernetes: {image: registry/worker:1, namespace: ci-burst}
  - name: nightly
    budget: shared
    priority: 1
    docker: {image: worker:1}
`

func TestBudgetsAndTiersParse(t *testing.T) {
	cfg, err := config.Parse([]byte(budgetConfig), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	rel, nightly := cfg.Pools[0], cfg.Pools[1]
	if cfg.Budgets["shared"].Workers != 6 {
		t.Errorf("budget = %+v", cfg.Budgets)
	}
	if rel.Budget != "shared" || rel.Priority != 10 || rel.Weight != 2 || rel.Guaranteed != 1 {
		t.Errorf("release share keys = %q %d %d %d", rel.Budget, rel.Priority, rel.Weight, rel.Guaranteed)
	}
	if nightly.Weight != 1 {
		t.Errorf("default weight = %d, want 1", nightly.Weight)
	}
	if !rel.Tiered() || rel.MaxWorkers != 12 || rel.Provider != "docker" {
		t.Errorf("tiered pool: tiers %d, max_workers %d, provider %s; want 2, 12, docker", len(rel.Tiers), rel.MaxWorkers, rel.Provider)
	}
	d, k := rel.TierPool(0), rel.TierPool(1)
	if d.Provider != "docker" || d.MaxWorkers != 3 || d.Docker.Host != "ssh://ci@build-1" || d.Docker.NetworkMode != "bridge" {
		t.Errorf("docker tier = %s %d %q %q", d.Provider, d.MaxWorkers, d.Docker.Host, d.Docker.NetworkMode)
	}
	if k.Provider != "kubernetes" || k.Kubernetes.Namespace != "ci-burst" || k.Resources.CPUMillis != 500 || k.Kubernetes.QPS != 100 {
		t.Errorf("kubernetes tier = %s %q %+v qps %g", k.Provider, k.Kubernetes.Namespace, k.Resources, k.Kubernetes.QPS)
	}
	if rel.Tiers[0].TierName() != "docker" || rel.Tiers[1].TierName() != "burst" {
		t.Errorf("tier names %q %q", rel.Tiers[0].TierName(), rel.Tiers[1].TierName())
	}
	pc, err := cfg.EnginePool(rel)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Budget != "shared" || pc.Priority != 10 || pc.Weight != 2 || len(pc.Tiers) != 2 || pc.Tiers[1].Name != "burst" || pc.Tiers[1].MaxWorkers != 9 || pc.Settings.MaxWorkers != 12 {
		t.Errorf("engine pool = %+v", pc)
	}
	if bs := cfg.EngineBudgets(); len(bs) != 1 || bs[0].Name != "shared" || bs[0].Workers != 6 {
		t.Errorf("engine budgets = %+v", bs)
	}
}

func TestBudgetsAndTiersInvalid(t *testing.T) {
	const R = "pools[0] (release)."
	cases := []struct {
		name, from, to string
		want           []string
	}{
		{"missing budget", "budget: shared\n    priority: 10", "budget: other\n    priority: 10", []string{R + "budget|names no budget \"other\""}},
		{"priority out of range", "priority: 10", "priority: 101", []string{R + "priority|0 to 100"}},
		{"negative priority", "priority: 10", "priority: -1", []string{R + "priority|0 to 100"}},
		{"weight zero", "weight: 2", "weight: 0", []string{R + "weight|1 to 100"}},
		{"guaranteed above budget", "guaranteed: 1", "guaranteed: 7", []string{R + "guaranteed|above budget shared's 6 workers"}},
		{"tier with no provider settings", "        docker: {image: worker:1, host: \"ssh://ci@build-1\"}\n", "", []string{R + "tiers[0].docker|needs its own provider settings"}},
		{"kubernetes tier with no settings", "        kubernetes: {image: registry/worker:1, namespace: ci-burst}\n", "", []string{R + "tiers[1] (burst).kubernetes|needs its own provider settings"}},
		{"tier bad host", "host: \"ssh://ci@build-1\"", "host: \"build-1\"", []string{R + "tiers[0].docker.host|DOCKER_HOST form"}},
		{"tier zero max_workers", "max_workers: 3", "max_workers: 0", []string{R + "tiers[0].max_workers|at least 1"}},
		{"tier unknown provider", "provider: docker\n        max_workers: 3", "provider: lambda\n        max_workers: 3", []string{R + "tiers[0].provider|unknown provider"}},
		{"tier unknown key", "max_workers: 9", "max_workers: 9\n        namespace: x", []string{"tiers[1] (burst).namespace|unknown key"}},
		{"duplicate tier names", "name: burst", "name: docker", []string{R + "tiers[1] (docker).name|also called \"docker\""}},
		{"budget limits nothing", "shared: {workers: 6}", "shared: {workers: 0}", []string{"budgets.shared|limits nothing"}},
		{"cpu budget without worker cpu", "shared: {workers: 6}", "shared: {workers: 6, cpu_millis: 4000}", []string{"pools[1] (nightly).resources.cpu_millis|budget shared limits cpu_millis"}},
		{"guarantees above the budget together", "    priority: 1\n", "    priority: 1\n    guaranteed: 6\n", []string{"budgets.shared.workers|6 is below the pools' guaranteed shares, 7 together"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(budgetConfig, tc.from) {
				t.Fatalf("test config lacks %q", tc.from)
			}
			_, err := config.Parse([]byte(strings.Replace(budgetConfig, tc.from, tc.to, 1)), nil)
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			got := problems(err)
			for _, w := range tc.want {
				found := false
				for _, line := range got {
					ok := true
					for _, part := range strings.Split(w, "|") {
						ok = ok && strings.Contains(line, part)
					}
					found = found || ok
				}
				if !found {
					t.Errorf("no problem matches %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestConfigWithoutBudgetsUnchanged(t *testing.T) {
	cfg, err := config.Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pools[0]
	if p.Tiered() || p.Budget != "" || p.MaxWorkers != 10 || len(cfg.Budgets) != 0 {
		t.Errorf("plain pool: tiered %v budget %q max %d budgets %v", p.Tiered(), p.Budget, p.MaxWorkers, cfg.Budgets)
	}
	pc, err := cfg.EnginePool(p)
	if err != nil || len(pc.Tiers) != 0 || pc.Budget != "" {
		t.Errorf("engine pool: %+v, %v", pc, err)
	}
}
