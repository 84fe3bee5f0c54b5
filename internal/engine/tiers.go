package engine

// TierConfig is one provider tier of a pool: scale-up fills the first
// tier with room, then the next; scale-down stops the last tier's idle
// workers first; a tier whose provider is down is skipped.
type TierConfig struct {
	Name       string // the hodei.worker.tier label value
	Provider   string // docker or kubernetes
	MaxWorkers int
}
