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
// It reads the bytes in place (it runs for every job event): canonical is
// exactly what uuid.Parse then String give back, 36 bytes of lower-case
// hex with dashes at 8, 13, 18 and 23 (TestParseWorkerIDAgreesWithUUID).
func ParseWorkerID(s string) (WorkerID, error) {
	if !canonicalUUID(s) {
		return "", fmt.Errorf("worker id %q is not a canonical UUID", s)
	}
	return WorkerID(s), nil
}

func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// WorkerName is the container or pod name for a worker: deriving it from the
// id makes Create idempotent (a second create finds the first).
func WorkerName(id WorkerID) string { return "hodei-worker-" + string(id) }
