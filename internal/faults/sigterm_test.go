package faults

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// Fault 5: SIGTERM. The daemon stops consuming, abandons a provider call
// that hangs once shutdown.timeout has passed, publishes every lifecycle
// and decision event it produced, and exits 0 within a bounded time. By
// default the workers keep running (a restart must not kill running jobs);
// the next daemon adopts them, and with shutdown.stop_workers: true it
// stops the idle one on SIGTERM and leaves the busy one running.
func TestSIGTERM(t *testing.T) {
	cli := dockertest.Client(t)
	owner := dockertest.UniqueName("faults-term")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	srv := bustest.StartServer(t) // the bus outlives the daemons
	px := engineproxy.New(t)
	px.HangCreates(true)

	const shutdownTimeout = 6 * time.Second
	cfg := baseConfig(t, owner)
	cfg.NATS.URL = srv.ClientURL()
	cfg.Shutdown.Timeout = config.Duration(shutdownTimeout)
	cfg.Reconcile.ProviderTimeout = config.Duration(time.Minute) // the hanging create outlives the shutdown
	term := workerPool(t, "term", srv.ClientURL())
	term.MinWorkers = 2
	stuck := dockerPool("stuck", sleeperImage(t))
	stuck.Docker.Host = px.Host()
	cfg.Pools = []config.Pool{term, stuck}

	d1 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d1.ready)
	_, js := connectJS(t, srv.ClientURL())
	sched := bustest.NewJobs(t, js)
	termContainers := func() (running, total int) {
		cs := owned(t, cli, owner, domain.LabelWorkerPool+"=term")
		return countState(cs, "running"), len(cs)
	}
	bustest.Eventually(t, 60*time.Second, "2 term workers (min_workers)", func() bool {
		r, n := termContainers()
		return r == 2 && n == 2
	})
	sched.Queued("term", "long", map[string]string{"duration": "10m"})
	bustest.Eventually(t, 30*time.Second, "the long job running", func() bool { return jobTruth(t, js, "term").Running == 1 })
	busy := ""
	for id := range workersThatStarted(t, js, "term") {
		busy = id
	}
	sched.Queued("stuck", "stuck-1", nil)
	bustest.Eventually(t, 30*time.Second, "a create hanging at the engine", func() bool { return px.InFlight(engineproxy.IsCreate) == 1 })
	bustest.Eventually(t, 10*time.Second, "1 busy and 1 idle term worker", func() bool {
		st, _ := pools(d1.url("/v1/pools"))
		return st["term"].Workers["busy"] == 1 && st["term"].Workers["idle"] == 1
	})

	// SIGTERM with the default shutdown.stop_workers: false.
	code, took := d1.signal(syscall.SIGTERM, shutdownTimeout+30*time.Second)
	t.Logf("SIGTERM with a create in flight: exit %d after %v", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took > shutdownTimeout+3*time.Second {
		t.Errorf("shutdown took %v, want within shutdown.timeout %v plus a little", took, shutdownTimeout)
	}
	assertLogOrder(t, d1.logs, "shutting down: consumer first", "shutting down reconciler", "shutdown timeout: abandoning provider calls in flight", "shutdown complete")
	bustest.Eventually(t, 5*time.Second, "the hanging create released by the daemon", func() bool { return px.InFlight(engineproxy.IsCreate) == 0 })
	if r, n := termContainers(); r != 2 || n != 2 {
		t.Errorf("after SIGTERM: %d of %d term workers running, want both still running", r, n)
	}
	if jobTruth(t, js, "term").Finished != 0 {
		t.Errorf("the long job finished: its worker was stopped")
	}

	// The next daemon adopts the workers; with stop_workers it stops the
	// idle one on SIGTERM, and only that one.
	cfg.Shutdown.StopWorkers = true
	d2 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "second daemon ready", d2.ready)
	bustest.Eventually(t, 10*time.Second, "the workers adopted", func() bool {
		st, _ := pools(d2.url("/v1/pools"))
		return st["term"].Workers["busy"] == 1 && st["term"].Workers["idle"] == 1 && st["term"].Running == 1
	})
	if r, n := termContainers(); r != 2 || n != 2 {
		t.Errorf("after the restart: %d of %d term workers running, want the same 2", r, n)
	}
	code, took = d2.signal(syscall.SIGTERM, shutdownTimeout+30*time.Second)
	t.Logf("SIGTERM with stop_workers: exit %d after %v", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took > shutdownTimeout+3*time.Second {
		t.Errorf("shutdown took %v, want within shutdown.timeout %v plus a little", took, shutdownTimeout)
	}
	cs := owned(t, cli, owner, domain.LabelWorkerPool+"=term")
	if len(cs) != 1 || cs[0].State != "running" || cs[0].Labels[domain.LabelWorkerID] != busy {
		t.Errorf("after SIGTERM with stop_workers: %d term containers, want only the busy worker %s running", len(cs), busy)
	}

	// Everything both daemons logged as published is on the bus.
	logged := loggedEvents(d1.logs)
	logged = append(logged, loggedEvents(d2.logs)...)
	onBus := busEvents(t, js)
	sort.Strings(logged)
	if strings.Join(logged, "\n") != strings.Join(onBus, "\n") {
		t.Errorf("events logged and events on the bus differ:\nlogged:\n%s\non the bus:\n%s", strings.Join(logged, "\n"), strings.Join(onBus, "\n"))
	}
	idle := ""
	for _, e := range onBus {
		if strings.HasPrefix(e, "stopped term ") {
			idle = strings.TrimPrefix(e, "stopped term ")
		}
	}
	if idle == "" || idle == busy {
		t.Errorf("no stopped event for the idle worker on the bus")
	}
	t.Logf("%d lifecycle and decision events logged, all on the bus", len(logged))
}

// assertLogOrder checks that the messages appear in the log in this order.
func assertLogOrder(t *testing.T, logs *logBuffer, msgs ...string) {
	t.Helper()
	entries := logs.Entries("")
	i := 0
	for _, e := range entries {
		if i < len(msgs) && e.str("message") == msgs[i] {
			i++
		}
	}
	if i < len(msgs) {
		t.Errorf("log lacks %q (in the order %q)", msgs[i], msgs)
	}
}

// loggedEvents renders the lifecycle and decision events a daemon logged
// as it enqueued them for publishing: "state pool worker" and "decision
// pool desired".
func loggedEvents(logs *logBuffer) []string {
	var out []string
	for _, e := range logs.Entries("") {
		msg := e.str("message")
		switch {
		case msg == "scaling decision":
			out = append(out, fmt.Sprintf("decision %s %v", e.str("pool"), e["desired"]))
		case strings.HasPrefix(msg, "worker ") && e.str("state") != "":
			out = append(out, fmt.Sprintf("%s %s %s", e.str("state"), e.str("pool"), e.str("worker_id")))
		}
	}
	return out
}

// busEvents renders HODEI_WORKERS as loggedEvents does, sorted.
func busEvents(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var out []string
	for _, m := range readStream(t, js, events.StreamWorkers) {
		var ce domain.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatalf("event seq %d is not JSON: %v", m.Sequence, err)
		}
		if ce.Type == domain.TypeDecision {
			var d domain.DecisionData
			_ = json.Unmarshal(ce.Data, &d)
			out = append(out, fmt.Sprintf("decision %s %d", d.Pool, d.Desired))
			continue
		}
		var w domain.WorkerEventData
		_ = json.Unmarshal(ce.Data, &w)
		out = append(out, fmt.Sprintf("%s %s %s", strings.TrimPrefix(ce.Type, domain.TypeWorkerPrefix), w.Pool, w.WorkerID))
	}
	sort.Strings(out)
	return out
}
