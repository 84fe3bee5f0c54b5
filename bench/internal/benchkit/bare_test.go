package benchkit

import (
	"context"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/events"
)

// A read of no message has no n-th message to wait for: it must say so at
// once instead of waiting for its context (bench/stream -events 0 hung
// here for its five-minute read timeout).
func TestReadBareNeedsAMessage(t *testing.T) {
	srv, err := StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if err := EnsureStreams(context.Background(), srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, -1} {
		for _, kind := range []string{BareConsume, BareMessages} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := ReadBareFrom(ctx, srv.ClientURL(), events.StreamJobs, Subjects.AllJobs(), n, 10, kind)
			ended := ctx.Err()
			cancel()
			if err == nil {
				t.Fatalf("n=%d %s: no error", n, kind)
			}
			if ended != nil {
				t.Fatalf("n=%d %s: returned only when the context ended: %v", n, kind, err)
			}
		}
	}
}
