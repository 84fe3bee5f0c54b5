package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
	"k8s.io/klog/v2"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/logging"
	"github.com/hodei/hodei-autoscaler/internal/memlimit"
)

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run [--config FILE | FILE] [--log-format json|console]",
		"Runs the daemon on the config until SIGTERM or SIGINT, then shuts down in order.\nSIGHUP, or the file changing, reloads the config (docs/operations.md#hot-reload).")
	pathFlag := configFlag(fs)
	logFormat := fs.String("log-format", "", "json or console (overrides log.format)")
	path, code, done := parseConfigCommand(fs, pathFlag, args, stdout, stderr)
	if done {
		return code
	}
	if *logFormat != "" {
		if err := logging.CheckFormat(*logFormat); err != nil {
			fmt.Fprintf(stderr, "--log-format: %v\n", err)
			return 2
		}
	}
	cfg, err := app.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "invalid config %s:\n%s\n", path, indent(err))
		return 1
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	routeKlog(log)
	defer klog.ClearLogger()
	mem, err := memlimit.Apply(int64(cfg.MemoryLimit))
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the cgroup memory limit; using the default soft memory limit")
	}
	log.Info().Int64("memory_limit_bytes", mem.Limit).Str("from", string(mem.Source)).Int64("cgroup_limit_bytes", mem.Cgroup).Msg("soft memory limit")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reload := reloadSignal(ctx)

	log.Info().Str("version", version).Str("config", path).Str("name", cfg.Name).Int("pools", len(cfg.Pools)).Msg("starting")
	a, err := app.New(ctx, cfg, app.Options{Logger: log, Version: version, ConfigFile: path, Reload: reload})
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

// reloadSignal turns SIGHUP into reload requests (a pending one covers
// the next), until ctx ends. It is set up before anything starts and
// never undone, so a SIGHUP never kills the daemon, not even while it
// shuts down.
func reloadSignal(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return reload
}

// routeKlog sends klog (client-go's logger, which writes to stderr in its
// own format by default) through the daemon's logger. klog's logger is
// process-wide, so only the daemon's wiring sets it.
func routeKlog(log zerolog.Logger) {
	klog.SetLogger(logging.Logr(log.With().Str("component", "client-go").Logger()))
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate [--config FILE | FILE]",
		"Checks a config as the daemon does at start, with every pool's provider rules,\nand prints every problem; exit 1 on any.")
	pathFlag := configFlag(fs)
	path, code, done := parseConfigCommand(fs, pathFlag, args, stdout, stderr)
	if done {
		return code
	}
	cfg, err := app.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s is invalid:\n%s\n", path, indent(err))
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d pool(s)\n", path, len(cfg.Pools))
	for _, p := range cfg.Pools {
		fmt.Fprintf(stdout, "  %s: provider %s, workers %d..%d, %d job(s) per worker\n", p.Name, p.Provider, p.MinWorkers, p.MaxWorkers, p.JobsPerWorker)
	}
	return 0
}
