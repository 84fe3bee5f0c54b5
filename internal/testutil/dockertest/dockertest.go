// Package dockertest holds helpers for tests that drive a real Docker
// Engine: a client that skips the test when no engine answers (and fails it
// when REQUIRE_DOCKER=1), image builds from in-memory contexts (no registry
// is ever needed: images are FROM scratch around static Go binaries), and
// label-based container clean-up.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// EnvRequire, set to 1, turns "no Docker engine" from a skip into a failure.
const EnvRequire = "REQUIRE_DOCKER"

// WorkerImageTag is the tag WorkerImage builds examples/worker under.
const WorkerImageTag = "hodei-worker:test"

// ImageLabel marks every image built by BuildImage, so they can be found
// (docker images --filter label=hodei.test.image=true).
const ImageLabel = "hodei.test.image"

// workerPkg is the example worker's package, relative to the module root.
const workerPkg = "./examples/worker"

// Client returns a client for the engine named by DOCKER_HOST (API version
// negotiated). When no engine answers, the test is skipped, or failed when
// REQUIRE_DOCKER=1. The client is closed at the end of the test.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		unavailable(t, fmt.Errorf("creating docker client: %w", err))
		return nil
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		unavailable(t, fmt.Errorf("pinging docker engine at %s: %w", cli.DaemonHost(), err))
		return nil
	}
	// Settle the API version now: left to the first requests, two
	// goroutines' first calls race on it (seen by the race detector in
	// the HA tests' sampler).
	cli.NegotiateAPIVersion(ctx)
	return cli
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("docker engine required (%s=1) but not usable: %v", EnvRequire, err)
	}
	t.Skipf("skipping: no usable docker engine (%v); set %s=1 to make this a failure", err, EnvRequire)
}

// BuildImage builds an image tagged tag from an in-memory build context:
// files maps context paths to contents and must hold a "Dockerfile" (FROM
// scratch: nothing can be pulled). Files other than the Dockerfile are made
// executable. When the tag moves to a new image, the old one is removed if
// nothing uses it, so repeated runs leave no dangling images.
func BuildImage(t testing.TB, tag string, files map[string][]byte) {
	t.Helper()
	cli := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := buildImage(ctx, cli, tag, files); err != nil {
		t.Fatalf("building image %s: %v", tag, err)
	}
}

func buildImage(ctx context.Context, cli *client.Client, tag string, files map[string][]byte) error {
	if _, ok := files["Dockerfile"]; !ok {
		return errors.New("the build context has no Dockerfile")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o755)
		if name == "Dockerfile" {
			mode = 0o644
		}
		data := files[name]
		// A fixed ModTime keeps the layer cache effective across runs.
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing build context: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing build context: %w", err)
	}

	var oldID string
	if old, err := cli.ImageInspect(ctx, tag); err == nil {
		oldID = old.ID
	}

	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{ImageLabel: "true"},
		Version:     build.BuilderV1, // BuildKit needs a session; the classic builder does not
	})
	if err != nil {
		return fmt.Errorf("starting build: %w", err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("reading build output: %w", err)
		}
		out.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("build failed: %s\n%s", msg.Error, out.String())
		}
	}

	newImg, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		return fmt.Errorf("inspecting built image: %w (build output:\n%s)", err, out.String())
	}
	if oldID != "" && oldID != newImg.ID {
		// Best effort: the old image may still be used by a container.
		_, _ = cli.ImageRemove(ctx, oldID, image.RemoveOptions{PruneChildren: true})
	}
	return nil
}

var goBuilds struct {
	mu   sync.Mutex
	bins map[string][]byte
	errs map[string]error
}

// BuildGoBinary builds a package of this module (a path relative to the
// module root such as "./examples/worker", or its import path) as a static
// linux binary (CGO_ENABLED=0) for the test machine's architecture and
// returns it. Each package is built once per test process.
func BuildGoBinary(t testing.TB, pkg string) []byte {
	t.Helper()
	bin, err := goBinary(pkg)
	if err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	return bin
}

func goBinary(pkg string) ([]byte, error) {
	goBuilds.mu.Lock()
	defer goBuilds.mu.Unlock()
	if bin, ok := goBuilds.bins[pkg]; ok {
		return bin, nil
	}
	if err, ok := goBuilds.errs[pkg]; ok {
		return nil, err
	}
	bin, err := goBuild(pkg)
	if goBuilds.bins == nil {
		goBuilds.bins, goBuilds.errs = map[string][]byte{}, map[string]error{}
	}
	if err != nil {
		goBuilds.errs[pkg] = err
		return nil, err
	}
	goBuilds.bins[pkg] = bin
	return bin, nil
}

func goBuild(pkg string) ([]byte, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hodei-gobuild-")
	if err != nil {
		return nil, fmt.Errorf("creating build folder: %w", err)
	}
	defer os.RemoveAll(dir)
	outFile := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", outFile, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	bin, err := os.ReadFile(outFile)
	if err != nil {
		return nil, fmt.Errorf("reading built binary: %w", err)
	}
	return bin, nil
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var moduleRoot struct {
	once sync.Once
	dir  string
	err  error
}

// ModuleRoot returns the folder holding this module's go.mod (found by
// walking up from the test's working directory).
func ModuleRoot() (string, error) {
	moduleRoot.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			moduleRoot.err = fmt.Errorf("finding module root: %w", err)
			return
		}
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && bytes.Contains(data, []byte("module github.com/hodei/hodei-autoscaler\n")) {
				moduleRoot.dir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				moduleRoot.err = errors.New("finding module root: no go.mod of github.com/hodei/hodei-autoscaler above the working directory")
				return
			}
			dir = parent
		}
	})
	return moduleRoot.dir, moduleRoot.err
}

var workerImage struct {
	mu   sync.Mutex
	done bool
	err  error
}

// WorkerImage builds examples/worker (binary and Dockerfile) into the image
// WorkerImageTag, once per test process, and returns the tag.
func WorkerImage(t testing.TB) string {
	t.Helper()
	cli := Client(t)
	workerImage.mu.Lock()
	defer workerImage.mu.Unlock()
	if !workerImage.done {
		workerImage.err = buildWorkerImage(cli)
		workerImage.done = true
	}
	if workerImage.err != nil {
		t.Fatalf("building the worker image: %v", workerImage.err)
	}
	return WorkerImageTag
}

func buildWorkerImage(cli *client.Client) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "examples", "worker", "Dockerfile"))
	if err != nil {
		return fmt.Errorf("reading the worker Dockerfile: %w", err)
	}
	bin, err := goBinary(workerPkg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return buildImage(ctx, cli, WorkerImageTag, map[string][]byte{"Dockerfile": dockerfile, "worker": bin})
}

// Cleanup force-removes, when the test ends, every container (running or
// not) that carries all the given labels ("key=value" or "key"). At least
// one label is required so a test never removes what it does not own.
func Cleanup(t testing.TB, labels ...string) {
	t.Helper()
	if len(labels) == 0 {
		t.Fatal("dockertest.Cleanup needs at least one label")
	}
	cli := Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := RemoveContainers(ctx, cli, labels...); err != nil {
			t.Errorf("cleaning up containers %v: %v", labels, err)
		}
	})
}

// RemoveContainers force-removes every container carrying all labels.
func RemoveContainers(ctx context.Context, cli *client.Client, labels ...string) error {
	if len(labels) == 0 {
		return errors.New("no labels given")
	}
	args := filters.NewArgs()
	for _, l := range labels {
		args.Add("label", l)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
			errs = append(errs, fmt.Errorf("removing %s: %w", c.ID[:12], err))
		}
	}
	return errors.Join(errs...)
}

// UniqueName returns prefix plus a random suffix, for owner names and
// labels that must not collide with other tests or test runs.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
