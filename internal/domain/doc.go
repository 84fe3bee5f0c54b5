// Package domain holds the plain types every layer shares: identifiers,
// worker and job states, resource quantities and the payloads of the
// event contract (see docs/events.md). It does no I/O and imports nothing
// beyond the standard library and uuid.
package domain
