package benchkit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

// StartNATS starts a real NATS server with JetStream in this process, on
// a free loopback port, storing in dir (file storage, as the daemon's
// streams use).
func StartNATS(dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "hodei-bench", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
		// Room for a 1M-event stream and its dedup window.
		JetStreamMaxMemory: 1 << 30, JetStreamMaxStore: 16 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats did not start")
	}
	return srv, nil
}

// Config is the daemon's default configuration on an external NATS at url
// (or "embedded" with the given store and port), an HTTP listener on a
// free port, and one pool per name (defaults, changed by mod).
func Config(url, storeDir string, port int, pools []string, mod func(*config.Pool)) (config.Config, error) {
	cfg := config.Defaults()
	cfg.Name = "hodei-bench"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.URL = url
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: port, StoreDir: storeDir}
	cfg.Reconcile.ResyncInterval = config.Duration(time.Hour)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	for _, name := range pools {
		p := config.PoolDefaults()
		p.Name = name
		p.Docker.Image = "unused"
		if mod != nil {
			mod(&p)
		}
		cfg.Pools = append(cfg.Pools, p)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("bench config invalid: %w", err)
	}
	return cfg, nil
}

// EnsureStreams creates the daemon's streams on url exactly as the daemon
// would (events.Connect with the daemon's default stream settings).
func EnsureStreams(ctx context.Context, url string) error {
	cfg := config.Defaults().NATS
	cfg.URL = url
	b, err := events.Connect(ctx, cfg, zerolog.New(io.Discard))
	if err != nil {
		return err
	}
	b.Close()
	return nil
}

// Connect opens a plain client connection with JetStream.
func Connect(url string, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("hodei-bench"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Subjects are the contract's subjects under the default prefix.
var Subjects = events.Subjects{Prefix: "hodei"}

// Event is one job event to publish.
type Event struct {
	Pool   domain.PoolName
	Kind   domain.JobKind
	Job    string
	Worker domain.WorkerID
}

// Encode renders ev as the contract's CloudEvent (the daemon's own
// encoder, as the queue command and the tests use) and returns the
// subject, the payload and the CloudEvent id (also the Nats-Msg-Id).
func Encode(ev Event, t time.Time) (subject string, payload []byte, id string, err error) {
	data := domain.JobData{JobID: ev.Job, Pool: string(ev.Pool), WorkerID: string(ev.Worker)}
	if ev.Kind == domain.JobFinished {
		data.Outcome = string(domain.OutcomeSucceeded)
	}
	id = uuid.NewString()
	payload, err = events.Encode(id, "hodei-bench-scheduler", ev.Kind.Type(), t, data)
	return Subjects.Job(ev.Pool, ev.Kind), payload, id, err
}

// Mix generates a realistic job stream: jobs arrive round-robin over the
// pools; each is queued, started Lag jobs later on one of its pool's
// workers and finished another Lag jobs later. So about Lag jobs wait and
// Lag run at any point, and the stream ends with that many open.
type Mix struct {
	Pools          int
	WorkersPerPool int
	Lag            int
}

// PoolName is the name of pool i.
func (m Mix) PoolName(i int) domain.PoolName { return domain.PoolName(fmt.Sprintf("pool-%03d", i)) }

// PoolNames lists every pool.
func (m Mix) PoolNames() []string {
	out := make([]string, m.Pools)
	for i := range out {
		out[i] = string(m.PoolName(i))
	}
	return out
}

// Worker is the id of worker k of pool i (stable across runs).
func (m Mix) Worker(pool, k int) domain.WorkerID {
	return domain.WorkerID(uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "hodei-bench/%d/%d", pool, k)).String())
}

// Events returns the first n events of the mix.
func (m Mix) Events(n int) []Event {
	out := make([]Event, 0, n)
	job := func(j int, kind domain.JobKind) Event {
		pool := j % m.Pools
		e := Event{Pool: m.PoolName(pool), Kind: kind, Job: fmt.Sprintf("job-%09d", j)}
		if kind != domain.JobQueued {
			e.Worker = m.Worker(pool, (j/m.Pools)%m.WorkersPerPool)
		}
		return e
	}
	for j := 0; len(out) < n; j++ {
		out = append(out, job(j, domain.JobQueued))
		if j >= m.Lag && len(out) < n {
			out = append(out, job(j-m.Lag, domain.JobStarted))
		}
		if j >= 2*m.Lag && len(out) < n {
			out = append(out, job(j-2*m.Lag, domain.JobFinished))
		}
	}
	return out
}

// Fill publishes evs to JetStream with the Nats-Msg-Id header, as a
// scheduler does, many in flight at once, and waits for every ack.
func Fill(ctx context.Context, js jetstream.JetStream, evs []Event, now func() time.Time) error {
	return PublishAll(ctx, js, len(evs), func(i int) (string, []byte, []jetstream.PublishOpt, error) {
		subj, payload, id, err := Encode(evs[i], now())
		return subj, payload, []jetstream.PublishOpt{jetstream.WithMsgID(id)}, err
	})
}

// PublishAll publishes the n messages that msg(i) gives, many in flight at
// once, and waits for every ack.
func PublishAll(ctx context.Context, js jetstream.JetStream, n int, msg func(i int) (subject string, data []byte, opts []jetstream.PublishOpt, err error)) error {
	const window = 1024 // below PublishAsyncMaxPending (4000), which stalls a loaded machine
	futures := make([]jetstream.PubAckFuture, 0, window)
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("publish: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := range n {
		subj, data, opts, err := msg(i)
		if err != nil {
			return err
		}
		f, err := js.PublishAsync(subj, data, opts...)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, f)
		if len(futures) == window {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
