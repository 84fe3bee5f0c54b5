// Package app wires the daemon's parts together: configuration, bus,
// providers, reconciler, consumer, publisher and HTTP. cmd/autoscaler only
// parses flags and calls it; tests and benchmarks run it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/configwatch"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/httpapi"
	"github.com/hodei/hodei-autoscaler/internal/inputs"
	"github.com/hodei/hodei-autoscaler/internal/lease"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
)

// ProviderFactory builds a pool's provider. Tests and benchmarks may
// replace the default (factory.New).
type ProviderFactory func(owner string, pool config.Pool, log zerolog.Logger) (providers.Provider, error)

// Options are the app's injected dependencies.
type Options struct {
	Logger    zerolog.Logger
	Registry  *prometheus.Registry // a fresh one if nil
	Providers ProviderFactory      // factory.New if nil
	// Now is the reconciler's clock (time.Now if nil).
	Now func() time.Time
	// Version is the build's version, for build_info ("dev" if empty).
	Version string
	// ConfigFile is the file the config came from. When set, the daemon
	// reloads it when its content changes and on each Reload.
	ConfigFile string
	// Reload asks for the config file to be loaded again (SIGHUP).
	Reload <-chan struct{}
	// WatchSettle and WatchPoll tune the file watch (configwatch's
	// defaults if 0).
	WatchSettle, WatchPoll time.Duration
}

// App is a running daemon.
type App struct {
	// cfg is the configuration in force; only Run's goroutine changes it
	// (reload.go).
	cfg   config.Config
	opt   Options
	build ProviderFactory
	log   zerolog.Logger
	reg   *prometheus.Registry
	m     *metrics.Metrics
	bus   *events.Bus
	provs map[domain.PoolName]providers.Provider // until the reconciler owns them
	rec   *reconciler.Reconciler
	pub   *events.Publisher
	in    *inputs.Set
	ln    net.Listener
	srv   *http.Server
	// httpErr gets the HTTP server's error; started is set once New has
	// wired everything (until then /readyz says why not: startup.go).
	httpErr  chan error
	started  atomic.Bool
	retryErr atomic.Pointer[string]
	// pools are the pools the reconciler holds (removed ones included
	// until they are gone), as configured, with their provider's name.
	pools map[domain.PoolName]runningPool
	// fileSum is the config file's content when it was last loaded.
	fileSum configwatch.Sum
	// lease is this daemon's part in the lease protocol (ha.go);
	// leaseChanged says it gained or lost a pool.
	lease        *lease.Manager
	leaseChanged chan struct{}
}

// New builds the daemon and connects it: providers, bus and streams, and
// the HTTP listener. It does not start scaling; Run does.
func New(ctx context.Context, cfg config.Config, opt Options) (_ *App, err error) {
	a := &App{cfg: cfg, opt: opt, log: opt.Logger, reg: opt.Registry, build: opt.Providers,
		provs: map[domain.PoolName]providers.Provider{}, pools: map[domain.PoolName]runningPool{}}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
	}
	a.m = metrics.New(a.reg)
	version := opt.Version
	if version == "" {
		version = "dev"
	}
	a.m.SetBuildInfo(version)
	if a.build == nil {
		a.build = factory.New
	}
	if opt.ConfigFile != "" {
		a.fileSum, _ = configwatch.Read(opt.ConfigFile)
	}
	defer func() {
		if err != nil {
			a.endLease()
			a.close()
		}
	}()

	pools, err := cfg.EnginePools()
	if err != nil {
		return nil, err
	}
	for i, pc := range cfg.Pools {
		p, err := a.build(cfg.Name, pc, a.log)
		if err != nil {
			return nil, err
		}
		a.provs[pc.PoolName()] = p
		pools[i].Provider = p.Name()
		a.pools[pc.PoolName()] = runningPool{cfg: pc, provider: p.Name()}
	}

	// HTTP first: /healthz answers and /readyz says why not ready while
	// the bus is retried (startup.go).
	if err := a.serveEarly(cfg); err != nil {
		return nil, err
	}
	bus, err := events.Connect(ctx, cfg.NATS, a.log.With().Str("component", "bus").Logger(), events.OnRetry(a.busRetry),
		events.OnStoreRestart(func(string) { a.m.EmbeddedRestarts.Inc() }))
	if err != nil {
		return nil, err
	}
	a.bus = bus
	if err := inputs.EnsureStreams(ctx, a.bus.JS, cfg, a.log.With().Str("component", "inputs").Logger()); err != nil {
		return nil, err
	}
	a.in = inputs.New(a.bus.JS, a.bus.Subjects, cfg, a.log.With().Str("component", "consumer").Logger())
	a.pub = events.NewPublisher(a.bus.JS, a.bus.Subjects, cfg.NATS.Source, cfg.NATS.Publish.Buffer,
		a.log.With().Str("component", "publisher").Logger(),
		func(typ, result string) { a.m.Published.WithLabelValues(typ, result).Inc() })
	// The published-events-dropped alert watches increase(): each type's
	// series exists from the start at 0.
	for _, typ := range events.PublishedTypes() {
		a.m.Published.WithLabelValues(typ, "dropped")
	}

	if err := a.openLease(ctx); err != nil {
		return nil, err
	}

	eng := engine.NewEngine(pools, cfg.Reconcile.MaxJobAge.D())
	eng.SetBudgets(cfg.EngineBudgets())
	a.rec = reconciler.New(eng, a.provs, a.pub, a.m, a.log.With().Str("component", "reconciler").Logger(), reconciler.Options{
		Interval:         cfg.Reconcile.Interval.D(),
		ResyncInterval:   cfg.Reconcile.ResyncInterval.D(),
		ProviderTimeout:  cfg.Reconcile.ProviderTimeout.D(),
		BreakerFailures:  cfg.Reconcile.BreakerFailures,
		BreakerCooldown:  cfg.Reconcile.BreakerCooldown.D(),
		MaxConcurrentOps: cfg.Reconcile.MaxConcurrentOps,
		ShutdownTimeout:  cfg.Shutdown.Timeout.D(),
		StopWorkers:      cfg.Shutdown.StopWorkers,
		Now:              opt.Now,
		Gate:             a.lease.Fence(),
		GateChanged:      a.leaseChanged,
	})
	a.provs = nil // the reconciler's now
	a.started.Store(true)
	return a, nil
}

func (a *App) checks() []httpapi.Check {
	return []httpapi.Check{
		{Name: "bus", Fn: func() error {
			if !a.started.Load() {
				return a.startingReason()
			}
			if !a.bus.Connected() {
				return errors.New("not connected to nats")
			}
			return nil
		}},
		{Name: "store", Fn: func() error {
			if !a.started.Load() {
				return nil
			}
			return a.bus.StoreErr()
		}},
		{Name: "stream", Fn: func() error {
			if !a.started.Load() {
				return errors.New("waiting for the bus")
			}
			if !a.rec.CaughtUp() {
				return errors.New("still folding the retained job stream")
			}
			return nil
		}},
		{Name: "providers", Fn: func() error {
			if !a.started.Load() {
				return nil
			}
			var errs []error
			for _, d := range a.rec.ProviderHealth() {
				errs = append(errs, fmt.Errorf("pool %s (%s): %s", d.Pool, d.Provider, d.Reason))
			}
			return errors.Join(errs...)
		}},
	}
}

// HTTPAddr is the address the HTTP listener is bound to.
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// BusURL is the NATS URL workers and the scheduler use.
func (a *App) BusURL() string { return a.bus.ClientURL() }

// Bus returns the bus connection (tests use it to publish).
func (a *App) Bus() *events.Bus { return a.bus }

// Registry returns the metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Ready reports whether /readyz would answer 200.
func (a *App) Ready() bool {
	for _, c := range a.checks() {
		if c.Fn() != nil {
			return false
		}
	}
	return true
}

// Status returns every pool's status (as /v1/pools).
func (a *App) Status() []reconciler.PoolStatus { return a.poolStatus() }

// Run scales until ctx ends, then shuts down in order: stop consuming,
// let the reconciler finish or abandon provider calls (shutdown.timeout),
// publish what is queued, close the bus and the listener. It returns nil
// after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	p := a.start(ctx)
	defer p.abandonPublish()
	defer p.stopRec()
	defer func() { p.stopConsumer() }() // the current one: a reload may restart it
	runErr := a.watch(ctx, p)
	a.shutdown(p, runErr == nil)
	return runErr
}

// parts are the goroutines Run starts, and how to stop each.
type parts struct {
	httpErr, recDone, leaseDone chan error
	consumer                    sync.WaitGroup
	// stopConsumer ends the consumer; stopRec the reconciler, which
	// outlives ctx so that it stops only after the consumer has;
	// abandonPublish drops what the publisher still holds.
	stopConsumer, stopRec, abandonPublish context.CancelFunc
	// stopLease ends the lease session, after the reconciler: its pools
	// are released for the other replicas only once nothing acts on them.
	stopLease      context.CancelFunc
	stopHeartbeats func()
}

// start runs the HTTP server, the publisher, the reconciler and the job
// stream consumer.
func (a *App) start(ctx context.Context) *parts {
	p := &parts{httpErr: make(chan error, 1), recDone: make(chan error, 1), leaseDone: make(chan error, 1)}
	metrics.SetBool(a.m.BusConnected, a.bus.Connected())
	metrics.SetBool(a.m.StoreWritable, a.bus.StoreErr() == nil)
	go func() { // serveEarly's error, if the listener fails
		if err := <-a.httpErr; err != nil {
			p.httpErr <- err
		}
	}()

	var pubCtx, recCtx context.Context
	pubCtx, p.abandonPublish = context.WithCancel(context.WithoutCancel(ctx))
	go func() { _ = a.pub.Run(pubCtx) }()
	recCtx, p.stopRec = context.WithCancel(context.WithoutCancel(ctx))
	go func() { p.recDone <- a.rec.Run(recCtx) }()
	var leaseCtx context.Context
	leaseCtx, p.stopLease = context.WithCancel(context.WithoutCancel(ctx))
	go a.runLease(leaseCtx, p.leaseDone)

	a.startConsumer(ctx, p)
	a.subscribeHeartbeats(p)
	return p
}

// startConsumer folds the job stream from its start, then follows it.
func (a *App) startConsumer(ctx context.Context, p *parts) {
	var consCtx context.Context
	consCtx, p.stopConsumer = context.WithCancel(ctx)
	p.consumer.Go(func() {
		err := a.in.Run(consCtx, func(d domain.Delivery) { a.rec.Deliver(d) })
		if err != nil && consCtx.Err() == nil {
			a.log.Error().Err(err).Msg("job stream consumer stopped")
		}
	})
}

// restartConsumer reads the job stream again from its start, for pools a
// reload added (the others skip what they have read: engine.Replayed).
// The old consumer has delivered everything it read before the new one
// starts, so the loop still sees the stream in order.
func (a *App) restartConsumer(ctx context.Context, p *parts) {
	p.stopConsumer()
	p.consumer.Wait()
	a.startConsumer(ctx, p)
}

// watch waits for ctx to end or for a part to fail, and keeps the bus
// gauge current.
func (a *App) watch(ctx context.Context, p *parts) error {
	busTick := time.NewTicker(time.Second)
	defer busTick.Stop()
	fileChanged := a.watchFile(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.opt.Reload:
			a.reload(ctx, p, "signal")
		case <-fileChanged:
			a.reload(ctx, p, "file")
		case err := <-p.httpErr:
			return fmt.Errorf("http server: %w", err)
		case err := <-p.recDone:
			return fmt.Errorf("reconciler stopped: %w", err)
		case err := <-p.leaseDone:
			p.leaseDone <- err // for shutdown's wait
			return fmt.Errorf("ha: %w", err)
		case <-busTick.C:
			metrics.SetBool(a.m.BusConnected, a.bus.Connected())
			metrics.SetBool(a.m.StoreWritable, a.bus.StoreErr() == nil)
			if err := a.bus.Closed(); err != nil {
				// The client will never reconnect (credentials rejected):
				// exit, so a supervisor restarts the daemon, which then
				// reads its secrets again.
				return err
			}
		}
	}
}

// shutdown stops the parts in order within shutdown.timeout. waitRec says
// whether the reconciler is still running (it has not failed).
func (a *App) shutdown(p *parts, waitRec bool) {
	start := time.Now()
	a.log.Info().Msg("shutting down: consumer first")
	p.stopConsumer()
	p.consumer.Wait()
	p.stopHeartbeats()
	p.stopRec()
	if waitRec {
		<-p.recDone
	}
	p.stopLease()
	if err := <-p.leaseDone; err != nil {
		a.log.Warn().Err(err).Msg("lease session ended with an error")
	}
	a.pub.Close()
	left := a.cfg.Shutdown.Timeout.D() - time.Since(start)
	select {
	case <-a.pub.Done():
	case <-time.After(max(left, time.Second)):
		a.log.Warn().Int("unpublished", a.pub.Pending()).Msg("shutdown timeout: abandoning unpublished events")
		p.abandonPublish()
		<-a.pub.Done()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(sctx)
	a.log.Info().Stringer("took", time.Since(start)).Msg("shutdown complete")
}

func (a *App) close() {
	if a.bus != nil {
		a.bus.Close()
	}
	if a.ln != nil {
		_ = a.ln.Close()
	}
	if a.rec != nil {
		a.rec.Close()
	}
	for _, p := range a.provs {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
