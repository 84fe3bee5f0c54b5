package providers

import (
	"errors"
	"io"
)

// Tiered is the providers of a pool with tiers, one per tier in order
// (Names are the tiers' hodei.worker.tier labels). The daemon drives each
// tier's provider on its own, with its own breaker; Tiered is a Provider
// only to travel where one is expected, and as such it is its first tier.
type Tiered struct {
	Provider
	Tiers []Provider
	Names []string
}

// NewTiered builds a Tiered from the tiers' providers (at least one).
func NewTiered(names []string, tiers []Provider) *Tiered {
	return &Tiered{Provider: tiers[0], Tiers: tiers, Names: names}
}

// Close closes every tier's provider.
func (t *Tiered) Close() error {
	var errs []error
	for _, p := range t.Tiers {
		if c, ok := p.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// TiersOf returns the tiers' providers of p: p's own for a Tiered, p
// alone otherwise.
func TiersOf(p Provider) []Provider {
	if t, ok := p.(*Tiered); ok {
		return t.Tiers
	}
	return []Provider{p}
}
