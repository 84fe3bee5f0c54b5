package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/lease"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
)

// openLease joins the lease protocol (internal/lease): with ha on as one
// replica of the name, which acts on the pools whose leases it holds;
// with ha off as the name's one daemon, which acts on every pool and makes
// a second daemon of the same name on the same bus refuse to start. The
// lease bucket is replicated like the streams (nats.streams.replicas).
func (a *App) openLease(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 2*a.cfg.HA.LeaseTTL.D()+a.cfg.NATS.ConnectWait.D())
	defer cancel()
	kv, err := lease.OpenBucket(octx, a.bus.JS, a.cfg.HA.Bucket, a.cfg.NATS.Streams.Replicas)
	if err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	replica := a.cfg.HA.ReplicaID
	if replica == "" {
		if replica, err = os.Hostname(); err != nil || replica == "" {
			return fmt.Errorf("ha.replica_id is empty and the host name is unknown (%v): set ha.replica_id", err)
		}
	}
	pools := make([]domain.PoolName, 0, len(a.cfg.Pools))
	for _, p := range a.cfg.Pools {
		pools = append(pools, p.PoolName())
	}
	a.leaseChanged = make(chan struct{}, 1)
	m, err := lease.Open(octx, lease.Options{
		KV: kv, Name: a.cfg.Name, Replica: replica, Exclusive: !a.cfg.HA.Enabled, Pools: pools,
		Timing: a.cfg.HA.Timing(), Log: a.log.With().Str("component", "lease").Logger(),
		OnChange: func(c lease.Change) {
			change := "lost"
			if c.Held {
				change = "gained"
			}
			a.m.LeaseChanges.WithLabelValues(string(c.Pool), change, c.Reason).Inc()
			select {
			case a.leaseChanged <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	a.lease = m
	st := m.Status()
	a.log.Info().Bool("ha", a.cfg.HA.Enabled).Str("replica", st.Replica).Str("session", st.Session).
		Stringer("lease_ttl", a.cfg.HA.LeaseTTL.D()).Msg("lease session claimed")
	return nil
}

// runLease keeps the lease session until ctx ends, says the replica is
// ready to take pools once the retained job stream is folded, and keeps
// the lease manager's pools those the reconciler runs: a reload's new
// pools get their leases (shared like the others), and a pool a reload
// removed keeps its lease until its last worker is gone (it still stops
// workers), then is released.
func (a *App) runLease(ctx context.Context, done chan<- error) {
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		ready := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !ready && a.rec.CaughtUp() {
				a.lease.SetReady(true)
				ready = true
				t.Reset(a.lease.Timing().RenewEvery)
			}
			a.syncLeasePools()
		}
	}()
	done <- a.lease.Run(ctx)
}

// syncLeasePools tells the lease manager the pools the reconciler runs
// now (a reload calls it too, so its new pools need not wait for a tick).
func (a *App) syncLeasePools() {
	if a.lease == nil {
		return
	}
	st := a.rec.Status()
	pools := make([]domain.PoolName, 0, len(st))
	for _, p := range st {
		pools = append(pools, domain.PoolName(p.Pool))
	}
	if err := a.lease.SetPools(pools); err != nil {
		a.log.Error().Err(err).Msg("ha: the pools of the reconciler are not valid lease keys")
	}
}

// endLease gives up a lease session that Run never took over (New failed
// after claiming it), so the next daemon of the name need not wait a TTL
// for it.
func (a *App) endLease() {
	if a.lease == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.lease.Run(ctx); err != nil {
		a.log.Warn().Err(err).Msg("ending the lease session")
	}
}

// poolStatus is the reconciler's status with each pool's lease holder.
func (a *App) poolStatus() []reconciler.PoolStatus {
	st := a.rec.Status()
	if a.lease == nil {
		return st
	}
	ls := a.lease.Status()
	now := time.Now()
	holders := make(map[string]lease.PoolHolder, len(ls.Pools))
	for _, h := range ls.Pools {
		holders[string(h.Pool)] = h
	}
	for i := range st {
		h, ok := holders[st[i].Pool]
		if !ok {
			continue
		}
		mine := a.lease.MayAct(h.Pool, now)
		holder := h.Replica
		if mine && holder == "" {
			holder = ls.Replica
		}
		st[i].Lease = &reconciler.LeaseStatus{Holder: holder, Since: h.Since.UTC(), Mine: mine, Stale: h.Stale}
	}
	return st
}
