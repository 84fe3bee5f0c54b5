package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

const testPool = "p1"

// startNATS runs an in-process NATS server with JetStream for one test.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("creating nats server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready after 10s")
	}
	return ns.ClientURL()
}

// bus is the test's side of the bus: it queues jobs and watches events.
type bus struct {
	t      *testing.T
	nc     *nats.Conn
	js     jetstream.JetStream
	events chan *nats.Msg
}

func newBus(t *testing.T, url string) *bus {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connecting to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := &bus{t: t, nc: nc, js: js, events: make(chan *nats.Msg, 100)}
	for _, kind := range []string{"started", "finished"} {
		if _, err := nc.ChanSubscribe("hodei.jobs."+testPool+"."+kind, b.events); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bus) createStream() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: Stream, Subjects: []string{"hodei.jobs.>"}}); err != nil {
		b.t.Fatalf("creating stream: %v", err)
	}
}

// publishRaw puts any payload on the pool's queued subject.
func (b *bus) publishRaw(data []byte) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.Publish(ctx, "hodei.jobs."+testPool+".queued", data); err != nil {
		b.t.Fatalf("publishing: %v", err)
	}
}

// queue publishes a job.queued event.
func (b *bus) queue(jobID string, labels map[string]string) {
	b.t.Helper()
	data, _ := json.Marshal(domain.JobData{JobID: jobID, Pool: testPool, Labels: labels})
	ev, _ := json.Marshal(domain.CloudEvent{
		SpecVersion: "1.0", ID: newUUID(), Source: "test", Type: domain.TypeJobQueued,
		Time: time.Now().UTC(), DataContentType: "application/json", Data: data,
	})
	b.publishRaw(ev)
}

// observed is one job event seen on the bus.
type observed struct {
	kind  string
	ev    domain.CloudEvent
	data  domain.JobData
	msgID string
	at    time.Time
}

// next waits for the next started/finished event.
func (b *bus) next(timeout time.Duration) observed {
	b.t.Helper()
	select {
	case m := <-b.events:
		var o observed
		o.at = time.Now()
		o.kind = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		o.msgID = m.Header.Get(jetstream.MsgIDHeader)
		if err := json.Unmarshal(m.Data, &o.ev); err != nil {
			b.t.Fatalf("event on %s is not a CloudEvent: %v: %s", m.Subject, err, m.Data)
		}
		if err := json.Unmarshal(o.ev.Data, &o.data); err != nil {
			b.t.Fatalf("event data on %s: %v", m.Subject, err)
		}
		return o
	case <-time.After(timeout):
		b.t.Fatalf("no job event within %s", timeout)
		return observed{}
	}
}

// consumerSettled waits until the pool's consumer has nothing pending and
// nothing unacknowledged.
func (b *bus) consumerSettled() {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var info *jetstream.ConsumerInfo
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cons, err := b.js.Consumer(ctx, Stream, "hodei-workers-"+testPool)
		if err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("consumer not settled: %+v", info)
}

// startWorker runs the worker until the returned stop function is called;
// stop cancels its context and returns run's error once it has returned.
func startWorker(t *testing.T, url string, slots int, tweak ...func(*settings)) (workerID string, stop func() error) {
	t.Helper()
	s := settings{
		WorkerID: newUUID(), Pool: testPool, Slots: slots, NATSURL: url, Prefix: "hodei",
		FetchWait: 200 * time.Millisecond, RetryDelay: 50 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := log.New(testWriter{t}, "worker: ", log.Lmicroseconds)
	go func() { done <- run(ctx, s, logger) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("worker did not return within 15s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return s.WorkerID, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func checkEvent(t *testing.T, o observed, kind, jobID, workerID string, outcome domain.Outcome) {
	t.Helper()
	want := map[string]string{"started": domain.TypeJobStarted, "finished": domain.TypeJobFinished}[kind]
	switch {
	case o.kind != kind:
		t.Errorf("job %s: got a %s event, want %s", jobID, o.kind, kind)
	case o.ev.SpecVersion != "1.0", o.ev.Type != want, o.ev.DataContentType != "application/json":
		t.Errorf("job %s %s: envelope %+v", jobID, kind, o.ev)
	case o.ev.ID == "" || o.msgID != o.ev.ID:
		t.Errorf("job %s %s: event id %q, Nats-Msg-Id %q", jobID, kind, o.ev.ID, o.msgID)
	case o.ev.Source == "" || o.ev.Time.IsZero():
		t.Errorf("job %s %s: source %q time %v", jobID, kind, o.ev.Source, o.ev.Time)
	case o.data.JobID != jobID || o.data.Pool != testPool || o.data.WorkerID != workerID:
		t.Errorf("job %s %s: data %+v, want job %s pool %s worker %s", jobID, kind, o.data, jobID, testPool, workerID)
	case o.data.Outcome != string(outcome):
		t.Errorf("job %s %s: outcome %q, want %q", jobID, kind, o.data.Outcome, outcome)
	}
}

// TestRunProcessesJobs queues three jobs for a two-slot worker and checks
// each job's started and finished events, the slot limit and the acks.
func TestRunProcessesJobs(t *testing.T) {
	url := startNATS(t)
	b := newBus(t, url)
	b.createStream()
	workerID, stop := startWorker(t, url, 2)

	jobs := map[string]time.Duration{"job-a": 600 * time.Millisecond, "job-b": 600 * time.Millisecond, "job-c": 100 * time.Millisecond}
	for _, id := range []string{"job-a", "job-b", "job-c"} {
		b.queue(id, map[string]string{"duration": jobs[id].String()})
	}

	started := map[string]observed{}
	running, maxRunning := 0, 0
	for range 2 * len(jobs) {
		o := b.next(10 * time.Second)
		id := o.data.JobID
		if _, ok := jobs[id]; !ok {
			t.Fatalf("event for unknown job %q", id)
		}
		switch o.kind {
		case "started":
			checkEvent(t, o, "started", id, workerID, "")
			if _, dup := started[id]; dup {
				t.Errorf("job %s started twice", id)
			}
			started[id] = o
			running++
			maxRunning = max(maxRunning, running)
		case "finished":
			checkEvent(t, o, "finished", id, workerID, domain.OutcomeSucceeded)
			s, ok := started[id]
			if !ok {
				t.Fatalf("job %s finished before it started", id)
			}
			if ran := o.at.Sub(s.at); ran < jobs[id]-50*time.Millisecond {
				t.Errorf("job %s ran %s, want about %s", id, ran, jobs[id])
			}
			running--
		}
	}
	if maxRunning != 2 {
		t.Errorf("at most %d jobs ran at once, want 2 (the slots)", maxRunning)
	}
	b.consumerSettled()
	if err := stop(); err != nil {
		t.Fatalf("run returned %v", err)
	}
}

// TestRunWaitsForStreamAndFinishesJobOnCancel starts the worker before the
// stream exists, then cancels it (as SIGTERM does) while a job runs: the job
// finishes and is acked, no new job is taken, and run returns nil.
func TestRunWaitsForStreamAndFinishesJobOnCancel(t *testing.T) {
	url := startNATS(t)
	b := newBus(t, url)
	workerID, stop := startWorker(t, url, 1)

	time.Sleep(200 * time.Millisecond) // let the worker find no stream, at least once
	b.createStream()
	b.queue("long", map[string]string{"duration": "1500ms"})

	o := b.next(10 * time.Second)
	checkEvent(t, o, "started", "long", workerID, "")

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	b.queue("after-cancel", nil)

	o = b.next(5 * time.Second)
	checkEvent(t, o, "finished", "long", workerID, domain.OutcomeSucceeded)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after its last job finished")
	}
	select {
	case m := <-b.events:
		t.Fatalf("unexpected event after cancel on %s: %s", m.Subject, m.Data)
	default:
	}

	// The job queued after the cancel is still there for another worker.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := b.js.Consumer(ctx, Stream, "hodei-workers-"+testPool)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("the job queued after cancel is not available: %v", err)
	}
	j, err := parseJob(msg.Data(), testPool)
	if err != nil || j.ID != "after-cancel" {
		t.Fatalf("next job = %+v, %v; want after-cancel", j, err)
	}
}

// TestRunSurvivesMalformedMessages feeds garbage and bad jobs before a good
// one: the garbage is terminated, a job with a bad duration is reported
// failed, the good job runs, and the worker keeps going.
func TestRunSurvivesMalformedMessages(t *testing.T) {
	url := startNATS(t)
	b := newBus(t, url)
	b.createStream()
	workerID, stop := startWorker(t, url, 1)

	b.publishRaw([]byte("not json"))
	b.publishRaw([]byte(`{"specversion":"1.0","type":"hodei.job.queued","data":{"pool":"p1"}}`))
	b.publishRaw([]byte(`{"specversion":"1.0","type":"hodei.job.queued","data":{"job_id":"x","pool":"other"}}`))
	b.publishRaw([]byte(`{"specversion":"1.0","type":"hodei.job.finished","data":{"job_id":"y"}}`))
	b.queue("bad-duration", map[string]string{"duration": "soon"})
	b.queue("good", map[string]string{"duration": "50ms"})

	o := b.next(10 * time.Second)
	checkEvent(t, o, "finished", "bad-duration", workerID, domain.OutcomeFailed)
	o = b.next(10 * time.Second)
	checkEvent(t, o, "started", "good", workerID, "")
	o = b.next(10 * time.Second)
	checkEvent(t, o, "finished", "good", workerID, domain.OutcomeSucceeded)
	b.consumerSettled()
	if err := stop(); err != nil {
		t.Fatalf("run returned %v", err)
	}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    settings
		wantErr string
	}{
		{
			name: "defaults",
			env:  map[string]string{"HODEI_WORKER_ID": "w1", "HODEI_WORKER_POOL": "p1"},
			want: settings{WorkerID: "w1", Pool: "p1", Slots: 1, NATSURL: "nats://127.0.0.1:4222", Prefix: "hodei"},
		},
		{
			name: "everything set",
			env: map[string]string{"HODEI_WORKER_ID": "w1", "HODEI_WORKER_POOL": "p1", "HODEI_WORKER_SLOTS": "4",
				"HODEI_NATS_URL": "nats://bus:4222", "HODEI_SUBJECT_PREFIX": "acme"},
			want: settings{WorkerID: "w1", Pool: "p1", Slots: 4, NATSURL: "nats://bus:4222", Prefix: "acme"},
		},
		{name: "no pool", env: map[string]string{"HODEI_WORKER_ID": "w1"}, wantErr: "HODEI_WORKER_POOL"},
		{name: "bad pool", env: map[string]string{"HODEI_WORKER_POOL": "a.b"}, wantErr: "HODEI_WORKER_POOL"},
		{name: "bad slots", env: map[string]string{"HODEI_WORKER_POOL": "p1", "HODEI_WORKER_SLOTS": "0"}, wantErr: "HODEI_WORKER_SLOTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settingsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	s, err := settingsFromEnv(func(k string) string { return map[string]string{"HODEI_WORKER_POOL": "p"}[k] })
	if err != nil || s.WorkerID == "" {
		t.Fatalf("a worker without HODEI_WORKER_ID gets a random id: %+v %v", s, err)
	}
}

func TestParseJob(t *testing.T) {
	ce := func(data string) []byte {
		return []byte(`{"specversion":"1.0","id":"1","source":"s","type":"hodei.job.queued","data":` + data + `}`)
	}
	tests := []struct {
		name    string
		in      []byte
		want    job
		wantErr string
	}{
		{name: "default duration", in: ce(`{"job_id":"j1","pool":"p1"}`), want: job{ID: "j1", Duration: time.Second}},
		{name: "duration label", in: ce(`{"job_id":"j1","labels":{"duration":"250ms"}}`), want: job{ID: "j1", Duration: 250 * time.Millisecond}},
		{name: "bad duration", in: ce(`{"job_id":"j1","labels":{"duration":"x"}}`), want: job{ID: "j1", Duration: time.Second, BadInput: `label duration="x" is not a Go duration`}},
		{name: "negative duration", in: ce(`{"job_id":"j1","labels":{"duration":"-1s"}}`), want: job{ID: "j1", Duration: time.Second, BadInput: `label duration="-1s" is negative`}},
		{name: "not json", in: []byte("{"), wantErr: "not a JSON CloudEvent"},
		{name: "no job id", in: ce(`{"pool":"p1"}`), wantErr: "no job_id"},
		{name: "other pool", in: ce(`{"job_id":"j1","pool":"p2"}`), wantErr: `names pool "p2"`},
		{name: "wrong type", in: []byte(`{"type":"hodei.job.started","data":{"job_id":"j"}}`), wantErr: "is not hodei.job.queued"},
		{name: "no data", in: []byte(`{"type":"hodei.job.queued"}`), wantErr: "no data"},
		// The daemon's rules (domain.ValidateJobID, domain.CheckJSONText):
		// a job it refuses is refused here, never run.
		{name: "job id over 256 bytes", in: ce(`{"job_id":"` + strings.Repeat("j", 257) + `"}`), wantErr: "missing_job_id"},
		{name: "invalid UTF-8 0xff", in: ce("{\"job_id\":\"bad-\xff\"}"), wantErr: "invalid_utf8"},
		{name: "invalid UTF-8 0xfe", in: ce("{\"job_id\":\"bad-\xfe\"}"), wantErr: "invalid_utf8"},
		{name: "lone surrogate", in: ce(`{"job_id":"bad-\udcff"}`), wantErr: "invalid_utf8"},
		{name: "control character", in: ce(`{"job_id":"bad-\u0001"}`), wantErr: "bad_job_id"},
		{name: "256 bytes runs", in: ce(`{"job_id":"` + strings.Repeat("j", 256) + `"}`), want: job{ID: strings.Repeat("j", 256), Duration: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJob(tt.in, "p1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestClaimKeepsRedeliveryFromRunningTwice: a job whose claim says it ran
// ("done", as after an ack lost in a crash of the bus) is acknowledged
// and not run again when it is delivered; a new job is claimed, run, and
// its claim marked done.
func TestClaimKeepsRedeliveryFromRunningTwice(t *testing.T) {
	url := startNATS(t)
	b := newBus(t, url)
	b.createStream()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ClaimsBucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, claimKey(testPool, "ran-before"), []byte("done:"+newUUID())); err != nil {
		t.Fatal(err)
	}
	workerID, stop := startWorker(t, url, 1)
	b.queue("ran-before", map[string]string{"duration": "10ms"})
	b.queue("fresh", map[string]string{"duration": "10ms"})
	for range 2 {
		o := b.next(10 * time.Second)
		if o.data.JobID != "fresh" {
			t.Fatalf("%s event for %q: a job whose claim is done ran again", o.kind, o.data.JobID)
		}
		checkEvent(t, o, o.kind, "fresh", workerID, map[string]domain.Outcome{"started": "", "finished": domain.OutcomeSucceeded}[o.kind])
	}
	b.consumerSettled() // ran-before was acknowledged, not left pending
	e, err := kv.Get(ctx, claimKey(testPool, "fresh"))
	if err != nil || string(e.Value()) != "done:"+workerID {
		t.Fatalf("claim of fresh: %v %v, want done:%s", e, err, workerID)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A claim is the worker's word that it runs the job: a claim whose
// worker died (no refresh, its heartbeat for the job) is taken over after
// twice AckWait so the job is not stranded; a claim its live worker keeps
// refreshing is never taken, and once it is done the job is acknowledged
// without running; a worker's own claim of a run that never began (a
// create answered after its timeout, a restart under the same id) is
// taken at once. Real NATS, the worker's own code.
func TestClaimStaleTakeover(t *testing.T) {
	const ackWait = 500 * time.Millisecond // stale after 1s
	fast := func(s *settings) { s.AckWait = ackWait }
	setup := func(t *testing.T) (*bus, jetstream.KeyValue) {
		t.Helper()
		b := newBus(t, startNATS(t))
		b.createStream()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ClaimsBucket, History: 1})
		if err != nil {
			t.Fatal(err)
		}
		return b, kv
	}
	claimAs := func(t *testing.T, kv jetstream.KeyValue, job, worker string) (uint64, time.Time) {
		t.Helper()
		rev, err := kv.Create(context.Background(), claimKey(testPool, job), []byte("run:"+worker))
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(context.Background(), claimKey(testPool, job))
		if err != nil {
			t.Fatal(err)
		}
		return rev, e.Created()
	}
	claimOf := func(t *testing.T, kv jetstream.KeyValue, job string) string {
		t.Helper()
		e, err := kv.Get(context.Background(), claimKey(testPool, job))
		if err != nil {
			t.Fatal(err)
		}
		return string(e.Value())
	}

	t.Run("dead worker's claim taken over after twice AckWait", func(t *testing.T) {
		b, kv := setup(t)
		_, claimed := claimAs(t, kv, "orphan", newUUID()) // its worker died mid-job
		id, stop := startWorker(t, b.nc.ConnectedUrl(), 1, fast)
		b.queue("orphan", map[string]string{"duration": "10ms"})
		o := b.next(20 * time.Second)
		checkEvent(t, o, "started", "orphan", id, "")
		if stale := claimed.Add(2 * ackWait); o.at.Before(stale) {
			t.Errorf("started %s after the dead worker's claim, before it was stale (%s)", o.at.Sub(claimed), 2*ackWait)
		}
		checkEvent(t, b.next(10*time.Second), "finished", "orphan", id, domain.OutcomeSucceeded)
		b.consumerSettled()
		if got := claimOf(t, kv, "orphan"); got != "done:"+id {
			t.Errorf("claim %q, want done:%s", got, id)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("live worker's refreshed claim never taken; done is acknowledged", func(t *testing.T) {
		b, kv := setup(t)
		other := newUUID()
		rev, _ := claimAs(t, kv, "elsewhere", other)
		_, stop := startWorker(t, b.nc.ConnectedUrl(), 1, fast)
		b.queue("elsewhere", map[string]string{"duration": "10ms"})
		// The other worker runs it for 4 stale periods, refreshing its
		// claim as the example worker does with each ack extension.
		for end := time.Now().Add(8 * ackWait); time.Now().Before(end); {
			select {
			case m := <-b.events:
				t.Fatalf("a job another live worker runs was taken: %s %s", m.Subject, m.Data)
			case <-time.After(ackWait / 3): // the refresh's pace, not a wait for a result
			}
			var err error
			if rev, err = kv.Update(context.Background(), claimKey(testPool, "elsewhere"), []byte("run:"+other), rev); err != nil {
				t.Fatalf("refreshing the other worker's claim: %v (the worker took it over)", err)
			}
		}
		if _, err := kv.Put(context.Background(), claimKey(testPool, "elsewhere"), []byte("done:"+other)); err != nil {
			t.Fatal(err)
		}
		b.consumerSettled() // the next delivery finds done and acknowledges
		select {
		case m := <-b.events:
			t.Fatalf("a job done elsewhere ran: %s %s", m.Subject, m.Data)
		default:
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("own claim of a run that never began taken at once", func(t *testing.T) {
		b, kv := setup(t)
		id := newUUID()
		claimAs(t, kv, "mine", id)
		// AckWait 30s: were the claim only taken when stale, that would be
		// a minute away, past next's 20s.
		_, stop := startWorker(t, b.nc.ConnectedUrl(), 1, func(s *settings) { s.WorkerID = id })
		b.queue("mine", map[string]string{"duration": "10ms"})
		checkEvent(t, b.next(20*time.Second), "started", "mine", id, "")
		checkEvent(t, b.next(10*time.Second), "finished", "mine", id, domain.OutcomeSucceeded)
		b.consumerSettled() // acknowledged after the claim is marked done
		if got := claimOf(t, kv, "mine"); got != "done:"+id {
			t.Errorf("claim %q, want done:%s", got, id)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A claim whose run never began (its started could not be published) is
// released, so the job's next delivery runs at once on any worker instead
// of after the stale period; a release deletes only the revision it
// wrote, never a claim another worker has taken since. Real NATS.
func TestClaimReleasedWhenTheRunNeverBegan(t *testing.T) {
	b := newBus(t, startNATS(t))
	b.createStream()
	var logs strings.Builder
	w := &worker{s: settings{Pool: testPool, WorkerID: newUUID(), AckWait: 30 * time.Second},
		js: b.js, log: log.New(&logs, "", 0), run: newRunning()}
	kv, err := w.claimsBucket()
	if err != nil {
		t.Fatal(err)
	}
	get := func(job string) (string, bool) {
		t.Helper()
		e, err := kv.Get(context.Background(), claimKey(testPool, job))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(e.Value()), true
	}

	rev, err := w.claim("never-began")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := get("never-began"); !ok || v != "run:"+w.s.WorkerID {
		t.Fatalf("claim %q (present %v), want run:%s", v, ok, w.s.WorkerID)
	}
	w.release("never-began", rev)
	if v, ok := get("never-began"); ok {
		t.Errorf("claim %q still there after the release", v)
	}
	other := &worker{s: settings{Pool: testPool, WorkerID: newUUID(), AckWait: 30 * time.Second},
		js: b.js, log: log.New(&logs, "", 0), run: newRunning()}
	if _, err := other.claim("never-began"); err != nil {
		t.Errorf("another worker could not claim the released job at once: %v", err)
	}

	// A stale release (the claim was taken over since) leaves the new claim.
	rev, err = w.claim("taken-since")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(context.Background(), claimKey(testPool, "taken-since"), []byte("run:"+other.s.WorkerID), rev); err != nil {
		t.Fatal(err)
	}
	w.release("taken-since", rev)
	if v, ok := get("taken-since"); !ok || v != "run:"+other.s.WorkerID {
		t.Errorf("claim %q (present %v) after a stale release, want the other worker's run:%s", v, ok, other.s.WorkerID)
	}
	if !strings.Contains(logs.String(), "releasing the claim") {
		t.Errorf("the refused release was not logged: %q", logs.String())
	}
}
