package lease

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Fence answers "may this replica act on pool P now?" for the goroutines
// that call providers and publish events. It is the only thing they need
// from the lease layer, it never blocks, and it closes by itself when the
// clock passes the last renewal's deadline, whether or not the bucket can
// be reached to learn anything.
type Fence struct {
	term atomic.Pointer[term]    // written by the session's renewer
	held atomic.Pointer[heldSet] // written by the lease manager
}

// term is one session's right to act, until a time on this replica's clock.
type term struct {
	session string
	until   time.Time
}

// heldSet is the pools a session holds; all means every pool (HA off).
type heldSet struct {
	session string
	all     bool
	pools   map[domain.PoolName]struct{}
}

// MayAct reports whether the replica may act on p at now.
func (f *Fence) MayAct(p domain.PoolName, now time.Time) bool {
	_, ok := f.Until(p, now)
	return ok
}

// Until is the time until which the replica may act on p, and whether
// that is still after now.
func (f *Fence) Until(p domain.PoolName, now time.Time) (time.Time, bool) {
	tm, h := f.term.Load(), f.held.Load()
	if tm == nil || h == nil || tm.session != h.session {
		return time.Time{}, false
	}
	if !h.all {
		if _, ok := h.pools[p]; !ok {
			return time.Time{}, false
		}
	}
	return tm.until, now.Before(tm.until)
}

// Held lists the pools the replica may act on at now, sorted (nil for
// "all" with HA off: ask MayAct).
func (f *Fence) Held(now time.Time) []domain.PoolName {
	tm, h := f.term.Load(), f.held.Load()
	if tm == nil || h == nil || tm.session != h.session || !now.Before(tm.until) || h.all {
		return nil
	}
	out := make([]domain.PoolName, 0, len(h.pools))
	for p := range h.pools {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// setTerm records a renewal: session may act until until.
func (f *Fence) setTerm(session string, until time.Time) {
	f.term.Store(&term{session: session, until: until})
}

// close ends the current term at once (session lost, or shutting down).
func (f *Fence) close() { f.term.Store(nil) }

// setHeld records the pools session holds.
func (f *Fence) setHeld(session string, pools map[domain.PoolName]struct{}) {
	f.held.Store(&heldSet{session: session, pools: pools})
}

// setAll records that session may act on every pool (HA off).
func (f *Fence) setAll(session string) { f.held.Store(&heldSet{session: session, all: true}) }
