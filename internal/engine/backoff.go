package engine

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// stableAfter is how long a worker must have been ready for its failure
// not to count as a crash loop (which backs the pool off).
const stableAfter = 30 * time.Second

func newBackoff(c PoolConfig) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = max(c.RetryInitial, time.Millisecond)
	b.MaxInterval = max(c.RetryMax, b.InitialInterval)
	b.RandomizationFactor = c.RetryJitter
	b.Multiplier = 2
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// failure records a provider or worker failure and backs creates off,
// unless the worker had been running long enough not to be a crash loop.
func (p *Pool) failure(w *worker, now time.Time) {
	if w != nil && !w.readyAt.IsZero() && now.Sub(w.readyAt) >= stableAfter {
		p.resetBackoff()
	}
	p.failures++
	p.blockedUntil = now.Add(p.bo.NextBackOff())
	p.dirty = true
}

func (p *Pool) resetBackoff() {
	if p.failures == 0 {
		return
	}
	p.failures = 0
	p.blockedUntil = time.Time{}
	p.bo.Reset()
}

// nextRetry is how long a failed stop or delete waits before it is tried
// again.
func (p *Pool) nextRetry() time.Duration {
	return min(p.cfg.RetryInitial*4, p.cfg.RetryMax)
}

// createBlock says what holds creates back: the backoff after failures
// (until), or the provider being unavailable (the breaker open, no
// listing yet), which lasts until it is told otherwise.
func (p *Pool) createBlock() (until time.Time, unavailable string) {
	switch {
	case !p.providerUp:
		return time.Time{}, "provider " + p.cfg.Provider + " unavailable: " + p.downReason
	case !p.listed:
		return time.Time{}, "waiting for the first provider listing"
	}
	return p.blockedUntil, ""
}
