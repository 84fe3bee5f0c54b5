// Package apptest runs a whole daemon (internal/app) in the test's
// process, for tests of the parts around it (its HTTP API's clients, the
// dashboard and alert rules against a real Prometheus).
package apptest

import (
	"context"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// Run starts a daemon on cfg, waits until it is ready, and stops it at the
// end of the test, failing the test if it does not stop cleanly.
func Run(t testing.TB, cfg config.Config, opt app.Options) *app.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		cancel()
		t.Fatalf("starting the daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("daemon did not stop within 60s")
		}
	})
	bustest.Eventually(t, 30*time.Second, "daemon ready", a.Ready)
	return a
}
