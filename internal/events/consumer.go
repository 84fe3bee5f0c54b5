package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Consumer folds the job stream from its first retained message, then
// follows it live. It uses an ordered consumer: ephemeral, no acks, and
// recreated at the right sequence after any gap, so the daemon never
// holds server-side state that a crash could leave inconsistent.
//
// On a cluster the ordered consumer lives on one server. When that server
// dies, nats.go notices the missing heartbeats and recreates the consumer
// with a backoff of its own (1 s doubling to 10 s, 10 s per attempt),
// which, while the cluster elects new leaders, stalled the daemon's job
// stream for 10 to over 60 s after a NATS server kill (seen in
// internal/hae2e: workers kept past their jobs, their finished events not
// delivered). So Run watches its consumer: when messages are pending but
// none has been delivered for StallAfter, or the consumer cannot be
// asked, it drops the consumer and opens a new one at the next stream
// sequence itself, retrying every fraction of a second.
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
	// StallAfter is how long pending messages may go undelivered before
	// the consumer is opened anew (3 s when zero).
	StallAfter time.Duration
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

func (c *Consumer) stallAfter() time.Duration {
	if c.StallAfter > 0 {
		return c.StallAfter
	}
	return 3 * time.Second
}

// Run delivers every message to deliver, in stream order, until ctx ends.
// deliver is called from one goroutine at a time, once per message, also
// across the consumer being opened anew.
func (c *Consumer) Run(ctx context.Context, deliver func(domain.Delivery)) error {
	f := &follow{deliver: deliver, progress: make(chan struct{}, 1)}
	for first := true; ; first = false {
		cons, err := c.open(ctx, f.next())
		if err != nil {
			return err
		}
		if first {
			empty, err := c.streamEmpty(ctx)
			if err != nil {
				return err
			}
			if empty {
				deliver(domain.Delivery{CaughtUp: true, Marker: true})
			}
		}
		pullMax := c.PullMax
		if pullMax <= 0 {
			pullMax = 2000
		}
		cc, err := cons.Consume(func(msg jetstream.Msg) { f.take(c.decode(msg)) },
			jetstream.PullMaxMessages(pullMax),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				c.Log.Debug().Err(err).Msg("job stream consumer")
			}))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("consuming %s: %w", c.stream(), err)
		}
		if err != nil {
			c.Log.Warn().Err(err).Msg("cannot consume the job stream; opening the consumer again")
			if !sleep(ctx, 200*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		why := c.watch(ctx, cons, f)
		cc.Stop()
		<-cc.Closed()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.Log.Warn().Str("why", why).Uint64("next_seq", f.next()).Str("stream", c.stream()).
			Msg("job stream consumer stalled; opening it again at the next sequence")
	}
}

// follow is what Run keeps across consumers: the last stream sequence
// delivered, so a new consumer starts after it and a late message of an
// old one is dropped.
type follow struct {
	mu       sync.Mutex
	deliver  func(domain.Delivery)
	last     uint64
	busy     atomic.Bool   // a delivery is running (the daemon may block it)
	progress chan struct{} // cap 1: a message was delivered
}

func (f *follow) take(d domain.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Seq != 0 {
		if d.Seq <= f.last {
			return // an old consumer's, already delivered
		}
		f.last = d.Seq
	}
	f.busy.Store(true)
	f.deliver(d)
	f.busy.Store(false)
	select {
	case f.progress <- struct{}{}:
	default:
	}
}

// next is the stream sequence to start a new consumer at (0: the first).
func (f *follow) next() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == 0 {
		return 0
	}
	return f.last + 1
}

// watch returns when ctx ends, or says why the consumer stalled: messages
// pending but none delivered for StallAfter, or the consumer not
// answering twice in a row.
func (c *Consumer) watch(ctx context.Context, cons jetstream.Consumer, f *follow) string {
	every := max(c.stallAfter()/3, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	lastProgress := time.Now()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-f.progress:
			lastProgress = time.Now()
			continue
		case <-t.C:
		}
		if f.busy.Load() || time.Since(lastProgress) < c.stallAfter() {
			continue
		}
		info, err := askInfo(ctx, cons, every)
		switch {
		case ctx.Err() != nil:
			return ""
		case err != nil:
			failed++
			if failed >= 2 {
				return "the consumer does not answer: " + err.Error()
			}
		case info.NumPending > 0:
			return fmt.Sprintf("%d messages pending, none delivered for %v", info.NumPending, time.Since(lastProgress).Round(time.Millisecond))
		default:
			failed = 0
			lastProgress = time.Now() // idle: nothing to deliver
		}
	}
}

// askInfo is cons.Info within d. It asks on its own goroutine: the
// ordered consumer holds its lock through a recreation (up to 10 s), and
// Info waits for it whatever its context says.
func askInfo(ctx context.Context, cons jetstream.Consumer, d time.Duration) (*jetstream.ConsumerInfo, error) {
	type answer struct {
		info *jetstream.ConsumerInfo
		err  error
	}
	ch := make(chan answer, 1)
	ictx, cancel := context.WithTimeout(ctx, d)
	go func() {
		defer cancel()
		info, err := cons.Info(ictx)
		ch <- answer{info, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.info, a.err
	case <-t.C:
		return nil, fmt.Errorf("no consumer info within %v", d)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Consumer) decode(msg jetstream.Msg) domain.Delivery {
	var d domain.Delivery
	md, haveMeta := metadata(msg)
	if haveMeta {
		d.CaughtUp = md.pending == 0
		d.Seq = md.seq
	}
	if c.DecodeMsg != nil {
		got := c.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
		d.Event, d.Err, d.Type, d.Ignored, d.Heartbeat = got.Event, got.Err, got.Type, got.Ignored, got.Heartbeat
		if d.Err == nil && !d.Ignored && haveMeta {
			d.Event.Seq, d.Event.Stored = md.seq, md.stored
		}
		if d.Err == nil && !d.Ignored {
			if err := c.Decoder.CheckTime(d.Event); err != nil {
				d.Event, d.Err = domain.JobEvent{}, err
			}
		}
		return d
	}
	ev, err := c.Decoder.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
	if err != nil {
		d.Type = subjectType(c.Decoder.Subjects, msg.Subject())
		d.Err = err
		return d
	}
	// Decoded: its kind is the subject's (validate checks it), so the
	// subject need not be parsed a second time.
	d.Type = ev.Kind.Type()
	if haveMeta {
		ev.Seq, ev.Stored = md.seq, md.stored
	}
	if err := c.Decoder.CheckTime(ev); err != nil {
		d.Err = err
		return d
	}
	d.Event = ev
	return d
}

// subjectType is the event type a job subject names, "unknown" when it
// is not a job subject: the label of a message that did not decode.
func subjectType(subjects Subjects, subject string) string {
	if _, kind, ok := subjects.ParseJob(subject); ok {
		return kind.Type()
	}
	return "unknown"
}

// metadata is msg's stream sequence, time and pending count:
// parseAckReply's, or Metadata's when that declines.
func metadata(msg jetstream.Msg) (ackMeta, bool) {
	if md, ok := parseAckReply(msg.Reply()); ok {
		return md, true
	}
	md, err := msg.Metadata()
	if err != nil {
		return ackMeta{}, false
	}
	return ackMeta{seq: md.Sequence.Stream, stored: md.Timestamp, pending: md.NumPending}, true
}

// open creates the ordered consumer at stream sequence from (0: the first
// retained message), retrying while the bus is away. Its own resets try
// once: a consumer that cannot be recreated at once is Run's to open
// again (see Consumer).
func (c *Consumer) open(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: c.filters(), DeliverPolicy: jetstream.DeliverAllPolicy, MaxResetAttempts: 1}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	err := backoff.RetryNotify(func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		cons, err = c.JS.OrderedConsumer(cctx, c.stream(), cfg)
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
