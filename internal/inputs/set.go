package inputs

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// Set reads every input. Make one per daemon (it remembers, across the
// reads a reload starts again, which messages the loop has had) and call
// Run for each read.
type Set struct {
	js       jetstream.JetStream
	subjects events.Subjects
	cfg      config.Config
	log      zerolog.Logger

	// The engine knows a message it has read by its sequence, which is
	// per stream: with more than one input, the set numbers the messages
	// itself (next), and a message of input i at or below seen[i] is one
	// the loop has had (it gets sequence 1, which the engine has passed).
	mu   sync.Mutex
	seen []uint64
	next uint64
}

// New makes the set of cfg's inputs.
func New(js jetstream.JetStream, subjects events.Subjects, cfg config.Config, log zerolog.Logger) *Set {
	return &Set{js: js, subjects: subjects, cfg: cfg, log: log, seen: make([]uint64, len(cfg.InputList()))}
}

// Run folds every input from its start and follows it until ctx ends;
// deliver gets every message, one call at a time. A delivery says caught
// up only once every input has caught up.
func (s *Set) Run(ctx context.Context, deliver func(domain.Delivery)) error {
	list := s.cfg.InputList()
	if len(list) == 1 && list[0].Format == config.FormatCloudEvents && len(list[0].Routes) == 0 && list[0].DefaultPool == "" {
		return s.consumer(list[0]).Run(ctx, deliver) // exactly as before inputs
	}
	caught := make([]bool, len(list))
	left := len(list)
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, in := range list {
		c := s.consumer(in)
		wg.Go(func() {
			errs[i] = c.Run(ctx, func(d domain.Delivery) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if d.Seq != 0 {
					if d.Seq <= s.seen[i] {
						d.Seq = 1
					} else {
						s.seen[i] = d.Seq
						s.next++
						d.Seq = s.next
					}
					d.Event.Seq = d.Seq
				}
				if d.CaughtUp && !caught[i] {
					caught[i] = true
					left--
				}
				d.CaughtUp = d.CaughtUp && left == 0
				if d.Marker && !d.CaughtUp {
					return
				}
				deliver(d)
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// consumer reads one input.
func (s *Set) consumer(in config.Input) *events.Consumer {
	log := s.log.With().Str("input", in.Name).Logger()
	dec := events.Decoder{Subjects: s.subjects, MaxBytes: s.cfg.NATS.MaxEventBytes, MaxClockSkew: s.cfg.NATS.MaxClockSkew.D(), Workers: events.NewInterner()}
	c := &events.Consumer{JS: s.js, Decoder: dec, Log: log}
	switch in.Format {
	case config.FormatHodeiJobs:
		c.Stream = OwnStream(in)
		prefix := ownPrefix(s.subjects.Prefix, in)
		c.Filters = []string{prefix + ">"}
		hd := hodeijobs.New(in.Router(), s.cfg.NATS.MaxEventBytes)
		c.DecodeMsg = func(_ string, _ nats.Header, data []byte) domain.Delivery {
			r := hd.Decode(data)
			return domain.Delivery{Event: r.Event, Err: r.Err, Type: r.Type, Ignored: r.Ignored, Heartbeat: r.Heartbeat}
		}
	default:
		if !isDefault(s.subjects, in) {
			c.Filters = in.Subjects
		}
		if len(in.Routes) > 0 || in.DefaultPool != "" {
			rt := newCERouter(in.Router())
			c.DecodeMsg = func(subject string, h nats.Header, data []byte) domain.Delivery {
				typ := "unknown"
				if _, kind, ok := s.subjects.ParseJob(subject); ok {
					typ = kind.Type()
				}
				ev, err := dec.DecodeMsg(subject, h, data)
				if err != nil {
					return domain.Delivery{Err: err, Type: typ}
				}
				return rt.route(ev, typ)
			}
		}
	}
	return c
}

func isDefault(subjects events.Subjects, in config.Input) bool {
	return len(in.Subjects) == 1 && in.Subjects[0] == subjects.AllJobs()
}

// ceRouter routes the own contract's jobs with an input's rules: a job's
// queued event decides its pool (from the subject's pool and the labels),
// its later events follow it there.
type ceRouter struct {
	r    routing.Router
	jobs map[domain.JobID]domain.PoolName
}

func newCERouter(r routing.Router) *ceRouter {
	return &ceRouter{r: r, jobs: map[domain.JobID]domain.PoolName{}}
}

func (c *ceRouter) route(ev domain.JobEvent, typ string) domain.Delivery {
	pool, known := c.jobs[ev.JobID]
	if !known {
		p, err := c.r.Route(routing.Attrs{Pool: string(ev.Pool), Labels: ev.Labels,
			CPUMillis: ev.Resources.CPUMillis, MemoryMB: ev.Resources.MemoryMB})
		if err != nil {
			return domain.Delivery{Err: &domain.InvalidError{Reason: domain.ReasonNoRoute, Detail: "job " + string(ev.JobID) + ": " + err.Error()}, Type: typ}
		}
		pool = domain.PoolName(p)
		if len(c.jobs) >= 1<<20 {
			clear(c.jobs) // bounded; a forgotten job is routed again from its event
		}
		c.jobs[ev.JobID] = pool
	}
	if ev.Kind == domain.JobFinished {
		delete(c.jobs, ev.JobID)
	}
	ev.Pool = pool
	return domain.Delivery{Event: ev, Type: typ}
}
