package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

const (
	testPool   = domain.PoolName("p1")
	sleeperPkg = "./internal/providers/docker/testdata/sleeper"
	sleeperTag = "hodei-docker-test-sleeper:test"
	healthTag  = "hodei-docker-test-sleeper-health:test"
	// testLabel marks containers a test creates by hand (foreign or
	// unlabelled "workers"), so their clean-up never depends on the
	// labels under test.
	testLabel = "hodei.test.container"
)

var testImages = map[string]string{
	sleeperTag: "FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n",
	healthTag: "FROM scratch\nCOPY sleeper /sleeper\n" +
		"HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD [\"/sleeper\", \"health\"]\n" +
		"ENTRYPOINT [\"/sleeper\"]\n",
}

var built struct {
	mu   sync.Mutex
	tags map[string]bool
}

// testImage builds one of testImages once per test process.
func testImage(t *testing.T, tag string) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.tags[tag] {
		return tag
	}
	start := time.Now()
	bin := dockertest.BuildGoBinary(t, sleeperPkg)
	dockertest.BuildImage(t, tag, map[string][]byte{"Dockerfile": []byte(testImages[tag]), "sleeper": bin})
	t.Logf("built image %s in %s", tag, time.Since(start).Round(time.Millisecond))
	if built.tags == nil {
		built.tags = map[string]bool{}
	}
	built.tags[tag] = true
	return tag
}

// newProvider returns a provider for a fresh owner name (so tests never see
// each other's containers) running the sleeper image, and an SDK client.
// Every container of that owner is removed when the test ends.
func newProvider(t *testing.T, mutate func(*Config)) (*Provider, *client.Client) {
	t.Helper()
	cli := dockertest.Client(t)
	cfg := Config{
		Owner: dockertest.UniqueName("test-docker"),
		Pool:  testPool,
		Docker: config.Docker{
			Image:       testImage(t, sleeperTag),
			PullPolicy:  PullNever,
			NetworkMode: "none",
			CapDrop:     []string{"ALL"},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	dockertest.Cleanup(t, domain.LabelOwner+"="+cfg.Owner)
	p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, cli
}

// createRaw creates (and optionally starts) a container by hand with the
// given name and labels plus a unique test label removed at the end of the
// test.
func createRaw(t *testing.T, cli *client.Client, name string, labels map[string]string, start bool) string {
	t.Helper()
	mark := dockertest.UniqueName("raw")
	all := map[string]string{testLabel: mark}
	for k, v := range labels {
		all[k] = v
	}
	dockertest.Cleanup(t, testLabel+"="+mark)
	ctx := ctxT(t, 30*time.Second)
	init := true
	c, err := cli.ContainerCreate(ctx,
		&container.Config{Image: testImage(t, sleeperTag), Labels: all},
		&container.HostConfig{NetworkMode: "none", Init: &init}, nil, nil, name)
	if err != nil {
		t.Fatalf("creating container %s by hand: %v", name, err)
	}
	if start {
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatalf("starting container %s: %v", name, err)
		}
	}
	return c.ID
}

// ctxT is a context that ends after d or with the test.
func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every 50ms until it holds or timeout passes; the last
// description cond gave is in the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listOne lists the provider's workers and returns the one with id.
func listOne(t *testing.T, p *Provider, id domain.WorkerID) (domain.Worker, bool, string) {
	t.Helper()
	ws, err := p.List(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, w := range ws {
		if w.ID == id {
			return w, true, fmt.Sprintf("%+v", w)
		}
	}
	return domain.Worker{}, false, fmt.Sprintf("not among %d listed workers", len(ws))
}

// exists reports whether a container with that name or id exists.
func exists(t *testing.T, cli *client.Client, ref string) (container.InspectResponse, bool) {
	t.Helper()
	ci, err := cli.ContainerInspect(ctxT(t, 30*time.Second), ref)
	if err != nil {
		if isNotFound(err) {
			return ci, false
		}
		t.Fatalf("inspecting %s: %v", ref, err)
	}
	return ci, true
}

func mustNotBeOwned(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotOwned) {
		t.Errorf("%s: error = %v, want ErrNotOwned", op, err)
	}
}

func dockerCfg(image, host string) config.Docker {
	return config.Docker{Image: image, Host: host, PullPolicy: PullNever, NetworkMode: "none"}
}

// containerLogs returns a container's output so far (stdout and stderr,
// with the engine's stream headers left in: fine for Contains).
func containerLogs(t *testing.T, cli *client.Client, ref string) string {
	t.Helper()
	rc, err := cli.ContainerLogs(ctxT(t, 10*time.Second), ref, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("logs of %s: %v", ref, err)
	}
	return string(b)
}
