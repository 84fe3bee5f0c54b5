// Command worker is an example Hodei worker: it takes queued jobs of its
// pool from the HODEI_JOBS stream (a durable pull consumer shared by every
// worker of the pool), "runs" each one by sleeping for its duration label,
// and publishes the job's started and finished events. It is what the
// autoscaler's Docker provider runs in tests and demos.
//
// Environment:
//
//	HODEI_WORKER_ID       worker id (set by the autoscaler; random if unset)
//	HODEI_WORKER_POOL     pool name (required)
//	HODEI_WORKER_SLOTS    jobs run at once (default 1)
//	HODEI_NATS_URL        NATS server URL (default nats://127.0.0.1:4222)
//	HODEI_SUBJECT_PREFIX  subject prefix (default hodei)
//	HODEI_HEARTBEAT_INTERVAL  how often the worker reports its running jobs
//	                      on <prefix>.heartbeats.<pool> (default 5s)
//
// A job's duration is its data.labels.duration, a Go duration ("1.5s",
// default 1s). On SIGTERM or SIGINT the worker stops taking jobs, lets the
// running ones finish and exits 0; a second signal kills it at once.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/clock"
	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Stream is the JetStream stream holding job events.
const Stream = "HODEI_JOBS"

// defaultDuration is how long a job without a duration label runs.
const defaultDuration = time.Second

// settings is the worker's configuration.
type settings struct {
	WorkerID string
	Pool     string
	Slots    int
	NATSURL  string
	Prefix   string

	// Tunables; zero values get the defaults of withDefaults.
	AckWait    time.Duration // consumer AckWait
	FetchWait  time.Duration // how long one pull waits (bounds shutdown latency)
	RetryDelay time.Duration // wait between attempts to bind the consumer
	// HeartbeatInterval is how often the running jobs are reported.
	HeartbeatInterval time.Duration
}

func (s settings) withDefaults() settings {
	if s.AckWait <= 0 {
		s.AckWait = 30 * time.Second
	}
	if s.FetchWait <= 0 {
		s.FetchWait = 2 * time.Second
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = time.Second
	}
	if s.Slots < 1 {
		s.Slots = 1
	}
	if s.HeartbeatInterval <= 0 {
		s.HeartbeatInterval = 5 * time.Second
	}
	return s
}

// consumerName is the durable consumer shared by the pool's workers.
func (s settings) consumerName() string { return "hodei-workers-" + s.Pool }

func (s settings) subject(kind domain.JobKind) string {
	return s.Prefix + ".jobs." + s.Pool + "." + kind.String()
}

// settingsFromEnv reads the worker's environment.
func settingsFromEnv(getenv func(string) string) (settings, error) {
	s := settings{
		WorkerID: getenv(domain.EnvWorkerID),
		Pool:     getenv(domain.EnvWorkerPool),
		Slots:    1,
		NATSURL:  getenv("HODEI_NATS_URL"),
		Prefix:   getenv("HODEI_SUBJECT_PREFIX"),
	}
	if s.WorkerID == "" {
		s.WorkerID = newUUID()
	}
	if err := domain.ValidatePoolName(s.Pool); err != nil {
		return s, fmt.Errorf("%s: %w", domain.EnvWorkerPool, err)
	}
	if v := getenv(domain.EnvWorkerSlots); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s, fmt.Errorf("%s=%q is not a positive integer", domain.EnvWorkerSlots, v)
		}
		s.Slots = n
	}
	if v := getenv("HODEI_HEARTBEAT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("HODEI_HEARTBEAT_INTERVAL=%q is not a positive duration", v)
		}
		s.HeartbeatInterval = d
	}
	if s.NATSURL == "" {
		s.NATSURL = "nats://127.0.0.1:4222"
	}
	if s.Prefix == "" {
		s.Prefix = "hodei"
	}
	return s, nil
}

func main() {
	logger := log.New(os.Stderr, "hodei-worker: ", log.LstdFlags|log.LUTC|log.Lmicroseconds)
	s, err := settingsFromEnv(os.Getenv)
	if err != nil {
		logger.Printf("configuration error: %v", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		logger.Printf("signal received: taking no more jobs, letting running ones finish")
		stop() // a second signal kills the process
	}()
	if err := run(ctx, s, logger); err != nil {
		logger.Printf("error: %v", err)
		os.Exit(1)
	}
	logger.Printf("stopped")
}

// run works until ctx ends, then waits for the running jobs and returns.
func run(ctx context.Context, s settings, logger *log.Logger) error {
	s = s.withDefaults()
	logger.Printf("worker %s of pool %s starting: %d slot(s), nats %s, subject prefix %s", s.WorkerID, s.Pool, s.Slots, s.NATSURL, s.Prefix)
	nc, err := nats.Connect(s.NATSURL,
		nats.Name("hodei-worker "+s.WorkerID),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Printf("disconnected from nats: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Printf("connected to nats %s", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return fmt.Errorf("connecting to nats %s: %w", s.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("creating jetstream context: %w", err)
	}
	w := &worker{s: s, js: js, log: logger, run: newRunning()}
	// Heartbeats go on until the running jobs have finished, past ctx.
	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		w.heartbeat(nc, stopBeat)
	}()
	w.work(ctx)
	close(stopBeat)
	<-beatDone
	logger.Printf("all running jobs finished")
	return nil
}

type worker struct {
	s   settings
	js  jetstream.JetStream
	log *log.Logger
	run *running
	// kv is the claims bucket, opened at the first claim (claim.go).
	kvMu sync.Mutex
	kv   jetstream.KeyValue
}

// bind creates or updates the pool's shared consumer, retrying until the
// stream exists or ctx ends.
func (w *worker) bind(ctx context.Context) (jetstream.Consumer, bool) {
	cfg := jetstream.ConsumerConfig{
		Durable:       w.s.consumerName(),
		Description:   "hodei workers of pool " + w.s.Pool,
		FilterSubject: w.s.subject(domain.JobQueued),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       w.s.AckWait,
		MaxAckPending: 100_000,
	}
	var lastErr string
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := w.js.CreateOrUpdateConsumer(cctx, Stream, cfg)
		cancel()
		if err == nil {
			w.log.Printf("bound to consumer %s on stream %s (%s)", cfg.Durable, Stream, cfg.FilterSubject)
			return cons, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if msg := err.Error(); msg != lastErr { // log each new problem once
			lastErr = msg
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				w.log.Printf("stream %s does not exist yet; waiting for it", Stream)
			} else {
				w.log.Printf("binding consumer %s: %v; retrying", cfg.Durable, err)
			}
		}
		if !clock.Sleep(ctx, w.s.RetryDelay) {
			return nil, false
		}
	}
}

// work fetches jobs into free slots until ctx ends, then waits for the
// running jobs.
func (w *worker) work(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	cons, ok := w.bind(ctx)
	if !ok {
		return
	}
	slots := make(chan struct{}, w.s.Slots)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		// select picks at random when both are ready: a free slot must not
		// win over the stop.
		if ctx.Err() != nil {
			return
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(w.s.FetchWait))
		if err != nil {
			<-slots
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			w.log.Printf("fetching a job: %v", err)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				if cons, ok = w.bind(ctx); !ok {
					return
				}
				continue
			}
			if !clock.Sleep(ctx, w.s.RetryDelay) {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			// Fetched while stopping: hand it back at once.
			_ = msg.Nak()
			<-slots
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.handle(msg)
		}()
	}
}

// job is a queued job as the worker understands it.
type job struct {
	ID       string
	Duration time.Duration
	BadInput string // set when the job is known but cannot be run
	claimed  bool   // this worker holds its claim
}

// parseJob decodes a job.queued event. An error means the message is not a
// job at all (it is terminated); a job with unusable fields comes back with
// BadInput set (it is reported finished as failed).
func parseJob(data []byte, pool string) (job, error) {
	var ev domain.CloudEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return job{}, fmt.Errorf("not a JSON CloudEvent: %w", err)
	}
	// The daemon's input rules, checked the same way: raw bytes before
	// encoding/json rewrites invalid UTF-8 to U+FFFD, then the job id.
	// A job the daemon refuses to count must not run, or its worker
	// would look idle while it runs it.
	if err := domain.CheckJSONText(data); err != nil {
		return job{}, fmt.Errorf("refused as the autoscaler refuses it: %w", err)
	}
	if ev.Type != "" && ev.Type != domain.TypeJobQueued {
		return job{}, fmt.Errorf("type %q is not %s", ev.Type, domain.TypeJobQueued)
	}
	if len(ev.Data) == 0 {
		return job{}, errors.New("no data")
	}
	var d domain.JobData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return job{}, fmt.Errorf("data is not a job: %w", err)
	}
	if err := domain.ValidateJobID(d.JobID); err != nil {
		return job{}, fmt.Errorf("refused as the autoscaler refuses it: %w", err)
	}
	if d.Pool != "" && d.Pool != pool {
		return job{}, fmt.Errorf("job %s names pool %q but was queued for pool %q", d.JobID, d.Pool, pool)
	}
	j := job{ID: d.JobID, Duration: defaultDuration}
	if v, ok := d.Labels["duration"]; ok && v != "" {
		dur, err := time.ParseDuration(v)
		switch {
		case err != nil:
			j.BadInput = fmt.Sprintf("label duration=%q is not a Go duration", v)
		case dur < 0:
			j.BadInput = fmt.Sprintf("label duration=%q is negative", v)
		default:
			j.Duration = dur
		}
	}
	return j, nil
}

// handle runs one job: started, sleep, finished, ack. The ack comes last so
// a worker that dies mid-job gets the job redelivered to another one.
func (w *worker) handle(msg jetstream.Msg) {
	j, err := parseJob(msg.Data(), w.s.Pool)
	if err != nil {
		w.log.Printf("dropping malformed job message on %s: %v", msg.Subject(), err)
		if err := msg.TermWithReason("malformed job: " + err.Error()); err != nil {
			w.log.Printf("terminating malformed message: %v", err)
		}
		return
	}
	if j.BadInput != "" {
		w.log.Printf("job %s cannot run: %s; reporting it failed", j.ID, j.BadInput)
		w.finish(msg, j, domain.OutcomeFailed)
		return
	}

	// Claim before anything: a redelivery (an ack lost in a crash of the
	// bus, AckWait passed) of a job claimed before is acknowledged and not
	// run again.
	rev, err := w.claim(j.ID)
	if err != nil {
		if errors.Is(err, errBusyElsewhere) {
			w.log.Printf("job %s: %v; handing it back for later", j.ID, err)
			_ = msg.NakWithDelay(w.s.AckWait)
			return
		}
		if errors.Is(err, errClaimed) {
			w.log.Printf("job %s: %v; not run again", j.ID, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := msg.DoubleAck(ctx); err != nil {
				w.log.Printf("job %s: acknowledging the redelivery: %v", j.ID, err)
			}
			return
		}
		w.log.Printf("job %s: %v; handing the job back", j.ID, err)
		_ = msg.NakWithDelay(w.s.RetryDelay)
		return
	}
	j.claimed = true
	w.run.add(j.ID)
	defer w.run.remove(j.ID)
	if err := w.publish(domain.JobStarted, j.ID, ""); err != nil {
		w.log.Printf("job %s: publishing started: %v; handing the job back", j.ID, err)
		w.release(j.ID, rev)
		_ = msg.Nak()
		return
	}
	w.log.Printf("job %s started (%s)", j.ID, j.Duration)

	// Keep the message ours while the job runs longer than AckWait.
	timer := time.NewTimer(j.Duration)
	defer timer.Stop()
	tick := time.NewTicker(w.s.AckWait / 3)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-timer.C:
			done = true
		case <-tick.C:
			if err := msg.InProgress(); err != nil {
				w.log.Printf("job %s: extending ack deadline: %v", j.ID, err)
			}
			rev = w.refresh(j.ID, rev)
		}
	}
	w.finish(msg, j, domain.OutcomeSucceeded)
}

// finish publishes the finished event and acks the job.
func (w *worker) finish(msg jetstream.Msg, j job, outcome domain.Outcome) {
	if err := w.publish(domain.JobFinished, j.ID, outcome); err != nil {
		w.log.Printf("job %s: publishing finished: %v; handing the job back", j.ID, err)
		_ = msg.Nak()
		return
	}
	if j.claimed {
		// Done before the ack: a redelivery after a lost ack finds it.
		w.done(j.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		w.log.Printf("job %s: acknowledging: %v", j.ID, err)
		return
	}
	w.log.Printf("job %s finished: %s", j.ID, outcome)
}

// publish sends a job event through JetStream, retrying with the same event
// id (JetStream drops the duplicates by Nats-Msg-Id).
func (w *worker) publish(kind domain.JobKind, jobID string, outcome domain.Outcome) error {
	data, err := json.Marshal(domain.JobData{
		JobID:    jobID,
		Pool:     w.s.Pool,
		WorkerID: w.s.WorkerID,
		Outcome:  string(outcome),
	})
	if err != nil {
		return fmt.Errorf("encoding data: %w", err)
	}
	ev := domain.CloudEvent{
		SpecVersion:     "1.0",
		ID:              newUUID(),
		Source:          "hodei-worker/" + w.s.WorkerID,
		Type:            kind.Type(),
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		Data:            data,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	subject := w.s.subject(kind)
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = w.js.Publish(ctx, subject, body, jetstream.WithMsgID(ev.ID))
		cancel()
		if err == nil {
			return nil
		}
		if attempt == 5 {
			return fmt.Errorf("publishing %s to %s: %w", ev.Type, subject, err)
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
