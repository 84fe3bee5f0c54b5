package domain

import "time"

// Phase is what a provider reports about a worker it runs.
type Phase string

const (
	PhasePending Phase = "pending" // created, not yet ready (starting, pulling, unscheduled)
	PhaseReady   Phase = "ready"   // running and able to take jobs
	PhaseExited  Phase = "exited"  // ended cleanly (exit code 0, pod Succeeded)
	PhaseFailed  Phase = "failed"  // ended badly or cannot start
)

// Terminal reports whether the worker has ended and only needs deleting.
func (p Phase) Terminal() bool { return p == PhaseExited || p == PhaseFailed }

// Worker is a provider's view of one worker it runs.
type Worker struct {
	ID        WorkerID
	Pool      PoolName
	Provider  string // "docker" or "kubernetes"
	Phase     Phase
	Reason    string    // why it is pending/failed/exited, in the provider's words
	CreatedAt time.Time // when the provider created it
}

// WorkerState is the autoscaler's classification of a worker, used by the
// policy and in the workers{state} metric.
type WorkerState string

const (
	StateProvisioning WorkerState = "provisioning"
	StateIdle         WorkerState = "idle"
	StateBusy         WorkerState = "busy"
	StateDraining     WorkerState = "draining"
	StateFailed       WorkerState = "failed"
)

// WorkerStates lists every WorkerState in a stable order.
var WorkerStates = [...]WorkerState{StateProvisioning, StateIdle, StateBusy, StateDraining, StateFailed}

// Lifecycle is the state named in a worker lifecycle event
// (hodei.workers.<pool>.<lifecycle>).
type Lifecycle string

const (
	LifecycleProvisioning Lifecycle = "provisioning"
	LifecycleReady        Lifecycle = "ready"
	LifecycleDraining     Lifecycle = "draining"
	LifecycleStopped      Lifecycle = "stopped"
	LifecycleFailed       Lifecycle = "failed"
)

// Resources is a CPU and memory quantity.
type Resources struct {
	CPUMillis int64 `json:"cpu_millis,omitempty" yaml:"cpu_millis"`
	MemoryMB  int64 `json:"memory_mb,omitempty" yaml:"memory_mb"`
}

// WorkerChange is one observation a provider pushes. Gone is set when the
// worker no longer exists; otherwise Worker is its current state.
type WorkerChange struct {
	ID     WorkerID
	Worker Worker
	Gone   bool
}
