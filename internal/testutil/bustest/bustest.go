// Package bustest helps tests talk to a real NATS JetStream server: start
// one in-process, publish contract job events, and collect what the daemon
// publishes.
package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

// StartServer starts an in-process NATS server with JetStream on a free
// loopback port and a temporary store; it is shut down at test end.
func StartServer(t testing.TB) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("starting nats: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// Connect opens a client connection closed at test end.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Jobs publishes job events the way a scheduler would.
type Jobs struct {
	T        testing.TB
	JS       jetstream.JetStream
	Subjects events.Subjects
}

// NewJobs uses the default "hodei" prefix.
func NewJobs(t testing.TB, js jetstream.JetStream) *Jobs {
	return &Jobs{T: t, JS: js, Subjects: events.Subjects{Prefix: "hodei"}}
}

// Queued publishes hodei.job.queued.
func (j *Jobs) Queued(pool domain.PoolName, job string, labels map[string]string) string {
	return j.Publish(pool, domain.JobQueued, domain.JobData{JobID: job, Pool: string(pool), Labels: labels})
}

// Started publishes hodei.job.started.
func (j *Jobs) Started(pool domain.PoolName, job string, w domain.WorkerID) string {
	return j.Publish(pool, domain.JobStarted, domain.JobData{JobID: job, Pool: string(pool), WorkerID: string(w)})
}

// Finished publishes hodei.job.finished with outcome succeeded.
func (j *Jobs) Finished(pool domain.PoolName, job string, w domain.WorkerID) string {
	return j.Publish(pool, domain.JobFinished, domain.JobData{JobID: job, Pool: string(pool), WorkerID: string(w), Outcome: string(domain.OutcomeSucceeded)})
}

// Publish sends one well-formed event and returns its CloudEvent id.
func (j *Jobs) Publish(pool domain.PoolName, kind domain.JobKind, data domain.JobData) string {
	j.T.Helper()
	id := uuid.NewString()
	payload, err := events.Encode(id, "test-scheduler", kind.Type(), time.Now(), data)
	if err != nil {
		j.T.Fatalf("encoding: %v", err)
	}
	j.Raw(j.Subjects.Job(pool, kind), payload, id)
	return id
}

// Raw publishes any payload on any subject (for hostile input), with a
// Nats-Msg-Id when id is set.
func (j *Jobs) Raw(subject string, payload []byte, id string) {
	j.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	for {
		_, err := j.JS.Publish(ctx, subject, payload, opts...)
		if err == nil {
			return
		}
		// A cluster electing the stream's leader (a server just killed)
		// answers nothing for a moment: the scheduler's part retries, as
		// a real one would; the Nats-Msg-Id keeps it once.
		if ctx.Err() == nil && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		j.T.Fatalf("publishing to %s: %v", subject, err)
	}
}

// Event is one event the daemon published.
type Event struct {
	Subject string
	Type    string
	Worker  domain.WorkerEventData
	Decide  domain.DecisionData
	Job     domain.JobData
	At      time.Time
	// Stored is when the stream stored it, Received when this collector
	// got it (to tell a late publish from a late delivery).
	Stored, Received time.Time
}

// Collector follows HODEI_WORKERS (lifecycle and decisions).
type Collector struct {
	mu     sync.Mutex
	events []Event
	cc     jetstream.ConsumeContext
}

// Collect starts following HODEI_WORKERS from its beginning. The stream
// must exist (the daemon creates it).
func Collect(t testing.TB, js jetstream.JetStream) *Collector {
	t.Helper()
	return CollectStream(t, js, events.StreamWorkers)
}

// CollectStream follows any stream of contract events from its beginning.
func CollectStream(t testing.TB, js jetstream.JetStream, stream string) *Collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("consumer on %s: %v", stream, err)
	}
	c := &Collector{}
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		var ce domain.CloudEvent
		if err := json.Unmarshal(m.Data(), &ce); err != nil {
			return
		}
		e := Event{Subject: m.Subject(), Type: ce.Type, At: ce.Time, Received: time.Now()}
		if md, err := m.Metadata(); err == nil {
			e.Stored = md.Timestamp
		}
		switch {
		case ce.Type == domain.TypeDecision:
			_ = json.Unmarshal(ce.Data, &e.Decide)
		case strings.HasPrefix(ce.Type, domain.TypeWorkerPrefix):
			_ = json.Unmarshal(ce.Data, &e.Worker)
		default:
			_ = json.Unmarshal(ce.Data, &e.Job)
		}
		c.mu.Lock()
		c.events = append(c.events, e)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(c.cc.Stop)
	return c
}

// Events returns what was collected so far.
func (c *Collector) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// OfType returns the collected events of one CloudEvents type.
func (c *Collector) OfType(typ string) []Event {
	var out []Event
	for _, e := range c.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Lifecycle is the CloudEvents type of a worker lifecycle state.
func Lifecycle(s domain.Lifecycle) string { return domain.TypeWorkerPrefix + string(s) }

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server whose clients must know its address before it starts.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
