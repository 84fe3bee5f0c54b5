// Package deploy_test checks what deploy/ ships with the programs that
// consume it: the Helm chart with the real helm (lint, template, install
// and upgrade into the real control plane of tools/k8s), the alert rules
// with the real promtool, the dashboard's queries with promtool's PromQL
// parser, and the metric names of both against the daemon's documented
// metrics. The binaries come from tools/realtools (`make tools`) and
// tools/k8s (`make k8s-tools`); without them these tests skip, unless
// REQUIRE_TOOLS=1 / REQUIRE_K8S=1.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

// root is the repository's root folder.
func root(t testing.TB) string {
	t.Helper()
	r, err := realtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func chartDir(t testing.TB) string {
	return filepath.Join(root(t), "deploy", "helm", "hodei-autoscaler")
}

func fullValues(t testing.TB) string {
	return filepath.Join(chartDir(t), "ci", "full-values.yaml")
}

// run runs bin with args under a deadline and returns its stdout; a
// non-zero exit is returned as an error carrying stderr.
func run(t testing.TB, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &cmdError{cmd: filepath.Base(bin) + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cmdError struct {
	cmd, stderr string
	err         error
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.stderr }
func (e *cmdError) Unwrap() error { return e.err }

// helm runs the real helm with its own empty config, cache and data
// folders, so nothing of the machine's helm setup is read or written.
type helm struct {
	bin string
	env []string
}

func newHelm(t testing.TB) helm {
	t.Helper()
	home := t.TempDir()
	return helm{bin: realtools.Path(t, realtools.Helm), env: []string{
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}}
}

func (h helm) run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return run(t, h.env, h.bin, args...)
}

// template renders the chart with args (-f, --set, ...) and returns its
// objects.
func (h helm) template(t testing.TB, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := h.run(t, append([]string{"template", "hodei", chartDir(t), "--namespace", "hodei-system"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, out)
}

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(t testing.TB, yamlText string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(yamlText), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decoding rendered manifests: %v\n%s", err, yamlText)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// find returns the only object of kind, failing t if there is not exactly one.
func find(t testing.TB, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var got []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			got = append(got, o)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(got), kind)
	}
	return got[0]
}

// into converts an unstructured object to a typed one.
func into[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}
