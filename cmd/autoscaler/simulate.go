package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/sim"
)

// simMaxWorkers bounds the pools the simulator makes up when no config is
// given: high, so that the policy, not the cap, shapes the result.
const simMaxWorkers = 1000

func simulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: autoscaler simulate [--config FILE] (--trace FILE | --generate KIND | --from-stream URL) [flags]

Replays a trace of jobs in virtual time through the autoscaler's own engine
and policy, with a simulated provider, and reports per pool the jobs' queue
waits, the worker-seconds they cost, utilization, workers started and
stopped and the peak. See docs/simulator.md.

`)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "config whose pools to simulate (default: the pool defaults, max_workers "+strconv.Itoa(simMaxWorkers)+", for every pool of the trace)")
	tracePath := fs.String("trace", "", "trace file: CSV (job_id,pool,queued_at,duration) or NDJSON CloudEvents; - for stdin")
	generate := fs.String("generate", "", "generate a trace: steady, burst or diurnal")
	seed := fs.Uint64("seed", 1, "seed of the generated trace and of the provisioning times")
	span := fs.Duration("span", 0, "length of a generated trace (default: the kind's standard)")
	rate := fs.Float64("rate", 0, "mean arrivals per hour of a generated trace (default: the kind's standard)")
	fromStream := fs.String("from-stream", "", "read the retained HODEI_JOBS stream of a running deployment at this NATS URL")
	prefix := fs.String("subject-prefix", "", "nats.subject_prefix of that deployment (default: the config's, or hodei)")
	creds := fs.String("nats-creds", "", "NATS credentials file for --from-stream")
	start := fs.String("start", "", "RFC 3339 start of a CSV trace with relative times (default "+sim.DefaultStart.Format(time.RFC3339)+")")
	provMedian := fs.Duration("provision", 20*time.Second, "median provisioning time of the simulated provider")
	provP95 := fs.Duration("provision-p95", 30*time.Second, "95th percentile of the provisioning time (log-normal); not above --provision: fixed")
	idle := fs.String("idle-workers", "", "override idle_workers of every pool (a count or auto)")
	compare := fs.Bool("compare", false, "also run the oracle and the other autoscalers' formulas")
	asJSON := fs.Bool("json", false, "write the report as JSON instead of Markdown")
	plot := fs.String("plot", "", "write an SVG plot of pending jobs, desired and actual workers over time")
	saveTrace := fs.String("save-trace", "", "write the trace used as CSV (for example to keep a generated one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sources := 0
	for _, s := range []string{*tracePath, *generate, *fromStream} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "simulate needs exactly one of --trace, --generate or --from-stream")
		fs.Usage()
		return 2
	}

	var cfg config.Config
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath, os.Environ()); err != nil {
			fmt.Fprintf(stderr, "invalid config %s:\n%s\n", *cfgPath, indent(err))
			return 1
		}
	} else {
		cfg = config.Defaults()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tr, name, err := loadTrace(ctx, traceSource{path: *tracePath, kind: *generate, seed: *seed, span: *span, rate: *rate,
		stream: *fromStream, prefix: *prefix, creds: *creds, start: *start, cfg: cfg, hasCfg: *cfgPath != ""})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *saveTrace != "" {
		if err := writeFile(*saveTrace, func(w io.Writer) error { return sim.WriteCSV(w, tr) }); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}

	if *cfgPath == "" {
		for _, p := range tr.Pools() {
			pc := config.PoolDefaults()
			pc.Name, pc.MaxWorkers, pc.MaxConcurrentProvisioning = p, simMaxWorkers, simMaxWorkers
			cfg.Pools = append(cfg.Pools, pc)
		}
	}
	var pools []engine.PoolConfig
	for _, pc := range cfg.Pools {
		if *idle != "" {
			if *idle == "auto" {
				pc.IdleWorkers = config.IdleWorkers{Auto: true}
			} else if n, err := strconv.Atoi(*idle); err == nil && n >= 0 {
				pc.IdleWorkers = config.IdleWorkers{Count: n}
			} else {
				fmt.Fprintf(stderr, "--idle-workers %q: want a count or auto\n", *idle)
				return 2
			}
		}
		pools = append(pools, app.PoolConfig(cfg, pc))
	}
	label := "config"
	if *cfgPath == "" {
		label = "defaults"
	}
	if *idle != "" {
		label += ", idle_workers " + *idle
	}
	rep, err := sim.Simulate(sim.Options{
		Trace: tr, Name: name, Pools: pools, Label: label, Seed: *seed, Compare: *compare, Timeline: *plot != "",
		Provisioning: sim.Provisioning{Median: *provMedian, P95: *provP95},
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *plot != "" {
		if err := writeFile(*plot, func(w io.Writer) error { return sim.WritePlot(w, rep.Charts(tr.Start)) }); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteMarkdown(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

type traceSource struct {
	path, kind     string
	seed           uint64
	span           time.Duration
	rate           float64
	stream, prefix string
	creds, start   string
	cfg            config.Config
	hasCfg         bool
}

func loadTrace(ctx context.Context, s traceSource) (*sim.Trace, string, error) {
	switch {
	case s.kind != "":
		o, err := sim.StandardGen(s.kind, s.seed)
		if err != nil {
			return nil, "", err
		}
		o.Span, o.Rate = s.span, s.rate
		if s.hasCfg && len(s.cfg.Pools) > 0 {
			o.Pool = s.cfg.Pools[0].Name
		}
		tr, err := sim.Generate(o)
		return tr, fmt.Sprintf("generated %s, seed %d, %d jobs", s.kind, s.seed, len(tr.Jobs)), err
	case s.stream != "":
		prefix := s.prefix
		if prefix == "" && s.hasCfg {
			prefix = s.cfg.NATS.SubjectPrefix
		}
		var opts []nats.Option
		if s.creds != "" {
			opts = append(opts, nats.UserCredentials(s.creds))
		}
		tr, err := sim.ReadStream(ctx, sim.StreamOptions{URL: s.stream, SubjectPrefix: prefix, NATSOptions: opts})
		if err != nil {
			return nil, "", err
		}
		return tr, fmt.Sprintf("stream HODEI_JOBS at %s, %d jobs", s.stream, len(tr.Jobs)), nil
	}
	startAt := sim.DefaultStart
	if s.start != "" {
		t, err := time.Parse(time.RFC3339, s.start)
		if err != nil {
			return nil, "", fmt.Errorf("--start %q: want an RFC 3339 time such as 2026-01-05T00:00:00Z", s.start)
		}
		startAt = t
	}
	var r io.Reader = os.Stdin
	if s.path != "-" {
		f, err := os.Open(s.path)
		if err != nil {
			return nil, "", fmt.Errorf("opening trace: %w", err)
		}
		defer f.Close()
		r = f
	}
	tr, err := sim.ReadTrace(r, s.path, startAt)
	if err != nil {
		return nil, "", err
	}
	if len(tr.Jobs) == 0 {
		return nil, "", errors.New("the trace holds no job")
	}
	return tr, fmt.Sprintf("%s, %d jobs", s.path, len(tr.Jobs)), nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
