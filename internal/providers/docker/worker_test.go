package docker

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// TestCreateLatency measures create-to-running for one worker and for ten
// created in parallel (logged; the bounds are only sanity checks).
func TestCreateLatency(t *testing.T) {
	p, _ := newProvider(t, nil)
	ctx := ctxT(t, 2*time.Minute)

	start := time.Now()
	w, err := p.Create(ctx, providers.WorkerSpec{ID: domain.NewWorkerID(), Pool: testPool})
	if err != nil || w.Phase != domain.PhaseReady {
		t.Fatalf("Create: %+v %v", w, err)
	}
	t.Logf("one worker: create → running in %s", time.Since(start).Round(time.Millisecond))

	const n = 10
	durs := make([]time.Duration, n)
	var wg sync.WaitGroup
	start = time.Now()
	for i := range n {
		wg.Go(func() {
			s := time.Now()
			w, err := p.Create(ctx, providers.WorkerSpec{ID: domain.NewWorkerID(), Pool: testPool})
			if err != nil || w.Phase != domain.PhaseReady {
				t.Errorf("Create #%d: %+v %v", i, w, err)
			}
			durs[i] = time.Since(s)
		})
	}
	wg.Wait()
	total := time.Since(start)
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	t.Logf("%d workers in parallel: all running in %s (each: min %s, median %s, max %s)",
		n, total.Round(time.Millisecond), durs[0].Round(time.Millisecond), durs[n/2].Round(time.Millisecond), durs[n-1].Round(time.Millisecond))
	ws, err := p.List(ctx)
	if err != nil || len(ws) != n+1 {
		t.Fatalf("List: %d workers, %v; want %d", len(ws), err, n+1)
	}
	if total > time.Minute {
		t.Errorf("%d parallel creates took %s", n, total)
	}

	start = time.Now()
	for _, w := range ws {
		wg.Go(func() {
			if err := p.Stop(ctx, w.ID, 10*time.Second); err != nil {
				t.Errorf("Stop %s: %v", w.ID, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d workers stopped in parallel in %s", len(ws), time.Since(start).Round(time.Millisecond))
}

// TestWorkerImageRunsJobs runs the example worker image through the
// provider against an in-process NATS server: the worker takes queued jobs,
// publishes their events with its HODEI_WORKER_ID, and on Stop (SIGTERM)
// finishes its running job before it exits, well within the grace period.
func TestWorkerImageRunsJobs(t *testing.T) {
	buildStart := time.Now()
	img := dockertest.WorkerImage(t)
	t.Logf("worker image ready in %s (go build + image build, once per process)", time.Since(buildStart).Round(time.Millisecond))
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := ctxT(t, 2*time.Minute)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HODEI_JOBS", Subjects: []string{"hodei.jobs.>"}}); err != nil {
		t.Fatal(err)
	}
	evs := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("hodei.jobs.p1.*", evs); err != nil {
		t.Fatal(err)
	}

	p, _ := newProvider(t, func(c *Config) {
		c.Docker.Image = img
		c.Docker.NetworkMode = "host" // the bus listens on the host's loopback
		c.Docker.ReadOnlyRootfs = true
		c.Env = map[string]string{"HODEI_NATS_URL": ns.ClientURL()}
		c.Slots = 2
	})
	id := domain.NewWorkerID()
	start := time.Now()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool}); err != nil {
		t.Fatal(err)
	}
	t.Logf("worker container running after %s", time.Since(start).Round(time.Millisecond))

	queue := func(jobID, dur string) {
		data, _ := json.Marshal(domain.JobData{JobID: jobID, Pool: "p1", Labels: map[string]string{"duration": dur}})
		ev, _ := json.Marshal(domain.CloudEvent{SpecVersion: "1.0", ID: jobID + "-q", Source: "test", Type: domain.TypeJobQueued,
			Time: time.Now().UTC(), DataContentType: "application/json", Data: data})
		if _, err := js.Publish(ctx, "hodei.jobs.p1.queued", ev); err != nil {
			t.Fatal(err)
		}
	}
	// await returns the next started/finished event of jobID (skipping
	// the queued events the subscription also sees).
	await := func(kind, jobID string, timeout time.Duration) domain.JobData {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case m := <-evs:
				var ev domain.CloudEvent
				var d domain.JobData
				if json.Unmarshal(m.Data, &ev) != nil || json.Unmarshal(ev.Data, &d) != nil {
					t.Fatalf("bad event %s", m.Data)
				}
				if ev.Type == domain.TypeJobQueued {
					continue
				}
				if m.Header.Get(jetstream.MsgIDHeader) != ev.ID {
					t.Errorf("event %s: Nats-Msg-Id %q", ev.ID, m.Header.Get(jetstream.MsgIDHeader))
				}
				if ev.Type != "hodei.job."+kind || d.JobID != jobID {
					t.Fatalf("got %s for job %s, want %s for %s", ev.Type, d.JobID, kind, jobID)
				}
				if d.WorkerID != string(id) || d.Pool != "p1" {
					t.Errorf("event data %+v, want worker %s pool p1", d, id)
				}
				return d
			case <-deadline:
				t.Fatalf("no %s event for %s within %s", kind, jobID, timeout)
			}
		}
	}

	queue("quick", "100ms")
	await("started", "quick", 30*time.Second)
	if d := await("finished", "quick", 10*time.Second); d.Outcome != "succeeded" {
		t.Errorf("quick finished %q", d.Outcome)
	}

	queue("long", "3s")
	await("started", "long", 10*time.Second)
	stopped := make(chan time.Duration, 1)
	go func() {
		s := time.Now()
		if err := p.Stop(context.WithoutCancel(ctx), id, 20*time.Second); err != nil {
			t.Errorf("Stop: %v", err)
		}
		stopped <- time.Since(s)
	}()
	if d := await("finished", "long", 15*time.Second); d.Outcome != "succeeded" {
		t.Errorf("long finished %q", d.Outcome)
	}
	select {
	case took := <-stopped:
		t.Logf("Stop with a running 3s job took %s (grace 20s)", took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("Stop took %s: the worker did not exit after its job", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Stop did not return")
	}
	if w, ok, desc := listOne(t, p, id); ok {
		t.Errorf("worker still listed after Stop: %v %s", w, desc)
	}
}
