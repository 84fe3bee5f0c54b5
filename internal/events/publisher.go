package events

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Publisher sends worker lifecycle and decision events. Enqueueing never
// blocks the caller: events wait in a bounded queue and are published in
// order by Run, retried with backoff while the bus is away. When the queue
// is full the oldest waiting event is dropped and counted, so a long outage
// costs memory bounded by nats.publish.buffer.
type Publisher struct {
	js       jetstream.JetStream
	subjects Subjects
	source   string
	log      zerolog.Logger
	observe  func(typ, result string)

	mu      sync.Mutex
	queue   []outgoing
	limit   int
	wake    chan struct{}
	closed  bool
	done    chan struct{}
	dropped atomic.Int64
}

type outgoing struct {
	subject string
	typ     string
	id      string
	time    time.Time
	data    any
	ext     map[string]string // CloudEvent extensions
}

// NewPublisher makes a publisher. observe (may be nil) is told the type
// and result ("published", "dropped", "error") of every event.
func NewPublisher(js jetstream.JetStream, subjects Subjects, source string, buffer int, log zerolog.Logger, observe func(typ, result string)) *Publisher {
	if observe == nil {
		observe = func(string, string) {}
	}
	return &Publisher{
		js: js, subjects: subjects, source: source, log: log, observe: observe,
		limit: max(buffer, 1), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// PublishedTypes are the CloudEvents types the daemon publishes.
func PublishedTypes() []string {
	out := []string{domain.TypeDecision}
	for _, s := range []domain.Lifecycle{domain.LifecycleProvisioning, domain.LifecycleReady, domain.LifecycleDraining,
		domain.LifecycleStopped, domain.LifecycleFailed} {
		out = append(out, domain.TypeWorkerPrefix+string(s))
	}
	return out
}

// Worker enqueues hodei.worker.<state>.
func (p *Publisher) Worker(now time.Time, state domain.Lifecycle, data domain.WorkerEventData) {
	p.enqueue(outgoing{
		subject: p.subjects.Worker(domain.PoolName(data.Pool), state),
		typ:     domain.TypeWorkerPrefix + string(state),
		time:    now, data: data,
	})
}

// Decision enqueues hodei.autoscaler.decision.
func (p *Publisher) Decision(now time.Time, data domain.DecisionData) {
	p.enqueue(outgoing{
		subject: p.subjects.Decision(domain.PoolName(data.Pool)),
		typ:     domain.TypeDecision,
		time:    now, data: data, ext: data.Extensions,
	})
}

func (p *Publisher) enqueue(o outgoing) {
	o.id = uuid.NewString()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.observe(o.typ, "dropped")
		return
	}
	if len(p.queue) >= p.limit {
		old := p.queue[0]
		p.queue = p.queue[1:]
		p.dropped.Add(1)
		p.observe(old.typ, "dropped")
	}
	p.queue = append(p.queue, o)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of events waiting to be published.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Close stops accepting events; Run publishes what is queued and returns.
func (p *Publisher) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Done is closed when Run has returned.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Run publishes queued events until Close has been called and the queue
// is empty, or until ctx ends (what is left is then abandoned and counted).
func (p *Publisher) Run(ctx context.Context) error {
	defer close(p.done)
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return nil
			}
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		o := p.queue[0]
		p.mu.Unlock()

		if err := p.publish(ctx, o); err != nil {
			p.mu.Lock()
			left := p.queue
			p.queue = nil
			p.mu.Unlock()
			for _, l := range left {
				p.observe(l.typ, "dropped")
			}
			return err
		}
		p.mu.Lock()
		if len(p.queue) > 0 && p.queue[0].id == o.id {
			p.queue = p.queue[1:]
		}
		p.mu.Unlock()
	}
}

// publish retries one event until the server stores it or ctx ends.
func (p *Publisher) publish(ctx context.Context, o outgoing) error {
	payload, err := EncodeExt(o.id, p.source, o.typ, o.time, o.data, o.ext)
	if err != nil {
		p.log.Error().Err(err).Str("type", o.typ).Msg("cannot encode event; dropping it")
		p.observe(o.typ, "error")
		return nil
	}
	msg := &nats.Msg{Subject: o.subject, Data: payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, o.id)
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	attempt := 0
	return backoff.Retry(func() error {
		attempt++
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := p.js.PublishMsg(pctx, msg); err != nil {
			if attempt == 1 || attempt%20 == 0 {
				p.log.Warn().Err(err).Str("subject", o.subject).Int("attempt", attempt).Msg("publishing event failed; retrying")
			}
			return err
		}
		p.observe(o.typ, "published")
		return nil
	}, backoff.WithContext(bo, ctx))
}
