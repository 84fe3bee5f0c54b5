package engine

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Effects are what the engine asks its driver to do, accumulated since the
// last Take.
type Effects struct {
	Ops       []Op
	Lifecycle []Lifecycle
	Decisions []Decision
	// Ready lists provisioning durations (create issued to ready).
	Ready []Observation
	// Waits lists job waits (queued to started, stream times) of jobs
	// that started after the retained stream was folded.
	Waits   []Observation
	Expired []ExpiredJob
	// Reruns are started events that opened a run of a job already
	// finished (runs.go).
	Reruns []RerunJob
	// Touched are the pools reconciled, whose gauges and status changed.
	Touched []*Pool
	// Removed are the pools that a reload removed and that have no
	// worker left: they are gone from the engine.
	Removed []domain.PoolName
}

// Op is a provider call to make.
type Op struct {
	Kind   OpKind
	Pool   domain.PoolName
	Worker domain.WorkerID
	Grace  time.Duration // for OpStop
	// Tier is the index of the pool's tier whose provider makes the call
	// (0 for a pool with one provider).
	Tier int
	// DrainTimeout (OpStop) is how long a worker that still runs a job
	// gets to finish it (drain.go).
	DrainTimeout time.Duration
	// Covers are the event times of the queued jobs this create serves,
	// for the reaction_seconds metric.
	Covers []time.Time
}

// Lifecycle is a worker lifecycle event to publish.
type Lifecycle struct {
	Pool     domain.PoolName
	Worker   domain.WorkerID
	Provider string
	State    domain.Lifecycle
	Reason   string
}

// Decision is a decision event to publish, with its direction.
type Decision struct {
	Data      domain.DecisionData
	Direction string // up, down or none
}

// Observation is a duration measured for a pool.
type Observation struct {
	Pool     domain.PoolName
	Provider string
	Value    time.Duration
}

// ExpiredJob is a job dropped after max_job_age.
type ExpiredJob struct {
	Pool   domain.PoolName
	Job    domain.JobID
	Worker domain.WorkerID
	Age    time.Duration
}

// RerunJob is a job that runs again after its finished, on Worker.
type RerunJob struct {
	Pool   domain.PoolName
	Job    domain.JobID
	Worker domain.WorkerID
}

// OpKind is a provider call the engine asks for.
type OpKind uint8

const (
	OpNone OpKind = iota
	OpCreate
	OpStop
	OpDelete
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpStop:
		return "stop"
	case OpDelete:
		return "delete"
	}
	return "none"
}
