// Command autoscaler is the hodei-autoscaler daemon and its tools:
//
//	autoscaler run --config FILE        the daemon (the default command)
//	autoscaler validate --config FILE   check a config, print every problem
//	autoscaler queue --pool P --count N publish job.queued events (for trying it out)
//	autoscaler version
//
// It only parses flags and wires parts together; the daemon lives in
// internal/app.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(args, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "queue":
		return queue(args, stdout, stderr)
	case "simulate":
		return simulate(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hodei-autoscaler", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: autoscaler [command] [flags]

commands:
  run --config FILE         run the daemon (default)
  validate --config FILE    check a config; print every problem; exit 1 on any
  queue --config FILE --pool P --count N [--duration 10s]
                            publish job.queued events, to try the daemon out
  simulate [--config FILE] (--trace FILE | --generate KIND | --from-stream URL) [--compare] [--plot out.svg]
                            backtest a policy on a trace in virtual time (docs/simulator.md)
  version                   print the version

Every config key can be overridden by AUTOSCALER_<PATH> (e.g. AUTOSCALER_NATS_URL).
`)
}

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("AUTOSCALER_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	return fs.String("config", def, "path to the YAML config (env AUTOSCALER_CONFIG)")
}

func runDaemon(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	logFormat := fs.String("log-format", "", "json or console (overrides log.format)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "invalid config %s:\n%s\n", *path, indent(err))
		return 1
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	log.Info().Str("version", version).Str("config", *path).Str("name", cfg.Name).Int("pools", len(cfg.Pools)).Msg("starting")
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	log.Info().Str("http", a.HTTPAddr()).Str("nats", a.BusURL()).Msg("ready to scale")
	if err := a.Run(ctx); err != nil {
		log.Error().Err(err).Msg("stopped")
		return 1
	}
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s is invalid:\n%s\n", *path, indent(err))
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d pool(s)\n", *path, len(cfg.Pools))
	for _, p := range cfg.Pools {
		fmt.Fprintf(stdout, "  %s: provider %s, workers %d..%d, %d job(s) per worker\n", p.Name, p.Provider, p.MinWorkers, p.MaxWorkers, p.JobsPerWorker)
	}
	return 0
}

// loadConfig reads, validates and checks the config with each pool's
// provider, reporting every problem, before anything connects.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		return cfg, err
	}
	var errs []error
	for i, p := range cfg.Pools {
		if err := factory.Validate(p); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("pools[%d] (%s).%s", i, p.Name, line))
			}
		}
	}
	return cfg, errors.Join(errs...)
}

func newLogger(c config.Log, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log.level: %w", err)
	}
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func indent(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  - " + l
	}
	return strings.Join(lines, "\n")
}
