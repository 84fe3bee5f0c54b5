package k8scluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Version is the Kubernetes version of the control plane binaries.
const Version = "v1.36.3"

// Environment variables understood by the harness.
const (
	// EnvBinDir overrides the folder holding kube-apiserver, kube-scheduler,
	// etcd and kwok. The kwok stage files are then looked for in
	// <EnvBinDir>/../kwok-stages unless EnvStagesDir is set.
	EnvBinDir = "HODEI_K8S_BIN"
	// EnvStagesDir overrides the folder holding kwok's stage YAML files.
	EnvStagesDir = "HODEI_K8S_KWOK_STAGES"
	// EnvRequire, set to 1, makes missing binaries a build step (and a test
	// failure if that fails) instead of a skip.
	EnvRequire = "REQUIRE_K8S"
	// EnvKeep, set to 1, keeps the cluster's temporary folder (logs, certs,
	// etcd data) after Stop.
	EnvKeep = "HODEI_K8S_KEEP"
)

// binaries are the executables the harness runs.
var binaries = []string{"etcd", "kube-apiserver", "kube-scheduler", "kwok"}

// kwokStages are the stage files passed to kwok (copied by tools/k8s/build.sh).
var kwokStages = []string{
	"node-initialize.yaml",
	"node-heartbeat.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
}

// ErrBinariesMissing is returned (wrapped) when the control plane binaries
// are not built and REQUIRE_K8S is not 1. Tests should skip on it.
var ErrBinariesMissing = errors.New("kubernetes test binaries are missing")

// Paths says where the binaries and the kwok stage files are.
type Paths struct {
	BinDir    string
	StagesDir string
}

func (p Paths) bin(name string) string { return filepath.Join(p.BinDir, name) }

func (p Paths) stageFiles() []string {
	out := make([]string, len(kwokStages))
	for i, s := range kwokStages {
		out[i] = filepath.Join(p.StagesDir, s)
	}
	return out
}

// missing lists the binaries and stage files that are not there, by short
// name (kube-apiserver, kwok-stages/pod-ready.yaml).
func (p Paths) missing() []string {
	var miss []string
	for _, b := range binaries {
		st, err := os.Stat(p.bin(b))
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			miss = append(miss, b)
		}
	}
	for i, s := range p.stageFiles() {
		if _, err := os.Stat(s); err != nil {
			miss = append(miss, "kwok-stages/"+kwokStages[i])
		}
	}
	return miss
}

func (p Paths) missingError() error {
	return fmt.Errorf("%w in %s: %s", ErrBinariesMissing, filepath.Dir(p.BinDir), strings.Join(p.missing(), ", "))
}

// RepoRoot walks up from the working directory to the folder that holds
// both go.mod and tools/k8s (the root of the hodei-autoscaler repository).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && dirExists(filepath.Join(dir, "tools", "k8s")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("k8scluster: no folder with go.mod and tools/k8s above the working directory")
		}
		dir = parent
	}
}

// DefaultPaths returns where the binaries are expected: $HODEI_K8S_BIN, or
// <repo root>/.cache/k8s/v1.36.3/bin, with the stage files beside bin/.
func DefaultPaths() (Paths, error) {
	var p Paths
	if d := os.Getenv(EnvBinDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return p, err
		}
		p.BinDir = abs
	} else {
		root, err := RepoRoot()
		if err != nil {
			return p, err
		}
		p.BinDir = filepath.Join(root, ".cache", "k8s", Version, "bin")
	}
	p.StagesDir = filepath.Join(filepath.Dir(p.BinDir), "kwok-stages")
	if d := os.Getenv(EnvStagesDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return p, err
		}
		p.StagesDir = abs
	}
	return p, nil
}

var buildMu sync.Mutex

// EnsureBinaries finds the binaries. When some are missing it builds them
// with tools/k8s/build.sh if REQUIRE_K8S=1 (progress goes to out, nil means
// os.Stderr), and otherwise returns an error wrapping ErrBinariesMissing
// whose text says how to build them.
func EnsureBinaries(out io.Writer) (Paths, error) {
	p, err := DefaultPaths()
	if err != nil {
		return p, err
	}
	miss := p.missing()
	if len(miss) == 0 {
		return p, nil
	}
	if os.Getenv(EnvRequire) != "1" {
		return p, fmt.Errorf("%w; build them once with `make k8s-tools` "+
			"(tools/k8s/build.sh, ~10 min the first time), or set %s=1 to have the test "+
			"build them (and fail instead of skipping)", p.missingError(), EnvRequire)
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	if len(p.missing()) == 0 { // built meanwhile by another test of this process
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return p, fmt.Errorf("k8scluster: %s=1 but cannot find tools/k8s/build.sh: %w", EnvRequire, err)
	}
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, "k8scluster: %s=1 and binaries are missing; running tools/k8s/build.sh "+
		"(about 10 minutes the first time: run go test with -timeout 30m or more)\n", EnvRequire)
	cmd := exec.Command("bash", filepath.Join(root, "tools", "k8s", "build.sh"))
	cmd.Dir = root
	cmd.Env = os.Environ()
	if os.Getenv(EnvBinDir) != "" {
		cmd.Env = append(cmd.Env, "K8S_CACHE_DIR="+filepath.Dir(p.BinDir))
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return p, fmt.Errorf("k8scluster: tools/k8s/build.sh failed: %w", err)
	}
	if len(p.missing()) > 0 {
		return p, fmt.Errorf("k8scluster: tools/k8s/build.sh ran but: %w", p.missingError())
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
