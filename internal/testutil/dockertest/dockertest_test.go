package dockertest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, failed string
	cleanups        []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runFake(fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for _, c := range f.cleanups {
		c()
	}
	return f
}

func TestClientWithoutEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

	t.Setenv(EnvRequire, "")
	f := runFake(func(tb testing.TB) { Client(tb) })
	if f.skipped == "" || f.failed != "" || !strings.Contains(f.skipped, EnvRequire) {
		t.Errorf("without %s: skipped %q failed %q; want a skip naming %s", EnvRequire, f.skipped, f.failed, EnvRequire)
	}

	t.Setenv(EnvRequire, "1")
	f = runFake(func(tb testing.TB) { Client(tb) })
	if f.failed == "" || f.skipped != "" || !strings.Contains(f.failed, "/nonexistent/docker.sock") {
		t.Errorf("with %s=1: skipped %q failed %q; want a failure naming the host", EnvRequire, f.skipped, f.failed)
	}
}

// TestBuildRunCleanup builds a FROM scratch image around a static binary,
// runs it, and checks that Cleanup removes the container.
func TestBuildRunCleanup(t *testing.T) {
	cli := Client(t)
	const tag = "hodei-dockertest-selftest:test"
	bin := BuildGoBinary(t, "./internal/providers/docker/testdata/sleeper")
	if again := BuildGoBinary(t, "./internal/providers/docker/testdata/sleeper"); &again[0] != &bin[0] {
		t.Error("BuildGoBinary did not cache the binary")
	}
	BuildImage(t, tag, map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n"),
		"sleeper":    bin,
	})
	t.Cleanup(func() {
		// The self-test image is not one the other tests use.
		_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{PruneChildren: true})
	})

	label := "hodei.test.dockertest=" + UniqueName("selftest")
	var id string
	t.Run("inner", func(t *testing.T) {
		Cleanup(t, label)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		k, v, _ := strings.Cut(label, "=")
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: tag, Labels: map[string]string{k: v}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		id = c.ID
		if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := cli.ContainerInspect(context.Background(), id); err == nil {
		t.Errorf("container %s survived its test's Cleanup", id)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := buildImage(ctx, cli, "hodei-dockertest-bad:test", map[string][]byte{"Dockerfile": []byte("FROM scratch\nCOPY missing /x\n")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a failing build returned %v", err)
	}
	if err := buildImage(ctx, cli, "x", map[string][]byte{}); err == nil {
		t.Error("a context without Dockerfile was accepted")
	}
}
