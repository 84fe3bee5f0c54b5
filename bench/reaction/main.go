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
	"runtime/trace"
	"slices"
	"strings"
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

// reps is how many times each schedule runs (bus, then daemon).
var (
	reps      = 3
	traceFile string
)

func main() {
	n := flag.Int("events", 10_000, "events per schedule")
	rate := flag.Float64("rate", 1000, "steady rate (events/s)")
	burst := flag.Int("burst", 500, "burst size")
	every := flag.Duration("every", time.Second, "time between bursts")
	out := flag.String("out", "bench/out/reaction.json", "result file")
	cpuprof := flag.String("cpuprofile", "", "CPU profile of the daemon's first run of the first schedule")
	only := flag.String("schedules", "steady,bursts", "schedules to run (steady, bursts)")
	flag.StringVar(&traceFile, "trace", "", "with -cpuprofile: an execution trace of the same run (go tool trace -pprof=sched)")
	flag.IntVar(&reps, "reps", 3, "runs of each schedule, bus and daemon alternating")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("reaction: ")
	res := benchkit.NewResult("reaction")
	var scheds []schedule
	for _, name := range strings.Split(*only, ",") {
		switch strings.TrimSpace(name) {
		case "steady":
			scheds = append(scheds, steady(*n, *rate))
		case "bursts":
			scheds = append(scheds, bursts(*n, *burst, *every))
		default:
			log.Fatalf("-schedules: unknown %q (steady, bursts)", name)
		}
	}
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
	for _, s := range scheds {
		// Alternating bus and daemon runs: the machine's load drifts over
		// both alike; each run's p99 is kept for the spread.
		var bus, ours []time.Duration
		var busP99, oursP99, added []time.Duration
		for r := range reps {
			b, err := measureBus(ctx, url, s)
			if err != nil {
				return fmt.Errorf("%s, bus: %w", s.name, err)
			}
			prof := ""
			if r == 0 && s.name == scheds[0].name {
				prof = cpuprof
			}
			o, err := measureDaemon(ctx, url, s, prof)
			if err != nil {
				return fmt.Errorf("%s, daemon: %w", s.name, err)
			}
			bd, od := benchkit.Summarise(slices.Clone(b)), benchkit.Summarise(slices.Clone(o))
			res.Detail("- %s, run %d of %d (load %s): bus publish→delivery %s; daemon publish→create %s", s.desc, r+1, reps, benchkit.LoadAvg(), bd, od)
			bus, ours = append(bus, b...), append(ours, o...)
			busP99, oursP99, added = append(busP99, bd.P99), append(oursP99, od.P99), append(added, od.P99-bd.P99)
		}
		b, o := benchkit.Summarise(bus), benchkit.Summarise(ours)
		bp, op, ad := benchkit.Summarise(busP99), benchkit.Summarise(oursP99), benchkit.Summarise(added)
		x := float64(o.P99) / float64(b.P99)
		add := o.P99 - b.P99
		ok := (o.P99 <= 5*time.Millisecond && x <= 10) || add <= 2*time.Millisecond
		target := "p99 ≤ 5 ms and ≤ 10× bus p99, or (issue 16) the daemon adds ≤ 2 ms to the bus's p99"
		met := benchkit.YesNo(ok)
		// The margin to the 2 ms target against the spread of what the
		// daemon adds over the runs.
		if spread := ad.Max - ad.Min; reps > 1 && spread > absDur(2*time.Millisecond-add) {
			met += fmt.Sprintf(" — but the spread of the p99 added over %d runs (%s to %s) is wider than the margin to 2 ms (%s): not a result", reps, signed(ad.Min), signed(ad.Max), signed(2*time.Millisecond-add))
		}
		note := fmt.Sprintf("%d events in %d runs; per-run p99: bus %s to %s, daemon %s to %s, added %s to %s; fake recording provider (create answers at once); NATS external to the daemon (same process), TCP loopback",
			o.N, reps, benchkit.Dur(bp.Min), benchkit.Dur(bp.Max), benchkit.Dur(op.Min), benchkit.Dur(op.Max), signed(ad.Min), signed(ad.Max))
		if b.P99 > 5*time.Millisecond {
			note = fmt.Sprintf("the bus alone has p99 %s on this schedule (the last events of a burst queue at the server behind the others), so 5 ms is below the physical floor here; ", benchkit.Dur(b.P99)) + note
		}
		res.Rows = append(res.Rows, benchkit.Row{
			ID:        "2" + map[string]string{"steady": "a", "bursts": "b"}[s.name],
			What:      "reaction: queued publish → provider create call, " + s.desc,
			Reference: "NATS publish→delivery, same server and schedule: " + short(b),
			Ours:      short(o),
			Ratio:     benchkit.Ratio(x) + " (p99); adds " + signed(add) + " at p99",
			Target:    target,
			Met:       met,
			Note:      note,
		})
	}
	return nil
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

// signed formats a difference of durations with its sign.
func signed(d time.Duration) string {
	if d < 0 {
		return "−" + benchkit.Dur(-d)
	}
	return "+" + benchkit.Dur(d)
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
		if traceFile != "" {
			f, err := os.Create(traceFile)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if err := trace.Start(f); err != nil {
				return nil, err
			}
			defer trace.Stop()
		}
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
