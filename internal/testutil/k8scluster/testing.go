package k8scluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Start starts a cluster for one test and stops it in t.Cleanup. It skips
// the test when the binaries are missing and REQUIRE_K8S is not 1 (with
// REQUIRE_K8S=1 it builds them, failing the test if that fails). On test
// failure the tail of every process's log is printed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions is Start with options; opts.Logf defaults to t.Logf.
func StartWithOptions(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c, err := New(context.Background(), opts)
	if errors.Is(err, ErrBinariesMissing) {
		t.Skipf("k8scluster: %v", err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("k8scluster: test failed, process logs (in %s):\n%s", c.Dir(), c.LogTails(40))
		}
		c.Stop()
	})
	return c
}

// StartShared starts a cluster that is not tied to a test, for TestMain or
// a cluster shared by several tests. The returned stop function stops it.
// If the binaries are missing and REQUIRE_K8S is not 1, the error wraps
// ErrBinariesMissing.
func StartShared(ctx context.Context) (*Cluster, func(), error) {
	c, err := New(ctx, Options{Logf: func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}})
	if err != nil {
		return nil, func() {}, err
	}
	return c, c.Stop, nil
}

var shared struct {
	mu      sync.Mutex
	enabled bool // SharedMain is running the tests
	started bool
	c       *Cluster
	err     error
}

// SharedMain is for a package's TestMain: it runs the tests, and one
// cluster, started lazily by the first Shared(t), serves them all; it is
// stopped after the tests (its log tails printed if they failed). Packages
// whose selected tests never call Shared pay nothing.
//
//	func TestMain(m *testing.M) { k8scluster.SharedMain(m) }
func SharedMain(m *testing.M) {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	c := shared.c
	shared.mu.Unlock()
	if c != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "k8scluster: tests failed, process logs (in %s):\n%s", c.Dir(), c.LogTails(40))
		}
		c.Stop()
	}
	os.Exit(code)
}

// Shared returns the package's shared cluster, starting it on first use.
// It skips t like Start when the binaries are missing, and fails t if the
// cluster could not start (every later call fails the same way). The
// package's TestMain must call SharedMain.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.enabled {
		t.Fatalf("k8scluster.Shared needs the package's TestMain to call k8scluster.SharedMain(m)")
	}
	if !shared.started {
		shared.started = true
		shared.c, _, shared.err = StartShared(context.Background())
	}
	if errors.Is(shared.err, ErrBinariesMissing) {
		t.Skipf("k8scluster: %v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("k8scluster: shared cluster did not start: %v", shared.err)
	}
	if err := shared.c.Healthy(); err != nil {
		t.Fatalf("k8scluster: shared cluster is broken: %v\n%s", err, shared.c.LogTails(40))
	}
	return shared.c
}
