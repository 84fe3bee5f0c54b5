package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

// writeConfigFile writes cfg as YAML to path.
func writeConfigFile(t *testing.T, path string, cfg config.Config) {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fakes builds one fake provider per pool name, remembering each, as
// the daemon's provider factory.
type fakes struct {
	mu    sync.Mutex
	byKey map[string][]*fakeprovider.Provider // pool -> providers built, in order
}

func (f *fakes) build(_ string, pc config.Pool, _ zerolog.Logger) (providers.Provider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := fakeprovider.New(pc.PoolName())
	f.byKey[pc.Name] = append(f.byKey[pc.Name], p)
	return p, nil
}

func (f *fakes) of(pool string) []*fakeprovider.Provider {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byKey[pool]
}

// The reload cycle of one daemon, on a real NATS server with fake
// providers (the same cycle runs on the real Docker engine in
// docker_reload_test.go): a change of the file raises max_workers, a
// broken file is refused, a restart-only key is reported and kept, a pool
// is added (jobs queued for it before it existed become its demand) and
// removed again.
func TestReloadCycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := testConfig(t, filepath.Join(dir, "nats"))
	cfg.Pools[0].MaxWorkers = 2
	r := runReloadable(t, path, cfg)
	a, f, logs, jobs := r.app, r.fakes, r.logs, r.jobs
	for i := range 6 {
		jobs.Queued("p1", fmt.Sprint("j", i), nil)
	}
	p1 := f.of("p1")[0]
	bustest.Eventually(t, 10*time.Second, "2 workers at max_workers 2", func() bool { return len(p1.Workers()) == 2 })
	reloads := func(result string) float64 {
		return testutil.ToFloat64(a.m.ConfigReloads.WithLabelValues(result))
	}

	// 1. max_workers 2 -> 5, by writing the file.
	cfg.Pools[0].MaxWorkers = 5
	writeConfigFile(t, path, cfg)
	bustest.Eventually(t, 10*time.Second, "5 workers after raising max_workers", func() bool { return len(p1.Workers()) == 5 })
	if len(f.of("p1")) != 1 {
		t.Errorf("max_workers alone rebuilt the provider (%d built)", len(f.of("p1")))
	}
	if reloads(metrics.ReloadApplied) != 1 || testutil.ToFloat64(a.m.MaxWorkers.WithLabelValues("p1")) != 5 {
		t.Errorf("reloads applied %v, max_workers gauge %v", reloads(metrics.ReloadApplied), testutil.ToFloat64(a.m.MaxWorkers.WithLabelValues("p1")))
	}

	// 2. A broken file: refused with every reason, nothing changes.
	if err := os.WriteFile(path, []byte("pools:\n  - name: p1\n    max_wrokers: 3\n    min_workers: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "reload rejected", func() bool { return reloads(metrics.ReloadRejected) == 1 })
	refused := fmt.Sprint(logs.Entry("config reload refused: the new config is invalid; the running config stays in force")["problems"])
	if !strings.Contains(refused, "max_wrokers") || !strings.Contains(refused, "min_workers") {
		t.Errorf("the refusal does not name every problem: %s", refused)
	}
	if n := len(p1.Workers()); n != 5 || !a.Ready() {
		t.Errorf("after a broken file: %d workers, ready %v; want the old config in force", n, a.Ready())
	}

	// 3. A restart-only key and a new pool whose jobs were queued before
	// it existed.
	jobs.Queued("p2", "early-1", nil)
	jobs.Queued("p2", "early-2", nil)
	next := cfg
	next.HTTP.Listen = "127.0.0.1:1"
	q := cfg.Pools[0]
	q.Name = "p2"
	next.Pools = []config.Pool{cfg.Pools[0], q}
	writeConfigFile(t, path, next)
	bustest.Eventually(t, 10*time.Second, "pool p2 added with 2 workers for its early jobs", func() bool {
		ps := f.of("p2")
		return len(ps) == 1 && len(ps[0].Workers()) == 2
	})
	if !strings.Contains(logs.String(), `"key":"http.listen"`) {
		t.Error("the changed http.listen is not reported as needing a restart")
	}
	if s := pool(t, a, "p1"); s.Pending+s.Running != 6 {
		t.Errorf("p1 after the stream was read again: pending %d running %d, want its 6 jobs once", s.Pending, s.Running)
	}
	if v := testutil.ToFloat64(a.m.Events.WithLabelValues(domain.TypeJobQueued, "duplicate")); v != 0 {
		t.Errorf("reading the stream again counted %v duplicates", v)
	}

	// 4. p2 removed: its idle workers stop, the pool goes.
	writeConfigFile(t, path, cfg)
	p2 := f.of("p2")[0]
	bustest.Eventually(t, 10*time.Second, "pool p2 gone", func() bool {
		for _, s := range a.Status() {
			if s.Pool == "p2" {
				return false
			}
		}
		return len(p2.Workers()) == 0
	})
	if got, _ := testutil.GatherAndCount(a.reg, "hodei_autoscaler_desired_workers"); got != 1 {
		t.Errorf("%d desired_workers series after p2 went, want only p1's", got)
	}
}

// reloadable is a daemon started from a config file it watches, on fake
// providers, with a publisher of job events.
type reloadable struct {
	app   *App
	fakes *fakes
	logs  *syncbuf.Buffer
	jobs  *bustest.Jobs
}

// runReloadable writes cfg to path and runs a daemon loaded from it that
// applies changes of the file (settled 20ms after a write, never polled).
func runReloadable(t *testing.T, path string, cfg config.Config) reloadable {
	t.Helper()
	writeConfigFile(t, path, cfg)
	loaded, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	r := reloadable{fakes: &fakes{byKey: map[string][]*fakeprovider.Provider{}}, logs: new(syncbuf.Buffer)}
	r.app = runApp(t, loaded, Options{Logger: zerolog.New(r.logs), Providers: r.fakes.build, ConfigFile: path,
		WatchSettle: 20 * time.Millisecond, WatchPoll: time.Hour})
	_, js := bustest.Connect(t, r.app.BusURL())
	r.jobs = bustest.NewJobs(t, js)
	return r
}

// runApp runs a daemon on cfg until the end of the test, and waits until
// it is ready.
func runApp(t *testing.T, cfg config.Config, opt Options) *App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, opt)
	if err != nil {
		cancel()
		t.Fatalf("starting the daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	})
	bustest.Eventually(t, 30*time.Second, "daemon ready", a.Ready)
	return a
}
