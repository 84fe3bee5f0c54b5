// Package faults holds the daemon's fault-injection tests (issue 4): whole
// daemons, as processes built from cmd/autoscaler or in-process through
// internal/app, driven against real parts only — a real Docker engine
// (behind a socket proxy the tests control), real nats-server processes
// built from the module proxy, real signals — while the faults are injected
// for real: SIGKILL and SIGTERM to the daemon, a bus stopped and restarted,
// an engine that refuses or hangs, images that do not exist, workers that
// exit at once, lost finished events, hostile events, NATS credentials and
// TLS, and containers this daemon does not own.
//
// The package has no code outside its tests. docs/operations.md describes,
// from these tests' observed outcomes, what an operator sees during each
// fault.
package faults
