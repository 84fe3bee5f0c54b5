package app

import (
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

// subscribeHeartbeats hands the workers' heartbeats to the reconciler.
func (a *App) subscribeHeartbeats(p *parts) {
	p.stopHeartbeats = func() {}
	d := events.Decoder{Subjects: a.bus.Subjects, MaxBytes: a.cfg.NATS.MaxEventBytes}
	sub, err := events.SubscribeHeartbeats(a.bus.NC, d, func(hb events.HeartbeatEvent) {
		a.rec.Heartbeat(hb.Pool, hb.Worker, len(hb.Jobs))
	}, func(err error) {
		reason := domain.ReasonOf(err)
		a.m.Events.WithLabelValues(domain.TypeWorkerHeartbeat, engine.Invalid.String()).Inc()
		a.m.EventsDropped.WithLabelValues(reason).Inc()
		a.log.Debug().Str("reason", reason).Err(err).Msg("invalid worker heartbeat dropped")
	})
	if err != nil {
		a.log.Error().Err(err).Msg("worker heartbeats not followed: only the ledger says which workers are busy")
		return
	}
	p.stopHeartbeats = func() { _ = sub.Unsubscribe() }
}
