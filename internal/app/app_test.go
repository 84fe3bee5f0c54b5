package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// testConfig is a daemon on an embedded NATS with a free port and the
// given store, one pool "p1" whose provider the test supplies.
func testConfig(t *testing.T, store string) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: -1, StoreDir: store}
	cfg.Reconcile.Interval = config.Duration(100 * time.Millisecond)
	cfg.Reconcile.ResyncInterval = config.Duration(time.Second)
	cfg.Reconcile.ProviderTimeout = config.Duration(5 * time.Second)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "unused"
	p.MaxWorkers = 20
	p.IdleWorkers = config.IdleWorkers{} // no warm buffer: the counts below are demand's
	p.IdleTimeout = config.Fixed(time.Hour)
	cfg.Pools = []config.Pool{p}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	return cfg
}

type running struct {
	app  *App
	stop func()
}

// startApp runs a daemon whose pools all use provs[pool].
func startApp(t *testing.T, cfg config.Config, provs map[string]providers.Provider, log zerolog.Logger) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, Options{Logger: log, Providers: func(_ string, pc config.Pool, _ zerolog.Logger) (providers.Provider, error) {
		return provs[pc.Name], nil
	}})
	if err != nil {
		cancel()
		t.Fatalf("starting daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	r := &running{app: a}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("daemon did not stop within 20s")
		}
	}
	t.Cleanup(r.stop)
	return r
}

func pool(t *testing.T, a *App, name string) reconciler.PoolStatus {
	t.Helper()
	for _, s := range a.Status() {
		if s.Pool == name {
			return s
		}
	}
	t.Fatalf("no pool %s", name)
	return reconciler.PoolStatus{}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Events in over a real NATS server: the ledger is right, bad events are
// counted and dropped without losing the good ones around them, lifecycle
// and decision events come out on HODEI_WORKERS, and a restarted daemon
// rebuilds the same counts from the stream.
func TestDaemonOverRealNATS(t *testing.T) {
	store := t.TempDir()
	cfg := testConfig(t, store)
	fake := fakeprovider.New("p1")
	provs := map[string]providers.Provider{"p1": fake}
	d := startApp(t, cfg, provs, zerolog.New(io.Discard))
	a := d.app
	bustest.Eventually(t, 10*time.Second, "readyz", a.Ready)

	_, js := bustest.Connect(t, a.BusURL())
	jobs := bustest.NewJobs(t, js)
	out := bustest.Collect(t, js)

	for i := range 5 {
		jobs.Queued("p1", fmt.Sprint("job-", i), nil)
	}
	// Hostile input between the good events.
	jobs.Raw("hodei.jobs.p1.queued", []byte("not json"), "")
	jobs.Raw("hodei.jobs.p1.queued", []byte(`{"specversion":"1.0","id":"x","source":"s","type":"hodei.job.queued","data":{"pool":"p1"}}`), "")
	jobs.Raw("hodei.jobs.p1.queued", []byte(`{"specversion":"1.0","id":"y","source":"s","type":"hodei.job.queued","data":{"job_id":"z","pool":"other"}}`), "")
	jobs.Queued("unknown-pool", "job-x", nil)
	jobs.Queued("p1", "job-0", nil) // same job, new event id: a duplicate for the ledger

	bustest.Eventually(t, 10*time.Second, "5 workers", func() bool { return len(fake.Workers()) == 5 })
	ws := fake.Workers()
	jobs.Started("p1", "job-0", ws[0])
	jobs.Started("p1", "job-1", ws[1])
	jobs.Finished("p1", "job-1", ws[1])
	jobs.Finished("p1", "job-4", "") // cancelled while pending

	bustest.Eventually(t, 10*time.Second, "ledger 2 pending 1 running", func() bool {
		s := pool(t, a, "p1")
		return s.Pending == 2 && s.Running == 1
	})
	bustest.Eventually(t, 10*time.Second, "lifecycle events", func() bool {
		return len(out.OfType(bustest.Lifecycle(domain.LifecycleProvisioning))) == 5 &&
			len(out.OfType(bustest.Lifecycle(domain.LifecycleReady))) == 5
	})
	for _, e := range out.OfType(bustest.Lifecycle(domain.LifecycleReady)) {
		if e.Subject != "hodei.workers.p1.ready" || e.Worker.Pool != "p1" || e.Worker.Provider != "fake" || e.Worker.WorkerID == "" {
			t.Errorf("ready event %+v", e)
		}
	}
	bustest.Eventually(t, 10*time.Second, "decision events", func() bool {
		ds := out.OfType("hodei.autoscaler.decision")
		return len(ds) > 0 && ds[len(ds)-1].Decide.Desired == 3
	})
	for _, e := range out.OfType("hodei.autoscaler.decision") {
		if e.Subject != "hodei.autoscaler.p1.decision" || e.Decide.Reason == "" {
			t.Errorf("decision event %+v", e)
		}
	}

	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{"hodei.job.queued", "applied", 5},
		{"hodei.job.queued", "invalid", 3},
		{"hodei.job.queued", "duplicate", 1},
		{"hodei.job.queued", "ignored", 1},
		{"hodei.job.started", "applied", 2},
		{"hodei.job.finished", "applied", 2},
	} {
		got := testutil.ToFloat64(a.m.Events.WithLabelValues(c.typ, c.result))
		if got != c.want {
			t.Errorf("events_total{type=%s,result=%s} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	code, body := get(t, "http://"+a.HTTPAddr()+"/metrics")
	for _, want := range []string{`hodei_autoscaler_pending_jobs{pool="p1"} 2`, `hodei_autoscaler_running_jobs{pool="p1"} 1`,
		`hodei_autoscaler_workers{pool="p1",state="busy"} 1`, `hodei_autoscaler_desired_workers{pool="p1"} 3`,
		`hodei_autoscaler_events_dropped_total{reason="not_json"} 1`, `hodei_autoscaler_events_dropped_total{reason="pool_mismatch"} 1`,
		`hodei_autoscaler_events_dropped_total{reason="missing_job_id"} 1`, `hodei_autoscaler_events_dropped_total{reason="unknown_pool"} 1`,
		"hodei_autoscaler_reaction_seconds_bucket", "hodei_autoscaler_provision_duration_seconds_bucket", "go_goroutines", "process_resident_memory_bytes"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body = get(t, "http://"+a.HTTPAddr()+"/v1/pools")
	if code != 200 || !strings.Contains(body, `"pending": 2`) || !strings.Contains(body, `"reason": "desired 3 = pending 2 + running 1"`) {
		t.Errorf("/v1/pools: %d %s", code, body)
	}

	// Restart on the same store: the fold of the stream gives the same
	// counts, and the existing workers are adopted, not duplicated.
	d.stop()
	creates := len(fake.Calls())
	d2 := startApp(t, cfg, provs, zerolog.New(io.Discard))
	bustest.Eventually(t, 10*time.Second, "restarted daemon ready", d2.app.Ready)
	bustest.Eventually(t, 5*time.Second, "same counts after restart", func() bool {
		s := pool(t, d2.app, "p1")
		return s.Pending == 2 && s.Running == 1 && s.Workers["busy"] == 1 && s.Workers["idle"] == 4
	})
	if got := len(fake.Calls()); got != creates {
		t.Errorf("restart made %d provider calls, want none: %+v", got-creates, fake.Calls()[creates:])
	}
}

// /readyz is false until the retained stream is folded and while a
// provider is down, and says which.
func TestReadyzNamesTheFailingProvider(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Reconcile.BreakerFailures = 1
	cfg.Reconcile.BreakerCooldown = config.Duration(100 * time.Millisecond)
	fake := fakeprovider.New("p1")
	var down = make(chan bool, 1)
	down <- true
	fake.Fail = func(op string, _ domain.WorkerID) error {
		d := <-down
		down <- d
		if d {
			return fakeprovider.ErrDown
		}
		return nil
	}
	d := startApp(t, cfg, map[string]providers.Provider{"p1": fake}, zerolog.New(io.Discard))
	url := "http://" + d.app.HTTPAddr() + "/readyz"
	bustest.Eventually(t, 10*time.Second, "readyz names the provider", func() bool {
		code, body := get(t, url)
		return code == 503 && strings.Contains(body, "pool p1 (fake)") && strings.Contains(body, "fake provider down")
	})
	<-down
	down <- false
	bustest.Eventually(t, 10*time.Second, "readyz recovers", func() bool {
		code, _ := get(t, url)
		return code == 200
	})
	if code, _ := get(t, "http://"+d.app.HTTPAddr()+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
}
