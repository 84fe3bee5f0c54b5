// Package events connects to NATS JetStream (or starts an embedded server),
// makes sure the streams exist, decodes and validates incoming job events
// and publishes worker lifecycle and decision events, all per the event
// contract in docs/events.md.
package events

import (
	"strings"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Stream names of the contract.
const (
	StreamJobs    = "HODEI_JOBS"
	StreamWorkers = "HODEI_WORKERS"
)

// Subjects builds and parses subjects under a prefix (default "hodei").
type Subjects struct {
	Prefix string
}

// AllJobs is the filter of every job event: <prefix>.jobs.>
func (s Subjects) AllJobs() string { return s.Prefix + ".jobs.>" }

// AllWorkers is the filter of every worker lifecycle event.
func (s Subjects) AllWorkers() string { return s.Prefix + ".workers.>" }

// AllDecisions is the filter of every decision event.
func (s Subjects) AllDecisions() string { return s.Prefix + ".autoscaler.>" }

// Job is <prefix>.jobs.<pool>.<kind>.
func (s Subjects) Job(pool domain.PoolName, kind domain.JobKind) string {
	return s.Prefix + ".jobs." + string(pool) + "." + kind.String()
}

// Worker is <prefix>.workers.<pool>.<state>.
func (s Subjects) Worker(pool domain.PoolName, state domain.Lifecycle) string {
	return s.Prefix + ".workers." + string(pool) + "." + string(state)
}

// Decision is <prefix>.autoscaler.<pool>.decision.
func (s Subjects) Decision(pool domain.PoolName) string {
	return s.Prefix + ".autoscaler." + string(pool) + ".decision"
}

// ParseJob splits <prefix>.jobs.<pool>.<kind>. ok is false for any other shape.
func (s Subjects) ParseJob(subject string) (pool domain.PoolName, kind domain.JobKind, ok bool) {
	rest, found := strings.CutPrefix(subject, s.Prefix)
	if !found {
		return "", 0, false
	}
	rest, found = strings.CutPrefix(rest, ".jobs.")
	if !found {
		return "", 0, false
	}
	i := strings.IndexByte(rest, '.')
	if i <= 0 || strings.IndexByte(rest[i+1:], '.') >= 0 {
		return "", 0, false
	}
	switch rest[i+1:] {
	case "queued":
		kind = domain.JobQueued
	case "started":
		kind = domain.JobStarted
	case "finished":
		kind = domain.JobFinished
	default:
		return "", 0, false
	}
	return domain.PoolName(rest[:i]), kind, true
}
