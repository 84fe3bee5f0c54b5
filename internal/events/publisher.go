package events

import (
	"context"
	"slices"
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
		batch := slices.Clone(p.queue[:min(len(p.queue), publishWindow)])
		p.mu.Unlock()

		done, err := p.publishBatch(ctx, batch)
		if err != nil {
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
		for _, o := range batch[:done] {
			if len(p.queue) > 0 && p.queue[0].id == o.id {
				p.queue = p.queue[1:]
			}
		}
		p.mu.Unlock()
	}
}

// publishWindow is how many queued events are in flight at once: a burst
// of lifecycle and decision events costs one flush and one wait for the
// acks instead of a round trip each (BENCHMARKS.md, row 2b).
const publishWindow = 256

// publishBatch sends batch in order without waiting between events and
// returns how many from its head the server stored. When the head itself
// fails it falls back to publish, which retries it with backoff; when a
// later one fails, the next round starts from it (the events after it
// that were stored are then sent again and dropped by the server's
// Nats-Msg-Id de-duplication).
//
// Order: pipelined publishes can fail one by one and reach the server out
// of the order they were sent in. A message written to a connection that
// dies is lost while the ones published after it wait in the client's
// reconnect buffer and are stored on the next connection; a message the
// server turns away (no stream leader for a moment, a store error) can be
// followed by one it takes. Resending the failed one would store it after
// its successors. So every event but the batch's head carries
// Nats-Expected-Last-Msg-Id, its predecessor's id: the server stores it
// only right after its predecessor, and turns away the rest of the batch
// once one is missing. The head carries no expectation (other replicas
// write the same stream, so the last message there may be theirs), and
// is sent only when every event before it is stored. The events of one
// publisher are therefore in the stream in their order and, within the
// stream's duplicate window, each once. Another writer's message stored
// in the middle of a batch turns the rest of it away: the next round
// starts from there (one more round trip).
func (p *Publisher) publishBatch(ctx context.Context, batch []outgoing) (int, error) {
	if len(batch) == 1 {
		return 1, p.publish(ctx, batch[0])
	}
	futures := make([]jetstream.PubAckFuture, len(batch))
	skip := make([]bool, len(batch))
	prev := "" // the id of the last event sent: what the next one expects last in the stream
	for i, o := range batch {
		msg, ok := p.message(o)
		if !ok {
			skip[i] = true
			continue
		}
		if prev != "" {
			msg.Header.Set(jetstream.ExpectedLastMsgIDHeader, prev)
		}
		prev = o.id
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			break // this one and the rest go next round
		}
		futures[i] = f
	}
	// As publish's per-attempt timeout: an ack lost with a connection
	// must not hold the queue.
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	done := 0
acks:
	for i := range batch {
		switch {
		case skip[i]:
			done++
			continue
		case futures[i] == nil:
			break acks
		}
		select {
		case <-futures[i].Ok():
			p.observe(batch[i].typ, "published")
			done++
		case <-futures[i].Err():
			break acks
		case <-timeout.C:
			break acks
		case <-ctx.Done():
			return done, ctx.Err()
		}
	}
	if done == 0 {
		return 1, p.publish(ctx, batch[0])
	}
	return done, nil
}

// message encodes one event; an event that cannot be encoded is logged,
// counted as an error and dropped (false).
func (p *Publisher) message(o outgoing) (*nats.Msg, bool) {
	payload, err := EncodeExt(o.id, p.source, o.typ, o.time, o.data, o.ext)
	if err != nil {
		p.log.Error().Err(err).Str("type", o.typ).Msg("cannot encode event; dropping it")
		p.observe(o.typ, "error")
		return nil, false
	}
	msg := &nats.Msg{Subject: o.subject, Data: payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, o.id)
	return msg, true
}

// publish retries one event until the server stores it or ctx ends.
func (p *Publisher) publish(ctx context.Context, o outgoing) error {
	msg, ok := p.message(o)
	if !ok {
		return nil
	}
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
