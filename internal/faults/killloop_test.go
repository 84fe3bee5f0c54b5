package faults

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Issue 10: kill -9 of a daemon running the embedded NATS server, five
// times at random 2 to 6 s intervals, while 30 jobs run on example
// workers on the real Docker engine; each kill is followed by a restart on
// the same store. Every job runs exactly once (one started per job, its
// finished from the worker that started it), no busy worker is killed,
// and nothing is left. Scaled down from the ten-second jobs and
// five repetitions to 8 s jobs and one round, to keep make test short.
func TestKill9LoopRunsEveryJobOnce(t *testing.T) {
	cli := dockertest.Client(t)
	daemonBinary(t)
	owner := dockertest.UniqueName("faults-kill9")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	const (
		pool   = "kill9"
		jobs   = 30
		jobLen = 8 * time.Second
		kills  = 5
	)
	cfg := baseConfig(t, owner)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	p := workerPool(t, pool, natsURL)
	p.MaxWorkers = 10
	p.IdleTimeout = config.Fixed(2 * time.Second)
	p.StopGracePeriod = config.Duration(2 * time.Second)
	cfg.Pools = []config.Pool{p}

	d := startDaemon(t, cfg)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)
	_, js := connectJS(t, natsURL)
	sched := bustest.NewJobs(t, js)
	for i := range jobs {
		sched.Queued(pool, fmt.Sprint("k-", i), map[string]string{"duration": jobLen.String()})
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	for k := range kills {
		time.Sleep(time.Duration(2000+r.IntN(4000)) * time.Millisecond) // the kill's random moment, not a wait for a result
		if code, _ := d.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
			t.Fatalf("kill %d: daemon exit code %d", k+1, code)
		}
		d = startDaemon(t, cfg)
		bustest.Eventually(t, 60*time.Second, fmt.Sprintf("daemon ready after kill %d", k+1), d.ready)
		t.Logf("kill %d done; %d jobs finished so far", k+1, jobTruth(t, js, pool).Finished)
	}
	bustest.Eventually(t, 3*time.Minute, "every job finished", func() bool { return jobTruth(t, js, pool).Finished == jobs })

	started := map[string][]string{}
	finishedBy := map[string][]string{}
	for _, e := range readJobEvents(t, js, pool) {
		switch e.kind {
		case "started":
			started[e.data.JobID] = append(started[e.data.JobID], e.data.WorkerID)
		case "finished":
			finishedBy[e.data.JobID] = append(finishedBy[e.data.JobID], e.data.WorkerID+"/"+e.data.Outcome)
		}
	}
	twice := 0
	for i := range jobs {
		id := fmt.Sprint("k-", i)
		if len(started[id]) != 1 {
			twice++
			t.Errorf("job %s started %d times (workers %v)", id, len(started[id]), started[id])
			continue
		}
		if fb := finishedBy[id]; len(fb) == 0 || fb[0] != started[id][0]+"/succeeded" {
			t.Errorf("job %s started on %s, finished %v", id, started[id][0], fb)
		}
	}
	bustest.Eventually(t, 90*time.Second, "no containers left", func() bool { return len(owned(t, cli, owner)) == 0 })
	m := scrape(t, d.url("/metrics"))
	if got := m.get("hodei_autoscaler_busy_workers_killed_total", "pool", pool); got != 0 {
		t.Errorf("busy_workers_killed_total = %v after the last restart, want 0", got)
	}
	st, _ := pools(d.url("/v1/pools"))
	if st[pool].Pending != 0 || st[pool].Running != 0 {
		t.Errorf("ledger left with %d pending, %d running", st[pool].Pending, st[pool].Running)
	}
	t.Logf("%d kills, %d jobs: %d ran more than once", kills, jobs, twice)
}
