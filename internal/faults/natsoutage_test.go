package faults

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// scheduler publishes job events the way a scheduler would: in order,
// each retried with the same event id (Nats-Msg-Id) until JetStream
// acknowledges it, so an outage delays events but loses none and
// duplicates none.
type scheduler struct {
	js       jetstream.JetStream
	subjects events.Subjects
	retries  int // publish attempts that failed and were retried
}

func (s *scheduler) publish(ctx context.Context, pool domain.PoolName, kind domain.JobKind, data domain.JobData) error {
	id := uuid.NewString()
	payload, err := events.Encode(id, "faults-scheduler", kind.Type(), time.Now(), data)
	if err != nil {
		return err
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.js.Publish(pctx, s.subjects.Job(pool, kind), payload, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publishing %s of %s: %w", kind, data.JobID, err)
		}
		s.retries++
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// Fault 2: the NATS server (a separate process) is stopped for 10 s while
// the scheduler queues, starts and finishes jobs, then restarted on the
// same store and port. The daemon reconnects by itself, /readyz is false
// during the outage and true after, and once the buffered events are in,
// the ledger equals the stream: no event lost, none applied twice, and
// what the daemon published meanwhile reaches the bus.
func TestNATSServerOutage(t *testing.T) {
	n := startNATS(t)
	cfg := baseConfig(t, "faults-nats")
	cfg.NATS.URL = n.URL()
	cfg.NATS.ReconnectWait = config.Duration(2 * time.Second) // the default
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "unused"
	p.MaxWorkers = 50
	p.IdleTimeout = config.Fixed(time.Hour)
	cfg.Pools = []config.Pool{p}
	fake := fakeprovider.New("p1")
	d := startInProc(t, cfg, app.Options{Providers: func(string, config.Pool, zerolog.Logger) (providers.Provider, error) {
		return fake, nil
	}})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := connectJS(t, n.URL())
	sched := &scheduler{js: js, subjects: events.Subjects{Prefix: "hodei"}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	queued := func(i int) error {
		return sched.publish(ctx, "p1", domain.JobQueued, domain.JobData{JobID: fmt.Sprint("job-", i), Pool: "p1"})
	}
	started := func(i int, w domain.WorkerID) error {
		return sched.publish(ctx, "p1", domain.JobStarted, domain.JobData{JobID: fmt.Sprint("job-", i), Pool: "p1", WorkerID: string(w)})
	}
	finished := func(i int) error {
		return sched.publish(ctx, "p1", domain.JobFinished, domain.JobData{JobID: fmt.Sprint("job-", i), Pool: "p1", Outcome: "succeeded"})
	}

	// Before the outage: 10 queued, 5 started, 2 finished.
	for i := range 10 {
		must(queued(i))
	}
	bustest.Eventually(t, 10*time.Second, "10 workers", func() bool { return len(fake.Workers()) >= 10 })
	ws := fake.Workers()
	for i := range 5 {
		must(started(i, ws[i]))
	}
	must(finished(0))
	must(finished(1))
	bustest.Eventually(t, 10*time.Second, "8 pending-or-running before the outage", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["p1"].Pending == 5 && st["p1"].Running == 3
	})

	// Watch /readyz through the outage.
	type sample struct {
		at    time.Time
		ready bool
	}
	var mu sync.Mutex
	var readiness []sample
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			code, _ := httpGet(d.url("/readyz"))
			mu.Lock()
			readiness = append(readiness, sample{time.Now(), code == http.StatusOK})
			mu.Unlock()
			select {
			case <-watchCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	// The scheduler keeps working through the outage: 10 more queued,
	// 2 started, 3 finished (one of them cancelled while pending).
	during := make(chan error, 1)
	progress := make(chan int, 64)
	go func() {
		steps := []func() error{
			func() error { return queued(10) }, func() error { return finished(2) }, func() error { return queued(11) },
			func() error { return started(5, ws[5]) }, func() error { return queued(12) }, func() error { return finished(3) },
			func() error { return queued(13) }, func() error { return started(6, ws[6]) }, func() error { return queued(14) },
			func() error { return finished(9) }, // cancelled while pending
			func() error { return queued(15) }, func() error { return queued(16) }, func() error { return queued(17) },
			func() error { return queued(18) }, func() error { return queued(19) },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				during <- err
				return
			}
			progress <- i
			time.Sleep(150 * time.Millisecond) // a scheduler's pace, not a wait for state
		}
		during <- nil
	}()
	<-progress
	<-progress // two events in, then the server goes away
	stoppedAt := time.Now()
	n.stop()
	bustest.Eventually(t, 10*time.Second, "/readyz false during the outage", func() bool {
		code, _ := httpGet(d.url("/readyz"))
		return code == http.StatusServiceUnavailable
	})
	notReadyAfter := time.Since(stoppedAt)
	bustest.Eventually(t, 20*time.Second, "a 10 s outage", func() bool { return time.Since(stoppedAt) >= 10*time.Second })
	// Meanwhile the daemon still answers.
	if code, body := httpGet(d.url("/readyz")); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d %s", code, body)
	} else {
		t.Logf("/readyz during the outage: %s", oneLine(body))
	}
	n.start()
	restartedAt := time.Now()
	bustest.Eventually(t, 60*time.Second, "daemon ready after the restart", d.app.Ready)
	readyAgain := time.Since(restartedAt)
	if err := <-during; err != nil {
		t.Fatal(err)
	}
	// After the outage: the scheduler carries on.
	must(started(7, ws[7]))
	must(finished(4))
	must(finished(10))
	bustest.Eventually(t, 5*time.Second, "the watcher seeing /readyz true", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(readiness) > 0 && readiness[len(readiness)-1].ready
	})
	stopWatch()
	<-watched

	mu.Lock()
	var falseFor time.Duration
	var falseSince time.Time
	for _, s := range readiness {
		switch {
		case !s.ready && falseSince.IsZero():
			falseSince = s.at
		case s.ready && !falseSince.IsZero():
			falseFor += s.at.Sub(falseSince)
			falseSince = time.Time{}
		}
	}
	mu.Unlock()
	t.Logf("NATS down %v: /readyz false %v after the stop, ready again %v after the restart, false for %v in all; the scheduler retried %d publishes",
		restartedAt.Sub(stoppedAt).Round(100*time.Millisecond), notReadyAfter.Round(10*time.Millisecond), readyAgain.Round(10*time.Millisecond),
		falseFor.Round(100*time.Millisecond), sched.retries)
	if readyAgain > 35*time.Second {
		t.Errorf("ready again %v after the server came back: reconnect_wait grows to at most 30s", readyAgain)
	}

	// The stream holds every event exactly once, and the ledger equals it:
	// 20 queued; started 0-7; finished 0-4, 9 and 10 (never started).
	want := truth{Queued: 20, Started: 8, Finished: 7, Running: 3, Pending: 10}
	bustest.Eventually(t, 20*time.Second, "ledger equal to the stream", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return jobTruth(t, js, "p1") == want && st["p1"].Pending == want.Pending && st["p1"].Running == want.Running
	})
	if got := len(readJobEvents(t, js, "p1")); got != 20+8+7 {
		t.Errorf("%d events in the stream, want %d: the scheduler's retries were not deduplicated", got, 20+8+7)
	}
	m := scrape(t, d.url("/metrics"))
	for typ, want := range map[string]float64{domain.TypeJobQueued: 20, domain.TypeJobStarted: 8, domain.TypeJobFinished: 7} {
		if got := m.get("hodei_autoscaler_events_total", "type", typ, "result", "applied"); got != want {
			t.Errorf("events_total{type=%s,result=applied} = %v, want %v", typ, got, want)
		}
		if got := m.get("hodei_autoscaler_events_total", "type", typ, "result", "duplicate"); got != 0 {
			t.Errorf("events_total{type=%s,result=duplicate} = %v: an event was delivered twice", typ, got)
		}
	}
	if got := m.get("hodei_autoscaler_published_events_total", "result", "dropped"); got != 0 {
		t.Errorf("%v outgoing events dropped", got)
	}
	// What the daemon decided during the outage reached the bus after it.
	out := bustest.Collect(t, js)
	bustest.Eventually(t, 20*time.Second, "the latest decision on the bus", func() bool {
		ds := out.OfType(domain.TypeDecision)
		return len(ds) > 0 && ds[len(ds)-1].Decide.Desired == want.Pending+want.Running
	})
	bustest.Eventually(t, 5*time.Second, "bus_connected back to 1", func() bool {
		return scrape(t, d.url("/metrics")).get("hodei_autoscaler_bus_connected") == 1
	})
}
