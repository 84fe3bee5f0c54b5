package domain

import (
	"encoding/json"
	"time"
)

// CloudEvents 1.0 types of the event contract.
const (
	TypeJobQueued   = "hodei.job.queued"
	TypeJobStarted  = "hodei.job.started"
	TypeJobFinished = "hodei.job.finished"
	TypeDecision    = "hodei.autoscaler.decision"
	// TypeWorkerHeartbeat is a worker's report of the jobs it runs,
	// on <prefix>.heartbeats.<pool> (core NATS, not stored).
	TypeWorkerHeartbeat = "hodei.worker.heartbeat"
	// Worker lifecycle types are "hodei.worker." + Lifecycle.
	TypeWorkerPrefix = "hodei.worker."
)

// JobKind is the last subject token of a job event.
type JobKind uint8

const (
	JobQueued JobKind = iota + 1
	JobStarted
	JobFinished
)

func (k JobKind) String() string {
	switch k {
	case JobQueued:
		return "queued"
	case JobStarted:
		return "started"
	case JobFinished:
		return "finished"
	}
	return "unknown"
}

// Type returns the CloudEvents type of the kind.
func (k JobKind) Type() string {
	switch k {
	case JobQueued:
		return TypeJobQueued
	case JobStarted:
		return TypeJobStarted
	case JobFinished:
		return TypeJobFinished
	}
	return "unknown"
}

// Outcome of a finished job.
type Outcome string

const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	OutcomeCancelled Outcome = "cancelled"
)

// JobEvent is a decoded, validated job event.
type JobEvent struct {
	Kind      JobKind
	ID        string    // CloudEvent id
	Time      time.Time // CloudEvent time (the scheduler's clock)
	Pool      PoolName
	JobID     JobID
	WorkerID  WorkerID // started (required), finished (optional)
	Outcome   Outcome  // finished
	Resources Resources
	Labels    map[string]string
	// Seq and Stored come from the stream: its sequence number and the
	// server's timestamp, which ages jobs without trusting client clocks.
	Seq    uint64
	Stored time.Time
	// Extensions are the CloudEvent's extension attributes (traceparent
	// and the like), carried onto the decisions the job causes.
	Extensions map[string]string
}

// CloudEvent is the structured-mode JSON envelope.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// JobData is the data of the three job event types.
type JobData struct {
	JobID     string            `json:"job_id"`
	Pool      string            `json:"pool,omitempty"`
	WorkerID  string            `json:"worker_id,omitempty"`
	Outcome   string            `json:"outcome,omitempty"`
	Resources *Resources        `json:"resources,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// HeartbeatData is the data of a worker heartbeat: the worker and the
// job ids it runs now (empty: none).
type HeartbeatData struct {
	WorkerID string   `json:"worker_id"`
	Pool     string   `json:"pool"`
	Jobs     []string `json:"jobs"`
}

// WorkerEventData is the data of hodei.worker.<state> events.
type WorkerEventData struct {
	WorkerID string `json:"worker_id"`
	Pool     string `json:"pool"`
	Provider string `json:"provider"`
	Reason   string `json:"reason,omitempty"`
}

// DecisionData is the data of hodei.autoscaler.decision events.
type DecisionData struct {
	Pool    string `json:"pool"`
	Current int    `json:"current"`
	Desired int    `json:"desired"`
	Pending int    `json:"pending"`
	Running int    `json:"running"`
	Idle    int    `json:"idle"`
	Busy    int    `json:"busy"`
	Reason  string `json:"reason"`
	DryRun  bool   `json:"dry_run,omitempty"`
	// Extensions are the CloudEvent extensions of the job event that
	// caused the decision; the publisher writes them as the decision
	// event's own extension attributes.
	Extensions map[string]string `json:"-"`
}
