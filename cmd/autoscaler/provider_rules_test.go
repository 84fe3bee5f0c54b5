package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
)

// What autoscaler validate accepts, the daemon's providers accept, and
// what one refuses the other refuses, naming the same key. Each row is a
// pool's provider section, run through the validate command and through
// provider construction (factory.New, as the daemon's start does) on the
// same decoded settings. It pins the defect where validate accepted the
// Docker mount data:/data (a relative host path) that the daemon then
// refused at start, and the pull-policy rules written in two places.
func TestValidateAndProviderConstructionAgree(t *testing.T) {
	dir := t.TempDir()
	// A kubeconfig that New can load without a cluster: it contacts nothing.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeTestFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
	docker := func(section string) string { return "provider: docker\ndocker: {image: w, " + section + "}" }
	kube := func(section string) string {
		return "provider: kubernetes\nkubernetes: {image: w, kubeconfig: " + kubeconfig + ", " + section + "}"
	}
	rows := []struct {
		name string
		pool string // YAML under the pool, after its name
		key  string // the key a refusal names; "" when both accept
	}{
		{"docker defaults", docker("cap_drop: [ALL]"), ""},
		{"docker absolute mounts", docker("mounts: ['/srv/cache:/cache', '/etc/ssl:/etc/ssl:ro']"), ""},
		{"docker relative host path", docker("mounts: ['data:/data']"), "docker.mounts"},
		{"docker relative container path", docker("mounts: ['/data:data']"), "docker.mounts"},
		{"docker mount without container path", docker("mounts: ['/data']"), "docker.mounts"},
		{"docker mount mode", docker("mounts: ['/a:/b:rx']"), "docker.mounts"},
		{"docker pull policies", docker("pull_policy: never"), ""},
		{"docker unknown pull policy", docker("pull_policy: sometimes"), "docker.pull_policy"},
		{"docker empty pull policy", docker("pull_policy: ''"), "docker.pull_policy"},
		{"docker Kubernetes-style pull policy", docker("pull_policy: IfNotPresent"), "docker.pull_policy"},
		{"docker empty network", docker("network_mode: ''"), "docker.network_mode"},
		{"docker unix host", docker("host: 'unix:///var/run/docker.sock'"), ""},
		{"docker tcp host", docker("host: 'tcp://127.0.0.1:2375'"), ""},
		{"docker host without protocol", docker("host: /var/run/docker.sock"), "docker.host"},
		{"docker tcp host that is no URL", docker("host: 'tcp://[::1'"), "docker.host"},
		{"docker without image", "provider: docker\ndocker: {network_mode: none}", "docker.image"},
		{"kubernetes defaults", kube("namespace: ci"), ""},
		{"kubernetes pod template", kube("pod_template: {nodeSelector: {disk: ssd}}"), ""},
		{"kubernetes pull policy", kube("image_pull_policy: Never"), ""},
		{"kubernetes docker-style pull policy", kube("image_pull_policy: if-not-present"), "kubernetes.image_pull_policy"},
		{"kubernetes empty pull policy", kube("image_pull_policy: ''"), "kubernetes.image_pull_policy"},
		{"kubernetes bad namespace", kube("namespace: Bad_NS"), "kubernetes.namespace"},
		{"kubernetes empty namespace", kube("namespace: ''"), "kubernetes.namespace"},
		{"kubernetes qps", kube("qps: 0"), "kubernetes.qps"},
		{"kubernetes burst", kube("burst: 0"), "kubernetes.burst"},
		{"kubernetes not a pod spec", kube("pod_template: {containers: nope}"), "kubernetes.pod_template"},
		{"kubernetes ownership label", kube("labels: {hodei.autoscaler: evil}"), "kubernetes.labels.hodei.autoscaler"},
		{"kubernetes toleration", kube("tolerations: [{key: a, operator: Maybe}]"), "kubernetes.tolerations[0]"},
		{"kubernetes without image", "provider: kubernetes\nkubernetes: {kubeconfig: " + kubeconfig + "}", "kubernetes.image"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			poolYAML := "name: a\n" + row.pool + "\n"
			path := filepath.Join(t.TempDir(), "c.yaml")
			writeTestFile(t, path, "pools:\n  - "+strings.ReplaceAll(strings.TrimSpace(poolYAML), "\n", "\n    ")+"\n")
			code, out, errOut := runCLI(t, "validate", path)
			validated := code == 0

			var pool config.Pool // decoded as the config does, not validated
			if err := yaml.Unmarshal([]byte(poolYAML), &pool); err != nil {
				t.Fatal(err)
			}
			p, err := factory.New("hodei-autoscaler", pool, zerolog.Nop())
			if err == nil {
				if c, ok := p.(io.Closer); ok {
					_ = c.Close()
				}
			}
			built := err == nil

			if validated != built {
				t.Fatalf("validate says ok=%v (%s%s), provider construction says ok=%v (%v)", validated, out, errOut, built, err)
			}
			if validated != (row.key == "") {
				t.Fatalf("both say ok=%v, want %v: %s%s", validated, row.key == "", out, errOut)
			}
			if row.key != "" {
				if !strings.Contains(errOut, "pools[0] (a)."+row.key+":") {
					t.Errorf("validate does not name %s:\n%s", row.key, errOut)
				}
				if !strings.Contains(err.Error(), row.key+":") {
					t.Errorf("provider construction does not name %s: %v", row.key, err)
				}
			}
		})
	}
}

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
