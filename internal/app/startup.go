package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/httpapi"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
)

// serveEarly starts the HTTP listener before the bus: a daemon retrying
// its bus answers /healthz, and /readyz says why it is not ready.
func (a *App) serveEarly(cfg config.Config) error {
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listening on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.ln = ln
	a.httpErr = make(chan error, 1)
	a.srv = &http.Server{
		Handler: httpapi.Handler(a.reg, a.checks(), func() any {
			if !a.started.Load() {
				return []reconciler.PoolStatus{}
			}
			return a.poolStatus()
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		err := a.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			err = nil
		}
		a.httpErr <- err
	}()
	return nil
}

// busRetry remembers the last failed attempt to reach the bus.
func (a *App) busRetry(err error) {
	msg := err.Error()
	a.retryErr.Store(&msg)
}

// startingReason is /readyz's bus reason before New is done.
func (a *App) startingReason() error {
	if p := a.retryErr.Load(); p != nil {
		return fmt.Errorf("connecting to nats, retrying: %s", *p)
	}
	return errors.New("connecting to nats")
}
