package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// The three-job trace every hand-computed test uses, with a fixed 10 s
// boot:
//
//	A queued at 100 s, runs 50 s
//	B queued at 120 s, runs 10 s
//	C queued at 155 s, runs 20 s
func threeJobs() *Trace {
	return &Trace{Start: DefaultStart, Jobs: []Job{
		{ID: "A", Pool: "p", Queued: 100 * time.Second, Duration: 50 * time.Second},
		{ID: "B", Pool: "p", Queued: 120 * time.Second, Duration: 10 * time.Second},
		{ID: "C", Pool: "p", Queued: 155 * time.Second, Duration: 20 * time.Second},
	}}
}

var tenSeconds = Provisioning{Median: 10 * time.Second}

func poolConfig(mod func(*policy.Settings)) engine.PoolConfig {
	c := engine.PoolConfig{Name: "p", Provider: "sim", Settings: policy.Settings{
		MaxWorkers: 10, JobsPerWorker: 1, IdleTimeout: 30 * time.Second,
		ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: 10}, RetryInitial: time.Second, RetryMax: time.Minute}
	if mod != nil {
		mod(&c.Settings)
	}
	return c
}

type want struct {
	p50, p95, max       float64
	workerSeconds, busy float64
	started, stopped    int
	peak                int
}

func check(t *testing.T, r Result, w want) {
	t.Helper()
	got := want{r.WaitP50, r.WaitP95, r.WaitMax, r.WorkerSeconds, r.BusySeconds, r.Started, r.Stopped, r.Peak}
	if got != w {
		t.Errorf("%s:\n got %+v\nwant %+v", r.Run, got, w)
	}
	if r.Jobs != 3 || r.Unfinished != 0 {
		t.Errorf("%s: jobs %d unfinished %d", r.Run, r.Jobs, r.Unfinished)
	}
	if math.Abs(r.Utilization-r.BusySeconds/r.WorkerSeconds) > 1e-9 {
		t.Errorf("%s: utilization %v", r.Run, r.Utilization)
	}
}

// Worked by hand in docs/simulator.md ("A worked example").
func TestThreeJobsHandComputed(t *testing.T) {
	tr := threeJobs()
	t.Run("oracle", func(t *testing.T) {
		// A boots a worker at 90 (busy to 150); B boots a second at 110
		// (busy 120-130); C at 155: the second has idled 25 s >= 10 s, so
		// it stopped at 130; the first has idled 5 s: C takes it (busy to
		// 175). Cost 10+50 + 10+10 + 5+20 = 105; lives [90,175] and
		// [110,130]: peak 2.
		check(t, Oracle(tr.Jobs, 10*time.Second, 1), want{0, 0, 0, 105, 80, 2, 2, 2})
	})
	t.Run("engine with the pool's policy", func(t *testing.T) {
		// A: create W1 at 100, ready 110, runs to 160 (waits 10).
		// B: create W2 at 120, ready 130, runs to 140 (waits 10).
		// C at 155: W2 idle since 140 takes it (waits 0), runs to 175.
		// idle_timeout 30 s: W1 (idle at 160) stops at 190, W2 (idle at
		// 175) at 205. Cost 90 + 85 = 175.
		r := RunEngine(tr, tr.Jobs, poolConfig(nil), tenSeconds, 1, false)
		check(t, r, want{10, 10, 10, 175, 80, 2, 2, 2})
	})
	t.Run("ARC", func(t *testing.T) {
		// Ephemeral runners: R1 100-160 (A waits 10), R2 120-140 (B
		// waits 10), R3 created at 155, ready 165, runs C to 185 (waits
		// 10). Cost 60 + 20 + 30 = 110.
		r := RunAnchor(ARC(0), tr, tr.Jobs, poolConfig(nil), tenSeconds, 1)
		check(t, r, want{10, 10, 10, 110, 80, 3, 3, 2})
	})
	t.Run("KEDA ScaledJob", func(t *testing.T) {
		// Polls at 0, 30, 60, ...: at 120 the queue is A and B: two jobs
		// created, ready at 130 (A waits 30, B 10). At 150 the queue is A
		// running and one job exists: nothing. C waits until A's job ends
		// at 180: the poll then creates one, ready 190 (C waits 35).
		// Cost (140-120) + (180-120) + (210-180) = 110.
		r := RunAnchor(KEDA(30*time.Second), tr, tr.Jobs, poolConfig(nil), tenSeconds, 1)
		check(t, r, want{30, 35, 35, 110, 80, 3, 3, 2})
	})
	t.Run("GitLab runner", func(t *testing.T) {
		// idle_count 0, idle_time 30 s: the same as the engine here.
		r := RunAnchor(GitLab(0, 30*time.Second), tr, tr.Jobs, poolConfig(nil), tenSeconds, 1)
		check(t, r, want{10, 10, 10, 175, 80, 2, 2, 2})
	})
	t.Run("HPA", func(t *testing.T) {
		// minReplicas 1: H1 from 0 (ready 10) takes A at 100 (waits 0).
		// The 120 s sync sees 2 jobs on 1 pod: H2, ready 130, runs B
		// (waits 10). C at 155 takes H1 (freed at 150; waits 0). The
		// recommendation of 2 (last made at 135) leaves the 300 s window
		// at 435: H2 stops. H1 stays (minReplicas) until the run ends an
		// hour after the last job (175 + 3600). Cost 3775 + 315.
		r := RunAnchor(HPA(1, 300*time.Second), tr, tr.Jobs, poolConfig(nil), tenSeconds, 1)
		check(t, r, want{0, 10, 10, 4090, 80, 2, 1, 2})
	})
}

func TestEngineRunHonoursThePolicyKnobs(t *testing.T) {
	tr := threeJobs()
	t.Run("a warm worker serves A at once", func(t *testing.T) {
		// idle_workers 1: W0 boots at 0 and waits; A takes it at 100 and
		// a replacement boots (100-110)...
		r := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.IdleWorkers = 1 }), tenSeconds, 1, false)
		if r.WaitMax != 0 {
			t.Errorf("with a warm worker and 10 s boots no job should wait: %+v", r)
		}
	})
	t.Run("ephemeral workers", func(t *testing.T) {
		r := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.MaxJobsPerWorker = 1 }), tenSeconds, 1, false)
		// C cannot reuse B's worker: three workers, three stops.
		if r.Started != 3 || r.Stopped != 3 || r.WaitP50 != 10 || r.WaitMax != 10 {
			t.Errorf("ephemeral: %+v", r)
		}
	})
	t.Run("max_workers 1 serialises", func(t *testing.T) {
		r := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.MaxWorkers = 1 }), tenSeconds, 1, false)
		// A 110-160; B waits for it: 160-170 (waits 40); C 170-190 (waits 15).
		if r.WaitMax != 40 || r.Started != 1 || r.Peak != 1 {
			t.Errorf("one worker: %+v", r)
		}
	})
}

func TestOracleSlotsAndEdges(t *testing.T) {
	if r := Oracle(nil, time.Second, 1); r.WorkerSeconds != 0 || r.Jobs != 0 {
		t.Errorf("empty: %+v", r)
	}
	tr := threeJobs()
	one := Oracle(tr.Jobs, 10*time.Second, 1)
	two := Oracle(tr.Jobs, 10*time.Second, 2)
	if two.WorkerSeconds != one.WorkerSeconds/2 || two.Peak != 1 {
		t.Errorf("two slots per worker: %+v (one slot: %+v)", two, one)
	}
	// Back-to-back jobs: one worker throughout.
	seq := []Job{{Queued: 0, Duration: 10 * time.Second}, {Queued: 10 * time.Second, Duration: 10 * time.Second}, {Queued: 25 * time.Second, Duration: 5 * time.Second}}
	r := Oracle(seq, 10*time.Second, 1)
	if r.Started != 1 || r.WorkerSeconds != 10+10+10+5+5 || r.Peak != 1 {
		t.Errorf("back to back: %+v", r)
	}
}

func TestSimulateReport(t *testing.T) {
	tr := threeJobs()
	tr.Jobs = append(tr.Jobs, Job{ID: "X", Pool: "other", Queued: time.Second, Duration: time.Second})
	rep, err := Simulate(Options{Trace: tr, Name: "three jobs", Pools: []engine.PoolConfig{poolConfig(nil)},
		Provisioning: tenSeconds, Compare: true, Timeline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pools) != 1 || len(rep.Pools[0].Runs) != 2+len(Anchors) {
		t.Fatalf("report %+v", rep)
	}
	runs := rep.Pools[0].Runs
	if runs[0].Run != "config" || runs[1].Run != "oracle" || runs[1].VsOracle != 1 || runs[0].VsOracle != 175.0/105 {
		t.Errorf("runs %+v", runs[:2])
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], `pool "other"`) {
		t.Errorf("notes %v", rep.Notes)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"config", "oracle"}, Anchors...) {
		if !strings.Contains(md.String(), "| "+name+" |") {
			t.Errorf("markdown lacks row %q:\n%s", name, md.String())
		}
	}
	tl := runs[0].Timeline()
	if tl == nil || len(tl.Pending) == 0 {
		t.Fatalf("no timeline")
	}
	peakPending, peakWorkers := 0, 0
	for i := range tl.Pending {
		peakPending = max(peakPending, tl.Pending[i])
		peakWorkers = max(peakWorkers, tl.Workers[i])
	}
	if peakPending != 1 || peakWorkers != 2 {
		t.Errorf("timeline peaks: pending %d workers %d, want 1 and 2", peakPending, peakWorkers)
	}
	if _, err := Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{poolConfig(nil)}}); err == nil {
		t.Errorf("no provisioning time: no error")
	}
}

// A queued job with no worker ever (max_workers 0 is invalid in config,
// but a stuck pool must still end the run and say so).
func TestUnfinishedJobsEndTheRun(t *testing.T) {
	tr := threeJobs()
	r := RunEngine(tr, tr.Jobs, poolConfig(func(s *policy.Settings) { s.MaxWorkers = 0 }), tenSeconds, 1, false)
	if r.Unfinished != 3 || r.WorkerSeconds != 0 {
		t.Errorf("%+v", r)
	}
}

func TestPercentiles(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // 100..1, unsorted
	}
	p50, p95, p99, mx := percentiles(v)
	if p50 != 50 || p95 != 95 || p99 != 99 || mx != 100 {
		t.Errorf("percentiles %v %v %v %v", p50, p95, p99, mx)
	}
}
