package app

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// With ha on, a pool a reload adds gets its lease at once (the replica
// acts on it: its queued jobs get workers, /v1/pools says the replica
// holds it), and a pool a reload removes is released once its last worker
// is gone. On a real NATS server with fake providers.
func TestReloadLeasesAddedPools(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := testConfig(t, filepath.Join(dir, "nats"))
	cfg.NATS.Embedded, cfg.NATS.URL = config.Embedded{}, bustest.StartServer(t).ClientURL()
	cfg.HA.Enabled, cfg.HA.ReplicaID = true, "r1"
	cfg.HA.LeaseTTL, cfg.HA.RenewInterval = config.Duration(2*time.Second), config.Duration(300*time.Millisecond)
	cfg.HA.CallTimeout, cfg.HA.SafetySlack = config.Duration(500*time.Millisecond), config.Duration(100*time.Millisecond)
	cfg.Pools[0].MaxWorkers = 2
	r := runReloadable(t, path, cfg)
	a, f, jobs := r.app, r.fakes, r.jobs
	held := func(name string) bool {
		for _, s := range a.Status() {
			if s.Pool == name {
				return s.Lease != nil && s.Lease.Mine && s.Lease.Holder == "r1"
			}
		}
		return false
	}
	bustest.Eventually(t, 20*time.Second, "r1 holding p1", func() bool { return held("p1") })

	for i := range 2 {
		jobs.Queued("p2", fmt.Sprint("early-", i), nil)
	}
	next := cfg
	q := cfg.Pools[0]
	q.Name = "p2"
	next.Pools = []config.Pool{cfg.Pools[0], q}
	writeConfigFile(t, path, next)
	bustest.Eventually(t, 20*time.Second, "r1 holding the added pool p2", func() bool { return held("p2") })
	bustest.Eventually(t, 20*time.Second, "2 workers for p2's jobs", func() bool {
		ps := f.of("p2")
		return len(ps) == 1 && len(ps[0].Workers()) == 2
	})

	writeConfigFile(t, path, cfg) // p2 goes: its workers, idle, stop, then the pool
	bustest.Eventually(t, 30*time.Second, "p2 removed and its lease released", func() bool {
		for _, s := range a.Status() {
			if s.Pool == "p2" {
				return false
			}
		}
		return !a.lease.MayAct("p2", time.Now())
	})
	if n := len(f.of("p2")[0].Workers()); n != 0 {
		t.Errorf("%d workers of the removed pool p2 left", n)
	}
	if !held("p1") {
		t.Error("r1 lost p1 over the reloads")
	}
}
