package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		path     string
		wantCode int
		want     []string
	}{
		{name: "the example config", path: "../../config.example.yaml", wantCode: 0, want: []string{"is valid: 1 pool(s)", "default: provider docker"}},
		{name: "every problem at once, keyed", wantCode: 1, path: write("bad.yaml", `
pools:
  - name: linux
    provider: docker
    min_workers: 3
    max_workers: 2
    max_wrokers: 4
    docker: {image: w}
  - name: k
    provider: kubernetes
    kubernetes:
      image: x
      pod_template: {containers: "nope"}
      labels: {hodei.autoscaler: evil}
`), want: []string{
			`line 7: pools[0] (linux).max_wrokers: unknown key (did you mean "max_workers"?)`,
			"pools[0] (linux).min_workers: 3 is above max_workers 2",
		}},
		{name: "provider checks run when the rest is valid", wantCode: 1, path: write("k8s.yaml", `
pools:
  - name: k
    provider: kubernetes
    kubernetes:
      image: x
      pod_template: {containers: "nope"}
      labels: {hodei.autoscaler: evil}
`), want: []string{
			"pools[0] (k).kubernetes.pod_template: not a valid pod spec",
			"pools[0] (k).kubernetes.labels.hodei.autoscaler: is an ownership label",
		}},
		{name: "the Hodei example config", path: "../../config.hodei.example.yaml", wantCode: 0, want: []string{"is valid: 5 pool(s)"}},
		{name: "inputs and routing rules are checked", wantCode: 1, path: write("inputs.yaml", `
pools:
  - name: linux
    docker: {image: w}
inputs:
  - format: hodei-jobs
    routes:
      - pool: windows
        match: {provider: x}
      - pool: linux
        match: {min_memory_mb: 10, max_memory_mb: 5}
  - format: avro
`), want: []string{
			`inputs[0].routes[0].pool: pool "windows" is not configured`,
			"inputs[0].routes[1].match: min_memory_mb 10 is above max_memory_mb 5",
			`inputs[1].format: must be cloudevents or hodei-jobs (got "avro")`,
		}},
		{name: "missing file", path: filepath.Join(dir, "nope.yaml"), wantCode: 1, want: []string{"reading config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "validate", "--config", tt.path)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "hodei-autoscaler ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

// A malformed config stops the daemon before anything starts.
func TestRunRefusesBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("pools: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "run", "--config", p)
	if code != 1 || !strings.Contains(errOut, "pools: at least one pool is needed") {
		t.Errorf("run with a bad config: %d %q", code, errOut)
	}
}
