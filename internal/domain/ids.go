package domain

import (
	"fmt"
	"regexp"

	"github.com/google/uuid"
)

// PoolName names a worker pool. It is used as a NATS subject token and as a
// Kubernetes label value, so it is restricted to letters, digits, '-' and
// '_', and starts and ends with a letter or digit.
type PoolName string

// WorkerID identifies one worker; it is a UUID chosen by the autoscaler
// before the worker is created, which makes provider calls idempotent.
type WorkerID string

// JobID identifies one job; it is chosen by the scheduler and opaque to us.
type JobID string

var poolNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)

// ValidatePoolName reports whether name can be used as a pool name.
func ValidatePoolName(name string) error {
	if !poolNameRE.MatchString(name) {
		return fmt.Errorf("pool name %q must be 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit", name)
	}
	return nil
}

// NewWorkerID returns a fresh random worker id.
func NewWorkerID() WorkerID { return WorkerID(uuid.NewString()) }

// ParseWorkerID checks that s is a canonical UUID and returns it as a WorkerID.
func ParseWorkerID(s string) (WorkerID, error) {
	u, err := uuid.Parse(s)
	if err != nil || u.String() != s {
		return "", fmt.Errorf("worker id %q is not a canonical UUID", s)
	}
	return WorkerID(s), nil
}

// WorkerName is the container or pod name for a worker: deriving it from the
// id makes Create idempotent (a second create finds the first).
func WorkerName(id WorkerID) string { return "hodei-worker-" + string(id) }
