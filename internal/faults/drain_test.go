package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// Issue 10: a job whose run outlasts stop_grace_period, on a worker the
// daemon believes idle because its finished was forged, on the real
// Docker engine with the example worker. Two pools run the same case side
// by side in one daemon:
//
//   - forged: the worker reports its job every second (heartbeat_timeout
//     10s). It stays busy whatever the ledger says, is not chosen for
//     scale-down while the job runs, and the job ends with its own
//     finished; no busy worker is killed.
//   - silent, the control: the worker reports only when a job starts or
//     ends (HODEI_HEARTBEAT_INTERVAL 1h) and its word is believed for 1s.
//     With nothing but the forged ledger to go on, the daemon drains it
//     mid-job and kills it after stop_grace_period, before its job's end:
//     what the forged pool would see if heartbeats were ignored, so this
//     test fails if they are.
//
// Then a forged finished naming another pool's worker is refused.
func TestForgedFinishedDoesNotKillBusyWorker(t *testing.T) {
	t.Parallel()
	owner := dockertest.UniqueName("faults-forged")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	cfg := baseConfig(t, owner)
	url := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATS.Embedded.Port)
	pool := func(name string, heartbeat time.Duration, interval string) config.Pool {
		p := workerPool(t, name, url)
		p.MaxWorkers = 1
		p.IdleTimeout = config.Fixed(time.Second)
		p.IdleWorkers = config.IdleWorkers{Count: 0} // no warm buffer: an idle worker goes
		p.StopGracePeriod = config.Duration(2 * time.Second)
		p.HeartbeatTimeout = config.Duration(heartbeat)
		p.DrainTimeout = config.Duration(2 * time.Minute)
		p.Env["HODEI_HEARTBEAT_INTERVAL"] = interval
		return p
	}
	other := dockerPool("other", "unused-image")
	other.MaxWorkers = 1
	cfg.Pools = []config.Pool{pool("forged", 10*time.Second, "1s"), pool("silent", time.Second, "1h"), other}
	d := startInProc(t, cfg, app.Options{})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := connectJS(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)

	// Past the scale-down of an idle worker (idle_timeout 1s) plus
	// stop_grace_period (2s), with a wide margin.
	const jobLen = 20 * time.Second
	for _, p := range []string{"forged", "silent"} {
		jobs.Queued(domain.PoolName(p), "long", map[string]string{"duration": jobLen.String()})
	}
	started := map[string]jobEvent{}
	bustest.Eventually(t, 90*time.Second, "both long jobs started", func() bool {
		for _, p := range []string{"forged", "silent"} {
			for _, e := range readJobEvents(t, js, p) {
				if e.kind == "started" && e.data.JobID == "long" {
					started[p] = e
				}
			}
		}
		return len(started) == 2
	})
	bustest.Eventually(t, 10*time.Second, "both workers busy", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["forged"].Workers["busy"] == 1 && st["silent"].Workers["busy"] == 1
	})
	// The silent worker's one report, at its job's start, is believed
	// for 1s: then only the ledger speaks for it.
	forgedAt := time.Now()
	jobs.Finished("forged", "long", "") // forged: the ledger closes the job's run
	jobs.Finished("silent", "long", "")
	jobs.Finished("other", "long", domain.WorkerID(started["forged"].data.WorkerID)) // another pool's worker: refused

	forged, silent := started["forged"].data.WorkerID, started["silent"].data.WorkerID
	var own jobEvent
	bustest.Eventually(t, jobLen+30*time.Second, "the forged pool's worker's own finished, and the silent worker stopped", func() bool {
		own = finishedBy(readJobEvents(t, js, "forged"), "long", forged)
		return !own.at.IsZero() && lifecycleAt(readLifecycle(t, js, "silent"), silent, domain.LifecycleStopped) != time.Time{}
	})

	// The forged pool: never drained while the job ran (a drain after
	// its own finished is the ordinary scale-down of an idle worker).
	if at := lifecycleAt(readLifecycle(t, js, "forged"), forged, domain.LifecycleDraining); !at.IsZero() && at.Before(own.at) {
		t.Errorf("worker %s (reporting its job every second) was drained at %s, %s before its job's own finished",
			forged, at.Format(time.StampMilli), own.at.Sub(at).Round(time.Millisecond))
	}
	m := scrape(t, d.url("/metrics"))
	if got := m.get("hodei_autoscaler_busy_workers_killed_total", "pool", "forged"); got != 0 {
		t.Errorf("busy_workers_killed_total{forged} = %v, want 0", got)
	}
	if got := m.get("hodei_autoscaler_events_dropped_total", "reason", "worker_pool_mismatch"); got != 1 {
		t.Errorf("events_dropped_total{worker_pool_mismatch} = %v, want 1", got)
	}

	// The control: drained and stopped before its job's end, and its job
	// never finished on it.
	life := readLifecycle(t, js, "silent")
	drained, stopped := lifecycleAt(life, silent, domain.LifecycleDraining), lifecycleAt(life, silent, domain.LifecycleStopped)
	end := started["silent"].at.Add(jobLen)
	if drained.IsZero() || !drained.Before(end) || !stopped.Before(end) {
		t.Errorf("control: the silent pool's worker %s drained at %v, stopped at %v; want both before its job's end %v: "+
			"without heartbeats the forged finished should have got it stopped mid-job, so the case does not test them",
			silent, drained, stopped, end)
	}
	if e := finishedBy(readJobEvents(t, js, "silent"), "long", silent); !e.at.IsZero() {
		t.Errorf("control: the silent worker %s finished its job at %v although it was stopped at %v", silent, e.at, stopped)
	}
	t.Logf("forged pool: job ran %s past the forged finished (stop_grace_period 2s) on worker %s; control: worker %s stopped %s after the forged finished, %s before its job's end",
		own.at.Sub(forgedAt).Round(100*time.Millisecond), forged, silent, stopped.Sub(forgedAt).Round(100*time.Millisecond), end.Sub(stopped).Round(100*time.Millisecond))
}

// finishedBy is job's finished published by worker, if any.
func finishedBy(evs []jobEvent, job, worker string) jobEvent {
	for _, e := range evs {
		if e.kind == "finished" && e.data.JobID == job && e.data.WorkerID == worker {
			return e
		}
	}
	return jobEvent{}
}

// lifecycleAt is when worker first entered state (zero if it did not).
func lifecycleAt(evs []lifecycleEvent, worker string, state domain.Lifecycle) time.Time {
	for _, e := range evs {
		if e.worker == worker && e.state == string(state) {
			return e.at
		}
	}
	return time.Time{}
}
