package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Bound is a limit of the configuration that held a run back: while it
// held, the policy wanted more workers (or wanted them sooner) than it
// got, so the run's waits are the limit's as much as the policy's.
type Bound struct {
	Rule string `json:"rule"` // max_workers, max_concurrent_provisioning, max_idle_workers, scale_up.max, ...
	// Seconds it held, and the jobs queued meanwhile.
	Seconds float64 `json:"seconds"`
	Jobs    int     `json:"jobs_queued"`
}

func (b Bound) String() string {
	return fmt.Sprintf("%s for %s (%d jobs queued meanwhile)", b.Rule, (time.Duration(b.Seconds) * time.Second).String(), b.Jobs)
}

// activeBounds are the limits holding the engine back after a reconcile.
func activeBounds(d policy.Decision, s policy.Settings, w *world) []string {
	var out []string
	switch d.Bound {
	case policy.BoundMaxWorkers:
		out = append(out, "max_workers")
	case policy.BoundRateLimit:
		out = append(out, "scale_up.max or scale_down.max")
	case policy.BoundCooldown:
		out = append(out, "a cooldown")
	}
	if d.WarmBound != "" {
		out = append(out, d.WarmBound+" (warm buffer)")
	}
	if d.Desired > w.provisioning+w.ready && w.provisioning >= max(s.MaxConcurrentProvisioning, 1) {
		out = append(out, "max_concurrent_provisioning")
	}
	return out
}

// boundTracker adds up, per limit, the time it held and the jobs queued
// while it did (the jobs whose arrival made it bind included).
type boundTracker struct {
	active []string
	since  time.Duration
	fresh  int // jobs queued since the last reconcile
	list   []Bound
}

func (t *boundTracker) get(rule string) *Bound {
	for i := range t.list {
		if t.list[i].Rule == rule {
			return &t.list[i]
		}
	}
	t.list = append(t.list, Bound{Rule: rule})
	return &t.list[len(t.list)-1]
}

// at closes the interval since the last call and starts one with the
// limits active now.
func (t *boundTracker) at(now time.Duration, active []string) {
	for _, r := range t.active {
		t.get(r).Seconds += (now - t.since).Seconds()
		t.get(r).Jobs += t.fresh
	}
	for _, r := range active {
		if !slices.Contains(t.active, r) {
			t.get(r).Jobs += t.fresh
		}
	}
	t.active, t.since, t.fresh = active, now, 0
}

func (t *boundTracker) queued() { t.fresh++ }

// result closes the last interval at end.
func (t *boundTracker) result(end time.Duration) []Bound {
	t.at(end, nil)
	return t.list
}

// boundsNote says which limits bound a run, for the report.
func boundsNote(pool string, r Result) string {
	if len(r.Bounds) == 0 {
		return ""
	}
	var parts []string
	for _, b := range r.Bounds {
		parts = append(parts, b.String())
	}
	return fmt.Sprintf("pool %s, %s: bound by %s; its waits are the limits' as much as the policy's", pool, r.Run, strings.Join(parts, ", "))
}
