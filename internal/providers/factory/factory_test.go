package factory

import (
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// A reload rebuilds a pool's provider exactly when a setting the provider
// uses changes, and refuses to move the pool's workers elsewhere.
func TestChangedAndLocation(t *testing.T) {
	base := config.PoolDefaults()
	base.Name = "p"
	base.Docker.Image = "img:1"
	k8s := base
	k8s.Provider = "kubernetes"
	k8s.Kubernetes.Image = "img:1"
	for _, tc := range []struct {
		name    string
		old     config.Pool
		mod     func(*config.Pool)
		changed bool
		moved   bool
	}{
		{"max_workers only", base, func(p *config.Pool) { p.MaxWorkers = 99; p.IdleTimeout = config.Fixed(time.Hour) }, false, false},
		{"image", base, func(p *config.Pool) { p.Docker.Image = "img:2" }, true, false},
		{"env", base, func(p *config.Pool) { p.Env = map[string]string{"A": "1"} }, true, false},
		{"slots", base, func(p *config.Pool) { p.JobsPerWorker = 3 }, true, false},
		{"resources", base, func(p *config.Pool) { p.Resources.MemoryMB = 512 }, true, false},
		{"docker host", base, func(p *config.Pool) { p.Docker.Host = "unix:///other.sock" }, true, true},
		{"provider type", base, func(p *config.Pool) { p.Provider = "kubernetes" }, true, true},
		{"stop grace, docker", base, func(p *config.Pool) { p.StopGracePeriod = config.Duration(time.Minute) }, false, false},
		{"stop grace, kubernetes", k8s, func(p *config.Pool) { p.StopGracePeriod = config.Duration(time.Minute) }, true, false},
		{"namespace", k8s, func(p *config.Pool) { p.Kubernetes.Namespace = "elsewhere" }, true, true},
		{"node selector", k8s, func(p *config.Pool) { p.Kubernetes.NodeSelector = map[string]string{"a": "b"} }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.old
			tc.mod(&next)
			if got := Changed("owner", tc.old, next); got != tc.changed {
				t.Errorf("Changed = %v, want %v", got, tc.changed)
			}
			if got := Location(tc.old) != Location(next); got != tc.moved {
				t.Errorf("location %q -> %q: moved %v, want %v", Location(tc.old), Location(next), got, tc.moved)
			}
		})
	}
}
