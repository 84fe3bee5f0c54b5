// Package realtools finds the real programs that tests drive (helm,
// promtool, prometheus, nats-server) and the Prometheus Operator's CRDs,
// built or copied by tools/realtools/build.sh (`make tools`) into
// <repo root>/.cache/tools/<tool>/<version>/, at the versions pinned in
// tools/realtools/<tool>/go.mod.
//
// When a binary is missing, tests skip with a message saying how to build
// it, unless REQUIRE_TOOLS=1 (set by .ci/run), which makes the harness run
// build.sh for it and fail the test if that fails.
//
//	helm := realtools.Path(t, realtools.Helm)
package realtools

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment variables understood by the harness.
const (
	// EnvRequire, set to 1, makes a missing binary a build step (and a test
	// failure if that fails) instead of a skip.
	EnvRequire = "REQUIRE_TOOLS"
	// EnvCacheDir overrides <repo root>/.cache/tools (build.sh reads the
	// same variable).
	EnvCacheDir = "TOOLS_CACHE_DIR"
)

// Tool is one program of tools/realtools (or one folder of files).
type Tool struct {
	Binary string // file name, e.g. promtool (or folder name, for a Folder)
	Dir    string // its module folder under tools/realtools, and its folder in the cache
	Module string // the module whose version tools/realtools/<Dir>/go.mod pins
	Folder bool   // Binary is a folder of files, not an executable
}

// The tools. promtool and prometheus come from one module, so one build.
var (
	Helm       = Tool{Binary: "helm", Dir: "helm", Module: "helm.sh/helm/v3"}
	Promtool   = Tool{Binary: "promtool", Dir: "prometheus", Module: "github.com/prometheus/prometheus"}
	Prometheus = Tool{Binary: "prometheus", Dir: "prometheus", Module: "github.com/prometheus/prometheus"}
	NATSServer = Tool{Binary: "nats-server", Dir: "nats-server", Module: "github.com/nats-io/nats-server/v2"}
	// PrometheusOperatorCRDs is a folder with the operator's ServiceMonitor
	// and PrometheusRule CustomResourceDefinitions (monitoring.coreos.com_*.yaml).
	PrometheusOperatorCRDs = Tool{Binary: "crds", Dir: "prometheus-operator",
		Module: "github.com/prometheus-operator/prometheus-operator", Folder: true}
)

// ErrMissing is returned (wrapped) when a binary is not built and
// REQUIRE_TOOLS is not 1. Tests skip on it.
var ErrMissing = errors.New("tool binary is missing")

// RepoRoot walks up from the working directory to the folder that holds
// both go.mod and tools/realtools.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("realtools: %w", err)
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isDir(filepath.Join(dir, "tools", "realtools")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("realtools: no folder with go.mod and tools/realtools above the working directory")
		}
		dir = parent
	}
}

// Version is the version of tool's module pinned in its go.mod.
func Version(tool Tool) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	gomod := filepath.Join(root, "tools", "realtools", tool.Dir, "go.mod")
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("realtools: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if fields = trimRequire(fields); len(fields) >= 2 && fields[0] == tool.Module {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("realtools: reading %s: %w", gomod, err)
	}
	return "", fmt.Errorf("realtools: %s does not require %s", gomod, tool.Module)
}

// trimRequire drops the leading "require" of a one-line require directive.
func trimRequire(fields []string) []string {
	if len(fields) > 0 && fields[0] == "require" {
		return fields[1:]
	}
	return fields
}

// Locate returns where tool's binary is expected, whether or not it is there.
func Locate(tool Tool) (string, error) {
	version, err := Version(tool)
	if err != nil {
		return "", err
	}
	cache := os.Getenv(EnvCacheDir)
	if cache == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(root, ".cache", "tools")
	} else if cache, err = filepath.Abs(cache); err != nil {
		return "", fmt.Errorf("realtools: %s: %w", EnvCacheDir, err)
	}
	return filepath.Join(cache, tool.Dir, version, tool.Binary), nil
}

var buildMu sync.Mutex

// Ensure returns the path of tool's binary. When it is missing it builds it
// with tools/realtools/build.sh if REQUIRE_TOOLS=1 (progress to out; nil
// means os.Stderr), and otherwise returns an error wrapping ErrMissing
// whose text says how to build it.
func Ensure(tool Tool, out io.Writer) (string, error) {
	path, err := Locate(tool)
	if err != nil {
		return "", err
	}
	if present(tool, path) {
		return path, nil
	}
	if os.Getenv(EnvRequire) != "1" {
		return "", fmt.Errorf("%w: %s (build the tools once with `make tools`, "+
			"tools/realtools/build.sh, a few minutes the first time; or set %s=1 to have the "+
			"test build them and fail instead of skipping)", ErrMissing, path, EnvRequire)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if present(tool, path) { // built meanwhile by another test of this process
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, "realtools: %s=1 and %s is missing; running tools/realtools/build.sh %s\n", EnvRequire, path, tool.Dir)
	cmd := exec.Command("bash", filepath.Join(root, "tools", "realtools", "build.sh"), tool.Dir)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("realtools: tools/realtools/build.sh %s failed: %w", tool.Dir, err)
	}
	if !present(tool, path) {
		return "", fmt.Errorf("realtools: tools/realtools/build.sh %s ran but %s is still missing", tool.Dir, path)
	}
	return path, nil
}

// Path is Ensure for a test: it skips t when the binary is missing and
// REQUIRE_TOOLS is not 1, and fails it when the binary cannot be had.
func Path(t testing.TB, tool Tool) string {
	t.Helper()
	path, err := Ensure(tool, nil)
	if errors.Is(err, ErrMissing) {
		t.Skipf("realtools: %v", err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	return path
}

func present(tool Tool, path string) bool {
	if tool.Folder {
		return isDir(path)
	}
	return isExecutable(path)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode().Perm()&0o111 != 0
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
