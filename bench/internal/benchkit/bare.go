package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/events"
)

// BareRead is one bare read of the job stream.
type BareRead struct {
	Kind string // which consumer
	// Connect is when the read started (before connecting), Ready when
	// the consumer existed, First and Last when the first and the n-th
	// message arrived.
	Connect, Ready, First, Last time.Time
	// CPU is the process's CPU time from the start to the n-th message
	// (the NATS server's too, when it runs in this process).
	CPU time.Duration
}

// Rate is messages per second from the first to the last message.
func (b BareRead) Rate(n int) float64 { return float64(n-1) / b.Last.Sub(b.First).Seconds() }

// Total is the time from the start (connecting) to the last message.
func (b BareRead) Total() time.Duration { return b.Last.Sub(b.Connect) }

// Bare consumer kinds. Each is a plain JetStream client doing nothing per
// message but count: the physical floor of reading the stream.
const (
	BareConsume  = "ordered consumer, Consume callback"
	BareMessages = "ordered consumer, Messages iterator"
)

// ReadBare drains the job stream's first n messages with an ordered
// consumer (ephemeral, no acks: the fastest JetStream consumer for reading
// a stream once in order) that only counts them.
func ReadBare(ctx context.Context, url string, n, pullMax int, kind string) (BareRead, error) {
	return ReadBareFrom(ctx, url, events.StreamJobs, Subjects.AllJobs(), n, pullMax, kind)
}

// ReadBareFrom is ReadBare on another stream and filter (the daemon's
// own stream of a hodei-jobs input).
func ReadBareFrom(ctx context.Context, url, stream, filter string, n, pullMax int, kind string) (BareRead, error) {
	r := BareRead{Kind: kind, Connect: time.Now()}
	cpu := ProcessCPU()
	if n < 1 {
		// No message would ever be the n-th: the read would wait for ctx.
		return r, fmt.Errorf("bare read of %d messages: at least one is needed", n)
	}
	nc, js, err := Connect(url)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return r, fmt.Errorf("bare consumer: %w", err)
	}
	r.Ready = time.Now()
	count := 0
	done := make(chan struct{})
	switch kind {
	case BareConsume:
		cc, err := cons.Consume(func(jetstream.Msg) {
			count++
			if count == 1 {
				r.First = time.Now()
			}
			if count == n {
				r.Last = time.Now()
				close(done)
			}
		}, jetstream.PullMaxMessages(pullMax))
		if err != nil {
			return r, fmt.Errorf("bare consume: %w", err)
		}
		defer cc.Stop()
	case BareMessages:
		it, err := cons.Messages(jetstream.PullMaxMessages(pullMax))
		if err != nil {
			return r, fmt.Errorf("bare messages: %w", err)
		}
		defer it.Stop()
		go func() {
			for {
				if _, err := it.Next(); err != nil {
					return
				}
				count++
				if count == 1 {
					r.First = time.Now()
				}
				if count == n {
					r.Last = time.Now()
					close(done)
					return
				}
			}
		}()
	default:
		return r, fmt.Errorf("unknown bare consumer %q", kind)
	}
	select {
	case <-done:
		r.CPU = ProcessCPU() - cpu
		return r, nil
	case <-ctx.Done():
		return r, fmt.Errorf("bare read: %d of %d messages: %w", count, n, ctx.Err())
	}
}
