// Package clock holds the one way this project waits: a sleep that ends
// early when its context does.
package clock

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends; it reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
