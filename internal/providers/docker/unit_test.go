package docker

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
)

func TestPhaseOf(t *testing.T) {
	tests := []struct {
		name   string
		state  *container.State
		phase  domain.Phase
		reason string
	}{
		{"nil state", nil, domain.PhasePending, "container state unknown"},
		{"created", &container.State{Status: "created"}, domain.PhasePending, "created, not started"},
		{"created with start error", &container.State{Status: "created", ExitCode: 127, Error: "exec: \"/x\": not found"},
			domain.PhaseFailed, "failed to start (exit code 127): exec: \"/x\": not found"},
		{"restarting", &container.State{Status: "restarting", ExitCode: 1}, domain.PhasePending, "restarting after exited with code 1"},
		{"running", &container.State{Status: "running", Running: true}, domain.PhaseReady, "running"},
		{"running healthy", &container.State{Status: "running", Health: &container.Health{Status: "healthy"}}, domain.PhaseReady, "running (healthy)"},
		{"running health starting", &container.State{Status: "running", Health: &container.Health{Status: "starting"}}, domain.PhasePending, "running, health check starting"},
		{"running unhealthy", &container.State{Status: "running", Health: &container.Health{Status: "unhealthy", FailingStreak: 3,
			Log: []*container.HealthcheckResult{{ExitCode: 1, Output: "db down\n"}}}}, domain.PhaseFailed, "health check unhealthy (3 failures in a row): db down"},
		{"exited 0", &container.State{Status: "exited"}, domain.PhaseExited, "exited with code 0"},
		{"exited 2 with error", &container.State{Status: "exited", ExitCode: 2, Error: "boom"}, domain.PhaseFailed, "exited with code 2: boom"},
		{"killed", &container.State{Status: "exited", ExitCode: 137}, domain.PhaseFailed, "exited with code 137 (SIGKILL)"},
		{"oom killed", &container.State{Status: "exited", ExitCode: 137, OOMKilled: true}, domain.PhaseFailed, "exited with code 137 (OOMKilled)"},
		{"removing", &container.State{Status: "removing"}, domain.PhaseExited, "being removed"},
		{"dead", &container.State{Status: "dead", Dead: true, Error: "device busy"}, domain.PhaseFailed, "dead (the engine failed to remove it): device busy"},
		{"paused", &container.State{Status: "paused"}, domain.PhasePending, "paused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phase, reason := phaseOf(tt.state)
			if phase != tt.phase || reason != tt.reason {
				t.Fatalf("phaseOf = %s %q, want %s %q", phase, reason, tt.phase, tt.reason)
			}
		})
	}
}

func TestWorkerFromSummary(t *testing.T) {
	p := &Provider{cfg: Config{Owner: "o", Pool: "p"}}
	tests := []struct {
		status string
		phase  domain.Phase
	}{
		{"Up 3 seconds", domain.PhaseReady},
		{"Up 3 seconds (healthy)", domain.PhaseReady},
		{"Up 3 seconds (health: starting)", domain.PhasePending},
		{"Up 3 minutes (unhealthy)", domain.PhaseFailed},
	}
	for _, tt := range tests {
		w := p.workerFromSummary(container.Summary{
			State: "running", Status: tt.status, Created: 1700000000,
			Labels: domain.WorkerLabels("o", "p", "id-1"),
		})
		if w.Phase != tt.phase || w.ID != "id-1" || w.Pool != "p" || w.Provider != Name || w.CreatedAt.Unix() != 1700000000 {
			t.Errorf("status %q: got %+v, want phase %s", tt.status, w, tt.phase)
		}
	}
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		spec    string
		want    mount.Mount
		wantErr string
	}{
		{spec: "/src:/dst", want: mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/dst"}},
		{spec: "/src:/dst:ro", want: mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true}},
		{spec: "/src:/dst:rw", want: mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/dst"}},
		{spec: "vol:/dst", wantErr: "must be absolute"},
		{spec: "/src", wantErr: "not host:container"},
		{spec: "/a:/b:ro:x", wantErr: "not host:container"},
		{spec: "/a:/b:z", wantErr: "not ro or rw"},
	}
	for _, tt := range tests {
		got, err := parseMount(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMount(%q) error = %v, want %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMount(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	d := config.PoolDefaults().Docker
	d.Image = "img"
	ok := Config{Owner: "o", Pool: "p", Docker: d}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no owner", func(c *Config) { c.Owner = "" }, "owner"},
		{"bad pool", func(c *Config) { c.Pool = "a b" }, "pool name"},
		{"no image", func(c *Config) { c.Docker.Image = "" }, "docker.image"},
		{"bad pull policy", func(c *Config) { c.Docker.PullPolicy = "sometimes" }, "pull policy"},
		{"bad mount", func(c *Config) { c.Docker.Mounts = []string{"data:/data"} }, "absolute"},
		{"negative resources", func(c *Config) { c.Resources.MemoryMB = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			p, err := New(cfg, zerolog.Nop())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.policy != PullIfNotPresent || p.cfg.Slots != 1 {
					t.Errorf("defaults: policy %q slots %d", p.policy, p.cfg.Slots)
				}
				_ = p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnvHodeiVariablesWin(t *testing.T) {
	p := &Provider{cfg: Config{Owner: "o", Pool: "p1", Slots: 2, Env: map[string]string{
		"B": "2", "A": "1", domain.EnvWorkerID: "spoofed", domain.EnvWorkerSlots: "99",
	}}}
	got := p.env("id-1")
	want := []string{"A=1", "B=2", "HODEI_WORKER_ID=id-1", "HODEI_WORKER_POOL=p1", "HODEI_WORKER_SLOTS=2"}
	if !slices.Equal(got, want) {
		t.Fatalf("env = %v, want %v", got, want)
	}
}

// TestContainerConfigPrivileges covers what the engine test cannot run here
// (this engine refuses privileged containers): privileged drops
// no-new-privileges, and nothing else is ever privileged.
func TestContainerConfigPrivileges(t *testing.T) {
	for _, privileged := range []bool{false, true} {
		p := &Provider{cfg: Config{Owner: "o", Pool: "p", Slots: 1, Docker: config.Docker{Image: "img", Privileged: privileged}}}
		cfg, hc := p.containerConfig("id-1")
		noNewPrivs := slices.Contains(hc.SecurityOpt, "no-new-privileges:true")
		if hc.Privileged != privileged || noNewPrivs == privileged {
			t.Errorf("privileged=%v: HostConfig.Privileged %v SecurityOpt %v", privileged, hc.Privileged, hc.SecurityOpt)
		}
		if hc.Init == nil || !*hc.Init || len(hc.Mounts) != 0 || len(hc.Binds) != 0 || cfg.Entrypoint != nil || cfg.Cmd != nil {
			t.Errorf("privileged=%v: unexpected config %+v %+v", privileged, cfg, hc)
		}
	}
}
