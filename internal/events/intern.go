package events

import (
	"hash/maphash"
	"sync/atomic"
)

// internSlots is the size of an Interner's table (a power of two): room
// for the workers of a large daemon (row 5 of BENCHMARKS.md runs 10,000)
// with few collisions, in 32 KiB of slots.
const internSlots = 1 << 12

// Interner hands out one string for the bytes of a recently seen value,
// so that the events of one worker share its id's string instead of a
// copy each: one allocation less per started and finished event, and
// one string per worker, not per event, in what the ledger keeps (its
// runs and tombstones). It is a direct-mapped cache: a value whose slot
// another has taken since is copied again, the strings it returns are
// always equal to the bytes, and it never holds more than internSlots
// strings. Safe for concurrent use; the zero value is not ready, use
// NewInterner. A nil *Interner copies every string.
type Interner struct {
	seed  maphash.Seed
	slots [internSlots]atomic.Pointer[string]
}

// NewInterner returns an empty Interner.
func NewInterner() *Interner { return &Interner{seed: maphash.MakeSeed()} }

// String is string(b), shared with the last call for the same bytes when
// their slot still holds them.
func (in *Interner) String(b []byte) string {
	if in == nil {
		return string(b)
	}
	slot := &in.slots[maphash.Bytes(in.seed, b)&(internSlots-1)]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
