package reconciler

import (
	"context"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/clock"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// watchPool keeps the engine's view of one pool's workers current: a full
// listing, then pushed changes, re-listing every ResyncInterval and
// whenever the watch breaks. While the breaker is open it only probes.
func (r *Reconciler) watchPool(ctx context.Context, pool domain.PoolName, tier int, prov providers.Provider, b *Breaker) {
	retry := r.opt.BreakerCooldown
	for ctx.Err() == nil {
		if open, _ := b.Open(); open {
			if !b.ProbeDue(r.now()) {
				if !clock.Sleep(ctx, min(retry, time.Second)) {
					return
				}
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, r.opt.ProviderTimeout)
			err := prov.Ping(pctx)
			cancel()
			b.Record(err, r.now())
			if err != nil {
				continue
			}
		}
		listedAt := r.now()
		lctx, cancel := context.WithTimeout(ctx, r.opt.ProviderTimeout)
		ws, err := prov.List(lctx)
		cancel()
		result := "ok"
		if err != nil {
			result = "error"
		}
		r.m.ProviderOps.WithLabelValues(string(pool), prov.Name(), "list", result).Inc()
		b.Record(err, r.now())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn().Err(err).Str("pool", string(pool)).Msg("listing workers failed; retrying")
			if !clock.Sleep(ctx, min(r.opt.ProviderTimeout, 2*time.Second)) {
				return
			}
			continue
		}
		r.send(observation{pool: pool, tier: tier, list: ws, listedAt: listedAt, isList: true})
		r.follow(ctx, pool, tier, prov)
	}
}

// follow forwards pushed changes until the watch breaks or a resync is due.
func (r *Reconciler) follow(ctx context.Context, pool domain.PoolName, tier int, prov providers.Provider) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resync := time.NewTimer(r.opt.ResyncInterval)
	defer resync.Stop()
	ch, err := prov.Watch(wctx)
	if err != nil {
		r.log.Debug().Err(err).Str("pool", string(pool)).Msg("watch unavailable; relying on listing")
		select {
		case <-resync.C:
		case <-ctx.Done():
		}
		return
	}
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return
			}
			r.send(observation{pool: pool, tier: tier, change: &c})
		case <-resync.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
