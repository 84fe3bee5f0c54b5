package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Consumer folds the job stream from its first retained message, then
// follows it live. It uses an ordered consumer: ephemeral, no acks, and
// recreated by nats.go at the right sequence after any gap, so the daemon
// never holds server-side state that a crash could leave inconsistent.
type Consumer struct {
	JS      jetstream.JetStream
	Decoder Decoder
	Log     zerolog.Logger
	// PullMax is the client-side buffer of the consumer (messages).
	PullMax int
	// Stream and Filters say what to read: HODEI_JOBS and the job
	// subjects when empty. DecodeMsg, when set, decodes instead of
	// Decoder (another input format, internal/inputs); it fills the
	// delivery's Event, Err, Type, Ignored and Heartbeat.
	Stream    string
	Filters   []string
	DecodeMsg func(subject string, h nats.Header, data []byte) domain.Delivery
}

func (c *Consumer) stream() string {
	if c.Stream != "" {
		return c.Stream
	}
	return StreamJobs
}

func (c *Consumer) filters() []string {
	if len(c.Filters) > 0 {
		return c.Filters
	}
	return []string{c.Decoder.Subjects.AllJobs()}
}

// Run delivers every message to deliver, in stream order, until ctx ends.
// deliver is called from one goroutine at a time.
func (c *Consumer) Run(ctx context.Context, deliver func(domain.Delivery)) error {
	cons, err := c.open(ctx)
	if err != nil {
		return err
	}
	empty, err := c.streamEmpty(ctx)
	if err != nil {
		return err
	}
	if empty {
		deliver(domain.Delivery{CaughtUp: true, Marker: true})
	}
	pullMax := c.PullMax
	if pullMax <= 0 {
		pullMax = 2000
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		deliver(c.decode(msg))
	},
		jetstream.PullMaxMessages(pullMax),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.Log.Debug().Err(err).Msg("job stream consumer")
		}))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", c.stream(), err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return ctx.Err()
}

func (c *Consumer) decode(msg jetstream.Msg) domain.Delivery {
	var d domain.Delivery
	md, err := msg.Metadata()
	if err == nil {
		d.CaughtUp = md.NumPending == 0
		d.Seq = md.Sequence.Stream
	}
	if c.DecodeMsg != nil {
		got := c.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
		d.Event, d.Err, d.Type, d.Ignored, d.Heartbeat = got.Event, got.Err, got.Type, got.Ignored, got.Heartbeat
		if d.Err == nil && !d.Ignored && md != nil {
			d.Event.Seq, d.Event.Stored = md.Sequence.Stream, md.Timestamp
		}
		if d.Err == nil && !d.Ignored {
			if err := c.Decoder.CheckTime(d.Event); err != nil {
				d.Event, d.Err = domain.JobEvent{}, err
			}
		}
		return d
	}
	ev, err := c.Decoder.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
	if _, kind, ok := c.Decoder.Subjects.ParseJob(msg.Subject()); ok {
		d.Type = kind.Type()
	} else {
		d.Type = "unknown"
	}
	if err != nil {
		d.Err = err
		return d
	}
	if md != nil {
		ev.Seq = md.Sequence.Stream
		ev.Stored = md.Timestamp
	}
	if err := c.Decoder.CheckTime(ev); err != nil {
		d.Err = err
		return d
	}
	d.Event = ev
	return d
}

// open creates the ordered consumer, retrying while the bus is away.
func (c *Consumer) open(ctx context.Context) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 0
	err := backoff.RetryNotify(func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		cons, err = c.JS.OrderedConsumer(cctx, c.stream(), jetstream.OrderedConsumerConfig{
			FilterSubjects: c.filters(),
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return backoff.Permanent(fmt.Errorf("stream %s not found: %w", c.stream(), err))
		}
		return err
	}, backoff.WithContext(bo, ctx), func(err error, d time.Duration) {
		c.Log.Warn().Err(err).Stringer("retry_in", d).Msg("cannot open job stream consumer; retrying")
	})
	if err != nil {
		return nil, fmt.Errorf("opening consumer on %s: %w", c.stream(), err)
	}
	return cons, nil
}

func (c *Consumer) streamEmpty(ctx context.Context) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := c.JS.Stream(cctx, c.stream())
	if err != nil {
		return false, fmt.Errorf("reading %s state: %w", c.stream(), err)
	}
	if len(c.Filters) == 0 {
		return s.CachedInfo().State.Msgs == 0, nil
	}
	// Filtered: empty when none of the retained messages is ours (else
	// no message would ever say caught up).
	for _, f := range c.Filters {
		info, err := s.Info(cctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return false, fmt.Errorf("reading %s state: %w", c.stream(), err)
		}
		if len(info.State.Subjects) > 0 {
			return false, nil
		}
	}
	return true, nil
}
