package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/poolstatus"
)

// status shows what a running daemon sees, per pool.
func status(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [--config FILE | FILE | --addr HOST:PORT] [-o table|json] [--watch] [--interval 2s]",
		"Shows each pool of a running daemon as it sees it (GET /v1/pools): desired, workers by state,\npending and running jobs, the last decision and its reason. The daemon's address is the\nconfig's http.listen, or --addr.")
	pathFlag := configFlag(fs)
	addr := fs.String("addr", "", "the daemon's HTTP address, instead of reading it from the config")
	output := fs.String("o", "table", "output format: table or json")
	watch := fs.Bool("watch", false, "keep watching: print again whenever the figures change")
	interval := fs.Duration("interval", 2*time.Second, "how often --watch asks the daemon")
	path, code, done := parseConfigCommand(fs, pathFlag, args, stdout, stderr)
	if done {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "autoscaler status: -o %q: use table or json\n", *output)
		return 2
	}
	if *addr == "" {
		var err error
		if *addr, err = addrFromConfig(path); err != nil {
			fmt.Fprintf(stderr, "autoscaler status: %v\n", err)
			return 1
		}
	} else if given(fs, "config") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "autoscaler status: give --config or --addr, not both")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := poolstatus.Show(ctx, poolstatus.Client{Addr: *addr}, stdout, stderr,
		poolstatus.Options{JSON: *output == "json", Watch: *watch, Interval: *interval})
	if err != nil {
		fmt.Fprintf(stderr, "autoscaler status: %v\n", err)
		return 1
	}
	return 0
}

// addrFromConfig is the address of the daemon that runs on the config
// (http.listen, overrides included). Only that key matters here: a config
// with problems elsewhere still says where its daemon listens.
func addrFromConfig(path string) (string, error) {
	cfg, err := config.Load(path, os.Environ())
	if cfg.HTTP.Listen == "" {
		return "", fmt.Errorf("reading http.listen from %s: %w", path, err)
	}
	return poolstatus.Addr(cfg.HTTP.Listen)
}

func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
