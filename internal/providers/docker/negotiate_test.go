package docker

import (
	"sync"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
)

// The daemon's first calls on a pool come at once (the reconciler's list,
// the watch, creates): the client's lazy API version negotiation would
// write the version while ContainerList and Events read it without its
// lock (a data race under -race). The provider negotiates once, before
// its first request, with one ping to the engine, and every call sees
// the negotiated version.
func TestConcurrentFirstCallsNegotiateOnce(t *testing.T) {
	engine := engineproxy.New(t)
	p, _ := newProvider(t, func(c *Config) { c.Docker.Host = engine.Host() })
	ctx := ctxT(t, 60*time.Second)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := p.List(ctx)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := p.Watch(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a first call failed: %v", err)
		}
	}
	if pings := len(engine.Requests(engineproxy.IsPing)); pings != 1 {
		t.Errorf("%d pings to negotiate the api version, want 1", pings)
	}
	if v := p.cli.ClientVersion(); v == "" {
		t.Error("no api version negotiated")
	}
}
