package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/events"
)

// StreamOptions say where to read a deployment's job history.
type StreamOptions struct {
	URL string // nats://host:4222
	// SubjectPrefix is nats.subject_prefix of the deployment ("hodei").
	SubjectPrefix string
	// NATSOptions carry credentials (nats.UserCredentials, ...).
	NATSOptions []nats.Option
	// Timeout bounds the whole read (1 minute if zero).
	Timeout time.Duration
}

// ReadStream reads every message retained in the HODEI_JOBS stream of a
// running deployment, with an ordered consumer that leaves nothing behind
// on the server, and folds the job events into a trace (FromEvents).
// Events are taken at their CloudEvents time, or the stream's timestamp
// when they have none; invalid messages are counted as skipped.
func ReadStream(ctx context.Context, o StreamOptions) (*Trace, error) {
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "hodei"
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	nc, err := nats.Connect(o.URL, append([]nats.Option{nats.Name("hodei-autoscaler simulate")}, o.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", o.URL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	subjects := events.Subjects{Prefix: o.SubjectPrefix}
	stream, err := js.Stream(ctx, events.StreamJobs)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", events.StreamJobs, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.AllJobs()))
	if err != nil {
		return nil, fmt.Errorf("reading %s state: %w", events.StreamJobs, err)
	}
	if info.State.Msgs == 0 {
		return nil, fmt.Errorf("stream %s holds no job events", events.StreamJobs)
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.AllJobs()},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("opening a consumer on %s: %w", events.StreamJobs, err)
	}
	dec := events.Decoder{Subjects: subjects}
	var evs []Event
	skipped := 0
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", events.StreamJobs, err)
		}
		n := 0
		var seq, pending uint64
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			seq, pending = md.Sequence.Stream, md.NumPending
			ev, err := dec.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data()) // either CloudEvents mode
			if err != nil {
				skipped++
				continue
			}
			at := ev.Time
			if at.IsZero() {
				at = md.Timestamp
			}
			evs = append(evs, Event{Kind: ev.Kind, Pool: string(ev.Pool), JobID: string(ev.JobID), Time: at, Duration: labelDuration(ev.Labels),
				Attrs: eventAttrs(ev.Labels, &ev.Resources)})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("reading %s: %w", events.StreamJobs, err)
		}
		if n == 0 || pending == 0 || seq >= last {
			break // an empty fetch: nothing more matches
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %d of %d messages read: %w", events.StreamJobs, len(evs)+skipped, info.State.Msgs, err)
		}
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("stream %s holds no valid job event under %s (%d invalid)", events.StreamJobs, subjects.AllJobs(), skipped)
	}
	tr := FromEvents(evs)
	if skipped > 0 {
		if tr.Skipped == nil {
			tr.Skipped = map[string]int{}
		}
		tr.Skipped["invalid events in the stream"] += skipped
	}
	return tr, nil
}
