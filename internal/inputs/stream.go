// Package inputs reads job events from every configured input (config
// inputs): the daemon's own CloudEvents contract from HODEI_JOBS, and a
// Hodei server's own events, which a stream of the daemon's own sources
// from HODEI_EVENTS. Each input is folded from its stream's first
// retained message and then followed, as HODEI_JOBS always was, and the
// scaling loop is told it has caught up only when every input has.
package inputs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// ErrWorkQueue is returned when the Hodei stream has work-queue
// retention: reading it would take its messages from Hodei itself.
var ErrWorkQueue = errors.New("stream has work-queue retention")

// OwnStream is the daemon's stream for a hodei-jobs input: limits
// retention, sourcing the Hodei server's stream.
func OwnStream(in config.Input) string {
	return "HODEI_AUTOSCALER_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(in.Name))
}

// ownPrefix is what the subject transform puts before Hodei's subjects
// in the daemon's stream: <prefix>.in.<input name>.
func ownPrefix(prefix string, in config.Input) string {
	return prefix + ".in." + in.Name + "."
}

// transforms map each of the input's subjects into the daemon's stream
// (a JetStream subject transform: the server filters and renames, the
// daemon copies nothing itself).
func transforms(prefix string, in config.Input) []jetstream.SubjectTransformConfig {
	out := make([]jetstream.SubjectTransformConfig, 0, len(in.Subjects))
	for _, s := range in.Subjects {
		toks := strings.Split(s, ".")
		n := 0
		for i, t := range toks {
			if t == "*" {
				n++
				toks[i] = fmt.Sprintf("{{wildcard(%d)}}", n)
			}
		}
		out = append(out, jetstream.SubjectTransformConfig{Source: s, Destination: ownPrefix(prefix, in) + strings.Join(toks, ".")})
	}
	return out
}

// EnsureStreams makes the daemon's own stream of every hodei-jobs input,
// sourcing the Hodei server's stream through subject transforms, and
// refuses a Hodei stream with work-queue retention (Hodei before commit
// d190b31 created HODEI_EVENTS so: any reader there, a stream source
// included, removes the messages Hodei's own consumers are waiting for).
// It retries while the bus is unreachable, until ctx ends.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg config.Config, log zerolog.Logger) error {
	for _, in := range cfg.InputList() {
		if in.Format != config.FormatHodeiJobs {
			continue
		}
		if err := ensureHodei(ctx, js, cfg, in, log); err != nil {
			return err
		}
	}
	return nil
}

func ensureHodei(ctx context.Context, js jetstream.JetStream, cfg config.Config, in config.Input, log zerolog.Logger) error {
	s := cfg.NATS.Streams
	own := jetstream.StreamConfig{
		Name:        OwnStream(in),
		Description: "hodei-autoscaler: " + in.Stream + " sourced for input " + in.Name + " (limits retention, folded at start)",
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      s.MaxAge.D(),
		MaxBytes:    int64(s.MaxBytes),
		Replicas:    s.Replicas,
		Sources: []*jetstream.StreamSource{{
			Name:              in.Stream,
			SubjectTransforms: transforms(cfg.NATS.SubjectPrefix, in),
		}},
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 0
	op := func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		origin, err := js.Stream(cctx, in.Stream)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			log.Warn().Str("stream", in.Stream).Str("input", in.Name).
				Msg("the Hodei stream does not exist yet; sourcing it once Hodei creates it (its retention cannot be checked now)")
		case err != nil:
			return fmt.Errorf("looking up stream %s: %w", in.Stream, err)
		case origin.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy:
			return backoff.Permanent(fmt.Errorf("inputs %s: %s: %w: reading it would take its messages from Hodei's own consumers. "+
				"Upgrade Hodei to a version that creates it with interest retention (commit d190b31 of 2026-01-04 or later), "+
				"or recreate the stream with interest retention, then start the daemon again", in.Name, in.Stream, ErrWorkQueue))
		}
		if !s.Create {
			if _, err := js.Stream(cctx, own.Name); err != nil {
				return backoff.Permanent(fmt.Errorf("stream %s (input %s): %w; nats.streams.create is false: create it (sourcing %s) or set create: true", own.Name, in.Name, err, in.Stream))
			}
			return nil
		}
		if _, err := js.CreateOrUpdateStream(cctx, own); err != nil {
			return fmt.Errorf("creating stream %s sourcing %s: %w", own.Name, in.Stream, err)
		}
		log.Info().Str("stream", own.Name).Str("source", in.Stream).Strs("subjects", in.Subjects).Msg("input stream ready")
		return nil
	}
	return backoff.RetryNotify(op, backoff.WithContext(bo, ctx), func(err error, wait time.Duration) {
		log.Warn().Err(err).Stringer("retry_in", wait).Msg("cannot set up the input stream; retrying")
	})
}
