// Package hae2e holds the end-to-end tests of high availability: a real
// three-node NATS JetStream cluster (nats-server processes), daemon
// replicas as real processes of cmd/autoscaler built by the test, each
// reaching every NATS node through a TCP proxy of its own (so a replica
// can be cut off for real) and the Docker engine through a socket proxy
// of its own (whose record of requests, with timestamps, says which
// replica called the provider when), and real Docker workers running the
// jobs. The package has no non-test code.
package hae2e
