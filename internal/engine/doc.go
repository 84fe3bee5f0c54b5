// Package engine is the scaler's pure core: per pool, the ledger of jobs
// (a deterministic fold of the job stream), the workers and their state
// machine, the policy's memory, and the reconcile steps that turn a
// policy decision into provider calls and events to publish. It does no
// I/O, starts no goroutines and reads no clock, and it imports only
// internal/domain, internal/policy, backoff and the standard library (a
// test enforces it), so the daemon's loop (internal/reconciler) and the
// simulator (internal/sim) drive the same decisions.
package engine
