package faults

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// Fault 1: the daemon process is killed with SIGKILL while it provisions
// on Docker — some workers running, some containers created but never
// started (their create answer was on its way), some jobs without any
// container yet. The restarted daemon, on the same store, rebuilds pending
// and running from the stream, adopts every container created before the
// crash (starting those that were only created), creates only what is
// missing, never runs more containers than the decision allows, and leaves
// none behind once the jobs are done.
func TestSIGKILLWhileProvisioning(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	testStart := time.Now()
	owner := dockertest.UniqueName("faults-kill")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	px := engineproxy.New(t)
	// Creates reach the engine at once but answer after a while: the
	// daemon dies with containers created that it never started.
	px.DelayCreates(2 * time.Second)

	const (
		pool = "kill"
		jobs = 7
	)
	cfg := baseConfig(t, owner)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	p := workerPool(t, pool, natsURL)
	p.Docker.Host = px.Host()
	p.MaxConcurrentProvisioning = 3
	p.IdleTimeout = config.Fixed(2 * time.Second)
	p.StopGracePeriod = config.Duration(5 * time.Second)
	cfg.Pools = []config.Pool{p}

	d1 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "first daemon ready", d1.ready)
	_, js := connectJS(t, natsURL)
	sched := bustest.NewJobs(t, js)
	seen := sampleContainers(t, cli, owner, 100*time.Millisecond)
	ids := map[string]bool{} // every worker container ever seen
	record := func() []container.Summary {
		cs := owned(t, cli, owner)
		for _, c := range cs {
			ids[c.Labels[domain.LabelWorkerID]] = true
		}
		return cs
	}

	for i := range jobs {
		sched.Queued(pool, fmt.Sprint("job-", i), map[string]string{"duration": "15s"})
	}
	var atKill []container.Summary
	bustest.Eventually(t, 60*time.Second, "workers running and creates in flight", func() bool {
		atKill = record()
		return countState(atKill, "running") >= 2 && px.InFlight(engineproxy.IsCreate) >= 1 && len(atKill) < jobs
	})
	killAt := time.Now()
	if code, _ := d1.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("daemon exit code %d after SIGKILL", code)
	}
	// Creates in flight at the kill may land after the next daemon's
	// first listing: it cannot know of them, creates for their jobs too,
	// and adopts (then reaps) them when they appear. They are the "plus
	// those in flight" of the bound below.
	inFlight := len(px.Requests(func(r engineproxy.Req) bool {
		return engineproxy.IsCreate(r) && r.Start.Before(killAt) && (r.End.IsZero() || r.End.After(killAt))
	}))
	// A create the proxy held completes at the engine: its container
	// exists, created and never started by the dead daemon.
	bustest.Eventually(t, 10*time.Second, "a container created but never started", func() bool {
		atKill = record()
		return countState(atKill, "created") >= 1
	})
	t.Logf("%v: killed while provisioning: %d containers running, %d created but not started, %d jobs without a container",
		time.Since(testStart).Round(time.Millisecond), countState(atKill, "running"), countState(atKill, "created"), jobs-len(atKill))
	t.Logf("%d creates in flight at the kill", inFlight)

	// Restart on the same store and port.
	restarted := time.Now()
	d2 := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "restarted daemon ready", d2.ready)
	t.Logf("restarted daemon ready %v after launch", time.Since(restarted).Round(time.Millisecond))

	// The ledger equals the stream, and the workers equal the containers.
	matches := func() bool {
		record()
		before := jobTruth(t, js, pool)
		st, ok := pools(d2.url("/v1/pools"))
		after := jobTruth(t, js, pool)
		cs := owned(t, cli, owner)
		return ok && before == after && st[pool].Pending == before.Pending && st[pool].Running == before.Running &&
			st[pool].total() == len(cs) && st[pool].Workers[string(domain.StateProvisioning)] == 0
	}
	bustest.Eventually(t, 60*time.Second, "ledger and workers equal the truth after the restart", matches)
	bustest.Eventually(t, 60*time.Second, "every job started", func() bool {
		record()
		return jobTruth(t, js, pool).Started == jobs
	})
	bustest.Eventually(t, 30*time.Second, "ledger equals the truth with every job running", matches)
	t.Logf("%v: every job running, ledger equal to the stream", time.Since(testStart).Round(time.Millisecond))

	// Demand ends: nothing is left behind.
	bustest.Eventually(t, 90*time.Second, "every job finished", func() bool {
		record()
		return jobTruth(t, js, pool).Finished == jobs
	})
	t.Logf("%v: every job finished", time.Since(testStart).Round(time.Millisecond))
	bustest.Eventually(t, 60*time.Second, "no containers left", func() bool { return len(record()) == 0 })
	t.Logf("%v: no containers left", time.Since(testStart).Round(time.Millisecond))
	bustest.Eventually(t, 10*time.Second, "ledger empty", matches)
	seen.stop()
	peak, samples := seen.result()
	t.Logf("container count sampled %d times: peak %d for %d jobs; %d distinct workers", samples, peak, jobs, len(ids))
	if peak > jobs+inFlight {
		t.Errorf("%d containers at once for %d jobs at 1 per worker and %d creates in flight at the kill: more than the decision allows", peak, jobs, inFlight)
	}
	if len(ids) > jobs+inFlight {
		t.Errorf("%d distinct worker containers for %d jobs and %d creates in flight at the kill: some were duplicated or replaced", len(ids), jobs, inFlight)
	}
	// Every container created before the crash was adopted (it ran a job)
	// or reaped by the new daemon (stopped, as not needed).
	ran := workersThatStarted(t, js, pool)
	onBus := strings.Join(busEvents(t, js), "\n")
	for _, c := range atKill {
		id := c.Labels[domain.LabelWorkerID]
		if !ran[id] && !strings.Contains(onBus, "stopped "+pool+" "+id) {
			t.Errorf("container %s (worker %s, %s at the kill) neither ran a job nor was stopped by the new daemon", c.ID[:12], id, c.State)
		}
	}
	m := scrape(t, d2.url("/metrics"))
	for _, typ := range []string{domain.TypeJobQueued, domain.TypeJobFinished} {
		if v := m.get("hodei_autoscaler_events_total", "type", typ, "result", "applied"); v != jobs {
			t.Errorf("restarted daemon applied %v %s events, want %d", v, typ, jobs)
		}
	}
}

// workersThatStarted returns the worker ids named by the pool's started
// events.
func workersThatStarted(t *testing.T, js jetstream.JetStream, pool string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, e := range readJobEvents(t, js, pool) {
		if e.kind == "started" {
			out[e.data.WorkerID] = true
		}
	}
	return out
}
