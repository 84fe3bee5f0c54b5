// Command reaction measures row 2 of the benchmark suite: the time from a
// job.queued publish to the provider's create call, through a whole daemon
// (internal/app) on a real NATS server, against the same server's own
// publish-to-delivery latency measured in the same run with the same
// publishing schedule.
//
// Two schedules: a steady rate, and bursts. Each is run first against a
// bare JetStream consumer (the reference: it only timestamps arrivals),
// then against the daemon, whose single pool uses the fake recording
// provider (internal/testutil/fakeprovider: it records the create call's
// time and answers at once, so what is measured is the daemon's own path).
//
// Publish i is paired with the i-th arrival (bus) or the i-th create call
// (daemon): the stream is ordered and the daemon serves demand first come
// first served, so the pairing is the per-event latency.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// schedule is when each event is published, relative to the start.
type schedule struct {
	name, desc string
	at         []time.Duration
}

func steady(n int, rate float64) schedule {
	s := schedule{name: "steady", desc: fmt.Sprintf("steady %.0f events/s", rate)}
	for i := range n {
		s.at = append(s.at, time.Duration(float64(i)/rate*float64(time.Second)))
	}
	return s
}

func bursts(n, size int, every time.Duration) schedule {
	s := schedule{name: "bursts", desc: fmt.Sprintf("bursts of %d every %s", size, every)}
	for i := range n {
		s.at = append(s.at, time.Duration(i/size)*every)
	}
	return s
}

const pool = domain.PoolName("react")

func main() {
	n := flag.Int("events", 10_000, "events per schedule")
	rate := flag.Float64("rate", 1000, "steady rate (events/s)")
	burst := flag.Int("burst", 500, "burst size")
	every := flag.Duration("every", time.Second, "time between bursts")
	out := flag.String("out", "bench/out/reaction.json", "result file")
	cpuprof := flag.String("cpuprofile", "", "CPU profile of the daemon's steady phase")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("reaction: ")
	res := benchkit.NewResult("reaction")
	scheds := []schedule{steady(*n, *rate), bursts(*n, *burst, *every)}
	if err := run(res, scheds, *cpuprof); err != nil {
		log.Printf("error: %v", err)
		res.Rows = append(res.Rows, benchkit.NotRun("2", "reaction", "error: "+err.Error()))
		_ = res.Write(*out)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		log.Fatal(err)
	}
}

func run(res *benchkit.Result, scheds []schedule, cpuprof string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hodei-bench-reaction-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := benchkit.StartNATS(dir)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	if err := benchkit.EnsureStreams(ctx, url); err != nil {
		return err
	}
	for i, s := range scheds {
		bus, err := measureBus(ctx, url, s)
		if err != nil {
			return fmt.Errorf("%s, bus: %w", s.name, err)
		}
		prof := ""
		if i == 0 {
			prof = cpuprof
		}
		ours, err := measureDaemon(ctx, url, s, prof)
		if err != nil {
			return fmt.Errorf("%s, daemon: %w", s.name, err)
		}
		b, o := benchkit.Summarise(bus), benchkit.Summarise(ours)
		res.Detail("- %s: bus publish→delivery %s", s.desc, b)
		res.Detail("- %s: daemon publish→create %s", s.desc, o)
		x := float64(o.P99) / float64(b.P99)
		ok := o.P99 <= 5*time.Millisecond && x <= 10
		note := fmt.Sprintf("%d events; fake recording provider (create answers at once); NATS external to the daemon (same process), TCP loopback", o.N)
		if !ok && b.P99 > 5*time.Millisecond {
			note = fmt.Sprintf("the bus alone has p99 %s on this schedule (the last events of a burst queue at the server behind the others), so 5 ms is below the physical floor here; the daemon adds %s at p99; ",
				benchkit.Dur(b.P99), benchkit.Dur(o.P99-b.P99)) + note
		}
		res.Rows = append(res.Rows, benchkit.Row{
			ID:        fmt.Sprintf("2%c", 'a'+i),
			What:      "reaction: queued publish → provider create call, " + s.desc,
			Reference: "NATS publish→delivery, same server and schedule: " + short(b),
			Ours:      short(o),
			Ratio:     benchkit.Ratio(x) + " (p99)",
			Target:    "p99 ≤ 5 ms and ≤ 10× bus p99",
			Met:       benchkit.YesNo(ok),
			Note:      note,
		})
	}
	return nil
}

func short(d benchkit.Dist) string {
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s", benchkit.Dur(d.P50), benchkit.Dur(d.P95), benchkit.Dur(d.P99))
}

// payloads pre-encodes the schedule's events (jobs never start, so every
// queued event is new demand for one worker).
func payloads(s schedule, tag string) (subjects []string, data [][]byte, ids []string, err error) {
	now := time.Now()
	for i := range s.at {
		subj, p, id, err := benchkit.Encode(benchkit.Event{Pool: pool, Kind: domain.JobQueued, Job: fmt.Sprintf("%s-%s-%06d", tag, s.name, i)}, now.Add(s.at[i]))
		if err != nil {
			return nil, nil, nil, err
		}
		subjects, data, ids = append(subjects, subj), append(data, p), append(ids, id)
	}
	return subjects, data, ids, nil
}

// publish sends the events on schedule and returns each publish instant
// (taken just before the publish call).
func publish(ctx context.Context, js jetstream.JetStream, s schedule, subjects []string, data [][]byte, ids []string) ([]time.Time, error) {
	sent := make([]time.Time, len(s.at))
	futures := make([]jetstream.PubAckFuture, 0, len(s.at))
	start := time.Now().Add(10 * time.Millisecond)
	for i, at := range s.at {
		if d := time.Until(start.Add(at)); d > 0 {
			time.Sleep(d)
		}
		sent[i] = time.Now()
		f, err := js.PublishAsync(subjects[i], data[i], jetstream.WithMsgID(ids[i]))
		if err != nil {
			return nil, err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return sent, nil
}

func purge(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, events.StreamJobs)
	if err != nil {
		return err
	}
	return st.Purge(ctx)
}

// measureBus publishes the schedule to a bare ordered consumer that only
// records arrival times.
func measureBus(ctx context.Context, url string, s schedule) ([]time.Duration, error) {
	nc, js, err := benchkit.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := purge(ctx, js); err != nil {
		return nil, err
	}
	subjects, data, ids, err := payloads(s, "bus")
	if err != nil {
		return nil, err
	}
	cnc, cjs, err := benchkit.Connect(url)
	if err != nil {
		return nil, err
	}
	defer cnc.Close()
	cons, err := cjs.OrderedConsumer(ctx, events.StreamJobs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{benchkit.Subjects.AllJobs()}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	got := make([]time.Time, 0, len(s.at))
	done := make(chan struct{})
	cc, err := cons.Consume(func(jetstream.Msg) {
		got = append(got, time.Now())
		if len(got) == len(s.at) {
			close(done)
		}
	}, jetstream.PullMaxMessages(2000))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	time.Sleep(100 * time.Millisecond) // the consumer's first pull is in place
	sent, err := publish(ctx, js, s, subjects, data, ids)
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("bare consumer got %d of %d", len(got), len(s.at))
	}
	return pair(sent, got), nil
}

// measureDaemon runs a whole daemon and publishes the schedule.
func measureDaemon(ctx context.Context, url string, s schedule, cpuprof string) ([]time.Duration, error) {
	nc, js, err := benchkit.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := purge(ctx, js); err != nil {
		return nil, err
	}
	subjects, data, ids, err := payloads(s, "daemon")
	if err != nil {
		return nil, err
	}
	const warm = 100
	var mu sync.Mutex
	created := make([]time.Time, 0, len(s.at)+warm)
	all := make(chan struct{})
	fake := fakeprovider.New(pool)
	fake.OnCreate = func(_ domain.WorkerID, at time.Time) {
		mu.Lock()
		created = append(created, at)
		if len(created) == len(s.at)+warm {
			close(all)
		}
		mu.Unlock()
	}
	cfg, err := benchkit.Config(url, "", 0, []string{string(pool)}, func(p *config.Pool) {
		p.MaxWorkers = len(s.at) + warm + 10
		p.MaxConcurrentProvisioning = len(s.at) + warm + 10
		p.IdleTimeout = config.Fixed(time.Hour)
	})
	if err != nil {
		return nil, err
	}
	d, err := benchkit.StartDaemon(cfg, map[string]providers.Provider{string(pool): fake}, zerolog.New(io.Discard))
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	if _, err := d.WaitReady(30 * time.Second); err != nil {
		return nil, err
	}
	// Warm-up, not measured: the first listing is in, the paths are hot.
	wsub, wdata, wids, err := payloads(steady(warm, 1000), "warm")
	if err != nil {
		return nil, err
	}
	if _, err := publish(ctx, js, steady(warm, 1000), wsub, wdata, wids); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(created)
		mu.Unlock()
		if n == warm {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("warm-up: %d of %d creates", n, warm)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cpuprof != "" {
		stop, err := benchkit.StartCPU(cpuprof)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	sent, err := publish(ctx, js, s, subjects, data, ids)
	if err != nil {
		return nil, err
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("daemon made %d of %d creates", len(created)-warm, len(s.at))
	}
	mu.Lock()
	defer mu.Unlock()
	got := slices.Clone(created[warm:])
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	return pair(sent, got), nil
}

func pair(sent, got []time.Time) []time.Duration {
	out := make([]time.Duration, len(sent))
	for i := range sent {
		out[i] = got[i].Sub(sent[i])
	}
	return out
}
