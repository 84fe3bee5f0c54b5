package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/configwatch"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
)

// LoadConfig reads, validates and checks the config with each pool's
// provider, reporting every problem (one line each), before anything
// connects: what `autoscaler validate` accepts, the daemon starts with,
// and a reload applies.
func LoadConfig(path string) (config.Config, error) {
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

// runningPool is a pool the reconciler holds, as configured.
type runningPool struct {
	cfg      config.Pool
	provider string // its provider's name
}

// watchFile reports changes of the config file's content (nil when the
// daemon runs without a file).
func (a *App) watchFile(ctx context.Context) <-chan struct{} {
	if a.opt.ConfigFile == "" {
		return nil
	}
	changed := make(chan struct{}, 1)
	w := configwatch.Watcher{Path: a.opt.ConfigFile, Settle: a.opt.WatchSettle, Poll: a.opt.WatchPoll,
		Log: a.log.With().Str("component", "configwatch").Logger()}
	go w.Run(ctx, a.fileSum, changed)
	return changed
}

// reload loads the config file again and applies what can change live:
// the pools (added, removed, new settings, providers rebuilt for new
// provider settings). A file that does not validate is refused with every
// reason, and nothing changes; settings that need a restart are named and
// kept as they run. trigger says what asked (signal or file).
func (a *App) reload(ctx context.Context, p *parts, trigger string) {
	start := time.Now()
	log := a.log.With().Str("component", "reload").Str("trigger", trigger).Str("config", a.opt.ConfigFile).Logger()
	if a.opt.ConfigFile == "" {
		log.Warn().Msg("reload asked for, but the daemon was not started from a config file; nothing to reload")
		return
	}
	a.fileSum, _ = configwatch.Read(a.opt.ConfigFile)
	next, err := LoadConfig(a.opt.ConfigFile)
	if err != nil {
		a.m.ConfigReloads.WithLabelValues(metrics.ReloadRejected).Inc()
		problems := strings.Split(err.Error(), "\n")
		log.Error().Strs("problems", problems).Int("count", len(problems)).
			Msg("config reload refused: the new config is invalid; the running config stays in force")
		return
	}
	eff, restart := config.Reloaded(a.cfg, next)
	for _, key := range restart {
		log.Warn().Str("key", key).Msg("config key changed: it needs a restart to take effect; the running value stays in force")
	}
	specs, built, err := a.poolSpecs(&eff, log)
	if err != nil {
		closeAll(built)
		a.m.ConfigReloads.WithLabelValues(metrics.ReloadRejected).Inc()
		log.Error().Strs("problems", strings.Split(err.Error(), "\n")).
			Msg("config reload refused: a pool's provider cannot be built; the running config stays in force")
		return
	}
	ch, err := a.applyPools(ctx, specs, eff)
	if err != nil {
		closeAll(built)
		log.Warn().Err(err).Msg("config reload not applied: the daemon is stopping")
		return
	}
	a.cfg = eff
	for _, s := range specs {
		for _, pc := range eff.Pools {
			if pc.PoolName() == s.Config.Name {
				a.pools[s.Config.Name] = runningPool{cfg: pc, provider: s.Config.Provider}
			}
		}
	}
	if len(ch.Added) > 0 {
		a.restartConsumer(ctx, p)
	}
	a.syncLeasePools()
	a.m.ConfigReloads.WithLabelValues(metrics.ReloadApplied).Inc()
	log.Info().Strs("added", names(ch.Added)).Strs("updated", names(ch.Updated)).Strs("rebuilt", names(ch.Rebuilt)).
		Strs("removed", names(ch.Removed)).Strs("budgets", ch.Budgets).Strs("needs_restart", restart).Stringer("took", time.Since(start)).
		Msg("config reloaded")
}

// applyPools hands the reconciler the new pools, and the new budgets with
// them when they changed (in the same turn of its loop: a new pool and
// the new budget it names arrive together).
func (a *App) applyPools(ctx context.Context, specs []reconciler.PoolSpec, eff config.Config) (reconciler.Changes, error) {
	if reflect.DeepEqual(a.cfg.Budgets, eff.Budgets) {
		return a.rec.Apply(ctx, specs)
	}
	return a.rec.ApplyWithBudgets(ctx, specs, eff.EngineBudgets())
}

// poolSpecs turns the new config's pools into the reconciler's specs,
// building a provider for each new pool and each pool whose provider
// settings changed. A pool whose workers would move to another place
// (another provider, engine, cluster or namespace) keeps its running
// settings: the new provider could not see the workers that run. eff's
// pools are updated to what is kept.
func (a *App) poolSpecs(eff *config.Config, log zerolog.Logger) ([]reconciler.PoolSpec, []providers.Provider, error) {
	held := map[domain.PoolName]bool{}
	for _, s := range a.rec.Status() {
		held[domain.PoolName(s.Pool)] = true
	}
	for name := range a.pools {
		if !held[name] {
			delete(a.pools, name) // removed by an earlier reload, and gone since
		}
	}
	var specs []reconciler.PoolSpec
	var built []providers.Provider
	var errs []error
	for i, pc := range eff.Pools {
		old, had := a.pools[pc.PoolName()]
		if had && factory.Location(old.cfg) != factory.Location(pc) {
			log.Warn().Str("pool", pc.Name).Str("running", factory.Location(old.cfg)).Str("new", factory.Location(pc)).
				Msg("pool's workers cannot move live: its running settings stay in force; to move it, give the new place another pool name (the old pool then drains and goes), or restart")
			pc = old.cfg
			eff.Pools[i] = pc
		}
		ec, err := eff.EnginePool(pc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec := reconciler.PoolSpec{Config: ec}
		if had && !factory.Changed(eff.Name, old.cfg, pc) {
			spec.Config.Provider = old.provider
		} else {
			prov, err := a.build(eff.Name, pc, a.log)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			built = append(built, prov)
			spec.Provider = prov
			spec.Config.Provider = prov.Name()
		}
		specs = append(specs, spec)
	}
	return specs, built, errors.Join(errs...)
}

func closeAll(ps []providers.Provider) {
	for _, p := range ps {
		if c, ok := p.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}

func names(ps []domain.PoolName) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}
