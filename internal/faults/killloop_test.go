package faults

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Issue 10, at the size: kill -9 of a daemon running the embedded
// NATS server, five times at random 2 to 6 s intervals, while 30
// ten-second jobs run on example workers on the real Docker engine,
// repeated in 5 rounds; each kill is followed by a restart on the same
// store. The rounds run back to back on warm workers (idle_timeout 20s
// outlasts the gap between rounds, so scale-down only comes at the end).
// Every job runs exactly once (one started, its finished from the worker
// that started it), no worker is drained while a run of its own is open
// (the lifecycle stream, which outlives the daemons, against the runs in
// the job stream), no daemon counted a busy worker killed, and nothing is
// left: no container, nothing pending or running.
func TestKill9LoopRunsEveryJobOnce(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	owner := dockertest.UniqueName("faults-kill9")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	const (
		pool   = "kill9"
		rounds = 5
		jobs   = 30
		jobLen = 10 * time.Second
		kills  = 5
	)
	cfg := baseConfig(t, owner)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	p := workerPool(t, pool, natsURL)
	p.MaxWorkers = 15 // two waves of ten-second jobs a round
	p.IdleTimeout = config.Fixed(20 * time.Second)
	p.IdleWorkers = config.IdleWorkers{Count: 0}
	p.StopGracePeriod = config.Duration(2 * time.Second)
	cfg.Pools = []config.Pool{p}

	d := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)
	_, js := connectJS(t, natsURL)
	sched := bustest.NewJobs(t, js)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	killedBusy := 0.0
	for round := range rounds {
		begin := time.Now()
		for i := range jobs {
			sched.Queued(pool, fmt.Sprintf("r%d-%d", round, i), map[string]string{"duration": jobLen.String()})
		}
		for k := range kills {
			time.Sleep(time.Duration(2000+r.IntN(4000)) * time.Millisecond) // the kill's random moment, not a wait for a result
			// The counter lives in the process: read it before the kill.
			killedBusy += scrape(t, d.url("/metrics")).get("hodei_autoscaler_busy_workers_killed_total", "pool", pool)
			if code, _ := d.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
				t.Fatalf("round %d, kill %d: daemon exit code %d", round+1, k+1, code)
			}
			d = startDaemon(t, cfg)
			bustest.Eventually(t, 60*time.Second, fmt.Sprintf("daemon ready after round %d kill %d", round+1, k+1), d.ready)
		}
		prefix := fmt.Sprintf("r%d-", round)
		every(t, 3*time.Minute, time.Second, fmt.Sprintf("every job of round %d finished", round+1), func() bool {
			n := 0
			for _, e := range readJobEvents(t, js, pool) {
				if e.kind == "finished" && strings.HasPrefix(e.data.JobID, prefix) {
					n++
				}
			}
			return n >= jobs
		})
		t.Logf("round %d: %d jobs through %d kills in %s", round+1, jobs, kills, time.Since(begin).Round(100*time.Millisecond))
	}
	bustest.Eventually(t, 2*time.Minute, "no containers left", func() bool { return len(owned(t, cli, owner)) == 0 })

	// Every job once, on one worker, which finished it.
	evs := readJobEvents(t, js, pool)
	type run struct {
		worker     string
		start, end time.Time
	}
	runs := map[string][]*run{} // by job
	for _, e := range evs {
		switch e.kind {
		case "started":
			runs[e.data.JobID] = append(runs[e.data.JobID], &run{worker: e.data.WorkerID, start: e.at})
		case "finished":
			for _, ru := range runs[e.data.JobID] {
				if ru.worker == e.data.WorkerID && ru.end.IsZero() {
					if e.data.Outcome != string(domain.OutcomeSucceeded) {
						t.Errorf("job %s finished %s on %s", e.data.JobID, e.data.Outcome, e.data.WorkerID)
					}
					ru.end = e.at
				}
			}
		}
	}
	twice := 0
	byWorker := map[string][]*run{}
	for round := range rounds {
		for i := range jobs {
			id := fmt.Sprintf("r%d-%d", round, i)
			rs := runs[id]
			if len(rs) != 1 {
				twice++
				t.Errorf("job %s started %d times", id, len(rs))
			}
			for _, ru := range rs {
				if ru.end.IsZero() {
					t.Errorf("job %s started on %s at %s never finished there", id, ru.worker, ru.start.Format(time.StampMilli))
				}
				byWorker[ru.worker] = append(byWorker[ru.worker], ru)
			}
		}
	}
	// No worker signalled while it ran a job.
	drains := 0
	for _, l := range readLifecycle(t, js, pool) {
		if l.state != string(domain.LifecycleDraining) {
			continue
		}
		drains++
		for _, ru := range byWorker[l.worker] {
			if !l.at.Before(ru.start) && (ru.end.IsZero() || l.at.Before(ru.end)) {
				t.Errorf("worker %s drained at %s while it ran a job since %s", l.worker, l.at.Format(time.StampMilli), ru.start.Format(time.StampMilli))
			}
		}
	}
	m := scrape(t, d.url("/metrics"))
	killedBusy += m.get("hodei_autoscaler_busy_workers_killed_total", "pool", pool)
	if killedBusy != 0 {
		t.Errorf("busy_workers_killed_total summed over the daemons = %v, want 0", killedBusy)
	}
	st, _ := pools(d.url("/v1/pools"))
	if st[pool].Pending != 0 || st[pool].Running != 0 {
		t.Errorf("ledger left with %d pending, %d running", st[pool].Pending, st[pool].Running)
	}
	t.Logf("%d rounds of %d kills and %d jobs: %d jobs ran more than once; %d workers, %d drains checked against their runs",
		rounds, kills, jobs, twice, len(byWorker), drains)
}

// every polls cond each interval until it holds or timeout passes: for a
// condition too costly to poll at Eventually's pace (reading a stream).
func every(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
