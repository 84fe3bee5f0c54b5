package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/routing"
	"github.com/hodei/hodei-autoscaler/internal/sim"
)

// simMaxWorkers bounds the pools the simulator makes up when no config is
// given: high, so that the policy, not the cap, shapes the result.
const simMaxWorkers = 1000

// simFlags are simulate's flags.
type simFlags struct {
	cfgPath, idle, plot, saveTrace string
	input                          string
	compare, asJSON                bool
	src                            traceSource
	prov                           sim.Provisioning
	from, to                       time.Duration // the plot's window
}

func simulate(args []string, stdout, stderr io.Writer) int {
	f, code, done := parseSimulate(args, stdout, stderr)
	if done {
		return code
	}
	cfg, err := simConfig(f.cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	f.src.cfg, f.src.hasCfg = cfg, f.cfgPath != ""
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tr, name, err := loadTrace(ctx, f.src)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if f.saveTrace != "" {
		if err := writeFile(f.saveTrace, func(w io.Writer) error { return sim.WriteCSV(w, tr) }); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if tr, err = simRoute(cfg, f.input, tr); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	pools, label, err := simPools(cfg, f, tr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	rep, err := sim.Simulate(sim.Options{
		Trace: tr, Name: name, Pools: pools, Label: label, Seed: f.src.seed, Compare: f.compare, Timeline: f.plot != "",
		From: f.from, To: f.to, Provisioning: f.prov,
	})
	var shared *sharedRun
	if err == nil {
		shared, err = runShared(cfg, pools, tr, f)
	}
	if err == nil {
		err = writeReport(rep, append(rep.Charts(tr.Start), shared.charts(tr, pools)...), f, stdout)
	}
	if err == nil {
		err = shared.write(f, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func parseSimulate(args []string, stdout, stderr io.Writer) (f simFlags, code int, done bool) {
	fs := newFlags("simulate", "simulate [--config FILE] (--trace FILE | --generate KIND | --from-stream URL) [flags]", `Replays a trace of jobs in virtual time through the autoscaler's own engine
and policy, with a simulated provider, and reports per pool the jobs' queue
waits, the worker-seconds they cost, utilization, workers started and
stopped and the peak. See docs/simulator.md.`)
	fs.StringVar(&f.cfgPath, "config", "", "config whose pools to simulate (default: the pool defaults, max_workers "+strconv.Itoa(simMaxWorkers)+", for every pool of the trace)")
	fs.StringVar(&f.src.path, "trace", "", "trace file: CSV (job_id,pool,queued_at,duration) or NDJSON CloudEvents; - for stdin")
	fs.StringVar(&f.src.kind, "generate", "", "generate a trace: "+strings.Join(sim.Kinds, ", "))
	fs.Uint64Var(&f.src.seed, "seed", 1, "seed of the generated trace and of the provisioning times")
	fs.DurationVar(&f.src.span, "span", 0, "length of a generated trace (default: the kind's standard)")
	fs.Float64Var(&f.src.rate, "rate", 0, "mean arrivals per hour of a generated trace (default: the kind's standard)")
	fs.StringVar(&f.src.stream, "from-stream", "", "read the retained HODEI_JOBS stream of a running deployment at this NATS URL")
	fs.StringVar(&f.src.prefix, "subject-prefix", "", "nats.subject_prefix of that deployment (default: the config's, or hodei)")
	fs.StringVar(&f.src.creds, "nats-creds", "", "NATS credentials file for --from-stream")
	fs.StringVar(&f.src.start, "start", "", "RFC 3339 start of a CSV trace with relative times (default "+sim.DefaultStart.Format(time.RFC3339)+")")
	fs.DurationVar(&f.prov.Median, "provision", 20*time.Second, "median provisioning time of the simulated provider")
	fs.DurationVar(&f.prov.P95, "provision-p95", 30*time.Second, "95th percentile of the provisioning time (log-normal); not above --provision: fixed")
	fs.StringVar(&f.idle, "idle-workers", "", "override idle_workers of every pool (a count or auto)")
	fs.BoolVar(&f.compare, "compare", false, "also run the oracle and the other autoscalers' formulas")
	fs.BoolVar(&f.asJSON, "json", false, "write the report as JSON instead of Markdown")
	fs.StringVar(&f.plot, "plot", "", "write an SVG plot: jobs and workers over time (every compared run overlaid), and each run's distribution of queue waits")
	fs.DurationVar(&f.from, "from", 0, "start the plot's time panels this long after the trace's start (such as 8h50m)")
	fs.DurationVar(&f.to, "to", 0, "end the plot's time panels this long after the trace's start (default: the end)")
	fs.StringVar(&f.input, "input", "", "the config's input whose routing rules route the trace's jobs (default: the one input with routes or a default_pool)")
	fs.StringVar(&f.saveTrace, "save-trace", "", "write the trace used as CSV (for example to keep a generated one)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return f, code, true
	}
	if fs.NArg() > 0 {
		return f, refuseArgs(fs, stderr, fs.Args()), true
	}
	sources := 0
	for _, s := range []string{f.src.path, f.src.kind, f.src.stream} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		fmt.Fprintln(stderr, "simulate needs exactly one of --trace, --generate or --from-stream")
		fs.Usage()
		return f, 2, true
	}
	return f, 0, false
}

// simConfig is the config to simulate: the file, or the defaults.
func simConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Defaults(), nil
	}
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		return cfg, fmt.Errorf("invalid config %s:\n%s", path, indent(err))
	}
	return cfg, nil
}

// simRoute routes the trace's jobs with the routing rules of one of the
// config's inputs (docs/simulator.md): the named one, else the only input
// that has rules. Without rules a job keeps its own pool, and jobs that
// name none are left out and counted.
func simRoute(cfg config.Config, name string, tr *sim.Trace) (*sim.Trace, error) {
	var in *config.Input
	var withRules []string
	inputs := cfg.InputList()
	for i := range inputs {
		r := inputs[i].Router()
		if name != "" && inputs[i].Name == name {
			in = &inputs[i]
		}
		if len(r.Rules) > 0 || r.Default != "" {
			withRules = append(withRules, inputs[i].Name)
			if name == "" {
				in = &inputs[i]
			}
		}
	}
	switch {
	case name != "" && in == nil:
		names := make([]string, len(inputs))
		for i, x := range inputs {
			names[i] = x.Name
		}
		return nil, fmt.Errorf("--input %q: the config has no such input (inputs: %s)", name, strings.Join(names, ", "))
	case name == "" && len(withRules) > 1:
		return nil, fmt.Errorf("inputs %s all have routing rules: choose whose rules route the trace with --input", strings.Join(withRules, ", "))
	}
	if in == nil || (len(in.Routes) == 0 && in.DefaultPool == "") {
		if !slices.ContainsFunc(tr.Jobs, func(j sim.Job) bool { return j.Pool == "" }) {
			return tr, nil // every job keeps its own pool, as without rules
		}
		return sim.RouteTrace(tr, routing.Router{}, ""), nil
	}
	return sim.RouteTrace(tr, in.Router(), in.Name), nil
}

// simPools converts the pools to simulate (the config's, or one per pool
// of the trace with the defaults), with --idle-workers applied, and names
// the run.
func simPools(cfg config.Config, f simFlags, tr *sim.Trace) ([]engine.PoolConfig, string, error) {
	label := "config"
	if f.cfgPath == "" {
		label = "defaults"
		for _, p := range tr.Pools() {
			pc := config.PoolDefaults()
			pc.Name, pc.MaxWorkers, pc.MaxConcurrentProvisioning = p, simMaxWorkers, simMaxWorkers
			cfg.Pools = append(cfg.Pools, pc)
		}
	}
	if f.idle != "" {
		var idle config.IdleWorkers
		if f.idle == "auto" {
			idle.Auto = true
		} else if n, err := strconv.Atoi(f.idle); err == nil && n >= 0 {
			idle.Count = n
		} else {
			return nil, "", fmt.Errorf("--idle-workers %q: want a count or auto", f.idle)
		}
		for i := range cfg.Pools {
			cfg.Pools[i].IdleWorkers = idle
		}
		label += ", idle_workers " + f.idle
	}
	pools, err := cfg.EnginePools()
	return pools, label, err
}

// writeReport writes the plot of the charts, if asked for (each pool's,
// then each budget's with the budget as its line), and the report.
func writeReport(rep *sim.Report, charts []sim.PlotChart, f simFlags, stdout io.Writer) error {
	if f.plot != "" {
		if err := writeFile(f.plot, func(w io.Writer) error { return sim.WritePlot(w, charts) }); err != nil {
			return err
		}
	}
	if f.asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteMarkdown(stdout)
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
