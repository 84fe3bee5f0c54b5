// Package reconciler is the daemon's scaling loop around the pure engine:
// one goroutine owns the engine and feeds it job deliveries, provider
// observations (listings, watches, health) and the results of provider
// calls, which run on their own goroutines, bounded and with timeouts,
// behind a per-pool circuit breaker. It keeps the gauges and the status
// that /v1/pools serves.
package reconciler
