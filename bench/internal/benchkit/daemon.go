package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Daemon is a whole autoscaler daemon (internal/app) running in this
// process, as cmd/autoscaler runs it.
type Daemon struct {
	App     *app.App
	Created time.Time // just before app.New
	Started time.Time // just before app.Run
	cancel  context.CancelFunc
	done    chan error
}

// StartDaemon builds and runs a daemon on cfg whose pools use provs (by
// pool name); with provs nil, the real providers (factory.New).
func StartDaemon(cfg config.Config, provs map[string]providers.Provider, log zerolog.Logger) (*Daemon, error) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{cancel: cancel, done: make(chan error, 1), Created: time.Now()}
	opt := app.Options{Logger: log}
	if provs != nil {
		opt.Providers = func(_ string, pc config.Pool, _ zerolog.Logger) (providers.Provider, error) {
			p, ok := provs[pc.Name]
			if !ok {
				return nil, fmt.Errorf("no provider for pool %s", pc.Name)
			}
			return p, nil
		}
	}
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		cancel()
		return nil, err
	}
	d.App = a
	d.Started = time.Now()
	go func() { d.done <- a.Run(ctx) }()
	return d, nil
}

// WaitReady polls Ready every 250µs until it holds, and returns when.
func (d *Daemon) WaitReady(timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if d.App.Ready() {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("daemon not ready within %s", timeout)
		}
		select {
		case err := <-d.done:
			d.done <- err
			return time.Time{}, fmt.Errorf("daemon stopped before ready: %v", err)
		default:
		}
		time.Sleep(250 * time.Microsecond)
	}
}

// Stop shuts the daemon down and waits for it.
func (d *Daemon) Stop() error {
	d.cancel()
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("daemon did not stop within 30s")
	}
}

// Totals sums pending, running and workers by state over the pools, as
// /v1/pools shows them.
func (d *Daemon) Totals() (pending, running int, workers map[string]int) {
	workers = map[string]int{}
	for _, s := range d.App.Status() {
		pending += s.Pending
		running += s.Running
		for k, v := range s.Workers {
			workers[k] += v
		}
	}
	return pending, running, workers
}
