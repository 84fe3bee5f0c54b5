// Package providers declares the strategy the scaler drives to create and
// stop workers. Each implementation lives in its own subpackage (docker,
// kubernetes); the factory picks one per pool from configuration. Both are
// always compiled in.
package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// ErrNotFound reports that a worker does not exist. Delete treats it as
// success; callers check it with errors.Is.
var ErrNotFound = errors.New("worker not found")

// WorkerSpec is what varies between two workers of one pool. Everything
// else (image, command, resources, privileges) comes from the pool's
// configuration, held by the provider: events choose how many workers run,
// never what runs.
type WorkerSpec struct {
	ID   domain.WorkerID
	Pool domain.PoolName
}

// Check refuses a spec that the provider of pool must not create: no
// worker id, or another pool's worker. Every provider's Create starts
// with it.
func (s WorkerSpec) Check(pool domain.PoolName) error {
	if s.ID == "" {
		return errors.New("worker id is empty")
	}
	if s.Pool != "" && s.Pool != pool {
		return fmt.Errorf("worker pool %q is not this provider's pool %q", s.Pool, pool)
	}
	return nil
}

// Provider creates, stops and lists the workers of one pool.
//
// Implementations only ever see, stop and delete workers that carry their
// own ownership label (domain.LabelOwner = the autoscaler's name).
type Provider interface {
	// Name is "docker" or "kubernetes".
	Name() string
	// Create starts a worker. It is idempotent on spec.ID: a second call
	// for an existing worker adopts it.
	Create(ctx context.Context, spec WorkerSpec) (domain.Worker, error)
	// Stop asks the worker to end (SIGTERM or its equivalent), forces it
	// after grace, and removes it.
	Stop(ctx context.Context, id domain.WorkerID, grace time.Duration) error
	// Delete removes a worker at once. A missing worker is success.
	Delete(ctx context.Context, id domain.WorkerID) error
	// List returns every worker of the pool this autoscaler owns.
	List(ctx context.Context) ([]domain.Worker, error)
	// Watch pushes changes until ctx ends or the stream breaks (the channel
	// is then closed; the caller re-lists and watches again).
	Watch(ctx context.Context) (<-chan domain.WorkerChange, error)
	// Ping checks that the provider's backend answers.
	Ping(ctx context.Context) error
}

// DrainSpec says how to stop a worker that may still run a job: it gets
// SIGTERM (the worker takes no new job and finishes its running ones),
// then is killed after Grace if Busy reports it idle, or after Timeout
// whatever it runs. Busy is safe to call from any goroutine.
type DrainSpec struct {
	Grace   time.Duration
	Timeout time.Duration
	Busy    func() bool
	// Poll is how often Busy is asked (default 1s).
	Poll time.Duration
}

// Drainer is a provider that can hold a stop while the worker is busy
// (the drain handshake). A provider without it is stopped with
// Stop(grace), the grace being DrainTimeout when the worker was busy as
// the stop began.
type Drainer interface {
	// Drain stops and removes the worker as DrainSpec says. killedBusy
	// reports a forced kill of a worker Busy still reported busy.
	Drain(ctx context.Context, id domain.WorkerID, spec DrainSpec) (killedBusy bool, err error)
}
