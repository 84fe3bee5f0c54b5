package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// minimal is the smallest valid config: one docker pool with its image.
const minimal = `
pools:
  - name: a
    docker:
      image: img
`

// problems flattens an errors.Join tree into its messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func mustParse(t *testing.T, yml string, environ ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), environ)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v\n--- config:\n%s", err, yml)
	}
	return cfg
}

// wantProblems parses yml and checks that the error holds every one of
// want (each a substring of the same problem line, "|"-separated), and that
// no problem is malformed.
func wantProblems(t *testing.T, yml string, environ []string, want ...string) []string {
	t.Helper()
	_, err := config.Parse([]byte(yml), environ)
	if err == nil {
		t.Fatalf("Parse: want an error naming %q, got none\n--- config:\n%s", want, yml)
	}
	got := problems(err)
	for _, p := range got {
		if p == "" || strings.Contains(p, "%!") || strings.Contains(p, "\n") {
			t.Errorf("malformed problem %q", p)
		}
	}
	for _, w := range want {
		parts := strings.Split(w, "|")
		if !slices.ContainsFunc(got, func(p string) bool {
			for _, part := range parts {
				if !strings.Contains(p, part) {
					return false
				}
			}
			return true
		}) {
			t.Errorf("no problem contains all of %q; got:\n  %s", parts, strings.Join(got, "\n  "))
		}
	}
	return got
}

func exampleFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join("..", "..", "config.example.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("config.example.yaml not found at the repo root: %v", err)
	}
	return path
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := config.Load(exampleFile(t), nil)
	if err != nil {
		t.Fatalf("config.example.yaml does not load:\n%v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config.example.yaml does not validate:\n%v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", cfg.Name, "hodei-autoscaler"},
		{"nats.url", cfg.NATS.URL, "embedded"},
		{"nats.streams.max_bytes", cfg.NATS.Streams.MaxBytes, config.ByteSize(1 << 30)},
		{"nats.streams.max_age", cfg.NATS.Streams.MaxAge.D(), 168 * time.Hour},
		{"reconcile.retry_max", cfg.Reconcile.RetryMax.D(), 5 * time.Minute},
		{"pools", len(cfg.Pools), 1},
		{"pools[0].name", cfg.Pools[0].Name, "default"},
		{"pools[0].provider", cfg.Pools[0].Provider, "docker"},
		{"pools[0].max_workers", cfg.Pools[0].MaxWorkers, 5},
		{"pools[0].docker.image", cfg.Pools[0].Docker.Image, "hodei-worker:dev"},
		{"pools[0].docker.cap_drop", cfg.Pools[0].Docker.CapDrop, []string{"ALL"}},
		{"pools[0].env", cfg.Pools[0].Env, map[string]string{"HODEI_NATS_URL": "nats://127.0.0.1:4222"}},
		{"pools[0].kubernetes.namespace", cfg.Pools[0].Kubernetes.Namespace, "hodei-workers"},
		{"pools[0].dry_run", cfg.Pools[0].DryRun, (*bool)(nil)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// Every key of Config is documented in config.example.yaml (set or in a
// comment), so a key added to the types without documentation fails here.
func TestExampleDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(exampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, key := range yamlKeys(reflect.TypeFor[config.Config](), "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(text, leaf+":") {
			t.Errorf("key %s is not documented in config.example.yaml", key)
		}
	}
}

// yamlKeys lists the key paths of a config type (pools as pools.<key>).
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		out = append(out, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[config.IdleWorkers]() {
			out = append(out, yamlKeys(ft, path)...)
		}
	}
	return out
}

func TestDefaultsApplyToKeysLeftOut(t *testing.T) {
	t.Run("whole file", func(t *testing.T) {
		cfg := mustParse(t, minimal)
		want := config.Defaults()
		p := config.PoolDefaults()
		p.Name, p.Docker.Image = "a", "img"
		want.Pools = []config.Pool{p}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("minimal config differs from the defaults:\n got %+v\nwant %+v", cfg, want)
		}
	})
	t.Run("partial nested sections keep their other defaults", func(t *testing.T) {
		cfg := mustParse(t, `
nats:
  url: nats://nats.internal:4222
  streams:
    max_age: 48h
reconcile:
  interval: 1s
pools:
  - name: a
    max_workers: 3
    docker:
      image: img
      pull_policy: always
  - name: k
    provider: kubernetes
    kubernetes:
      image: reg/worker:1
`)
		d, pd := config.Defaults(), config.PoolDefaults()
		checks := []struct {
			name      string
			got, want any
		}{
			{"nats.subject_prefix", cfg.NATS.SubjectPrefix, d.NATS.SubjectPrefix},
			{"nats.streams.max_bytes", cfg.NATS.Streams.MaxBytes, d.NATS.Streams.MaxBytes},
			{"nats.streams.replicas", cfg.NATS.Streams.Replicas, d.NATS.Streams.Replicas},
			{"nats.streams.max_age", cfg.NATS.Streams.MaxAge.D(), 48 * time.Hour},
			{"reconcile.resync_interval", cfg.Reconcile.ResyncInterval, d.Reconcile.ResyncInterval},
			{"reconcile.interval", cfg.Reconcile.Interval.D(), time.Second},
			{"pools[a].min_workers", cfg.Pools[0].MinWorkers, pd.MinWorkers},
			{"pools[a].jobs_per_worker", cfg.Pools[0].JobsPerWorker, pd.JobsPerWorker},
			{"pools[a].idle_timeout", cfg.Pools[0].IdleTimeout, pd.IdleTimeout},
			{"pools[a].stop_grace_period", cfg.Pools[0].StopGracePeriod, pd.StopGracePeriod},
			{"pools[a].docker.network_mode", cfg.Pools[0].Docker.NetworkMode, pd.Docker.NetworkMode},
			{"pools[a].docker.cap_drop", cfg.Pools[0].Docker.CapDrop, pd.Docker.CapDrop},
			{"pools[a].docker.pull_policy", cfg.Pools[0].Docker.PullPolicy, "always"},
			{"pools[a].max_workers", cfg.Pools[0].MaxWorkers, 3},
			{"pools[k].max_workers", cfg.Pools[1].MaxWorkers, pd.MaxWorkers},
			{"pools[k].kubernetes.namespace", cfg.Pools[1].Kubernetes.Namespace, pd.Kubernetes.Namespace},
			{"pools[k].kubernetes.image_pull_policy", cfg.Pools[1].Kubernetes.ImagePullPolicy, pd.Kubernetes.ImagePullPolicy},
			{"pools[k].kubernetes.qps", cfg.Pools[1].Kubernetes.QPS, pd.Kubernetes.QPS},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
			}
		}
	})
	t.Run("pools do not share default slices", func(t *testing.T) {
		cfg := mustParse(t, minimal+"  - name: b\n    docker: {image: img}\n")
		cfg.Pools[0].Docker.CapDrop[0] = "CHANGED"
		if got := cfg.Pools[1].Docker.CapDrop[0]; got != "ALL" {
			t.Errorf("changing pool a's cap_drop changed pool b's to %q", got)
		}
		if got := config.PoolDefaults().Docker.CapDrop[0]; got != "ALL" {
			t.Errorf("changing a pool's cap_drop changed PoolDefaults to %q", got)
		}
	})
}

func TestValidConfigs(t *testing.T) {
	cases := []struct {
		name  string
		yml   string
		check func(t *testing.T, c config.Config)
	}{
		{"idle_workers auto", minimal + "    idle_workers: auto\n", func(t *testing.T, c config.Config) {
			if !c.Pools[0].IdleWorkers.Auto {
				t.Errorf("idle_workers = %v, want auto", c.Pools[0].IdleWorkers)
			}
		}},
		{"idle_workers count", minimal + "    idle_workers: 2\n", func(t *testing.T, c config.Config) {
			if w := c.Pools[0].IdleWorkers; w.Auto || w.Count != 2 {
				t.Errorf("idle_workers = %v, want 2", w)
			}
		}},
		{"duration 0 and 0s", minimal + "    idle_timeout: 0\n    stop_grace_period: 0s\n", func(t *testing.T, c config.Config) {
			if c.Pools[0].IdleTimeout != config.Fixed(0) || c.Pools[0].StopGracePeriod != 0 {
				t.Errorf("idle_timeout %v, stop_grace_period %v: want 0", c.Pools[0].IdleTimeout, c.Pools[0].StopGracePeriod)
			}
		}},
		{"byte sizes", "nats: {streams: {max_bytes: 512MiB}}\n" + minimal, func(t *testing.T, c config.Config) {
			if c.NATS.Streams.MaxBytes != 512<<20 {
				t.Errorf("max_bytes = %d", c.NATS.Streams.MaxBytes)
			}
		}},
		{"nats url list", "nats: {url: 'nats://a:4222, tls://b:4222,ws://c:80'}\n" + minimal, nil},
		{"external server with user and password", "nats: {url: nats://h:4222, auth: {user: u, password: pw}, tls: {enabled: true, ca_file: ca.pem, cert_file: c.pem, key_file: k.pem}}\n" + minimal, nil},
		{"empty section keeps defaults", "nats:\n  # nothing set\nlog:\n" + minimal, func(t *testing.T, c config.Config) {
			if c.NATS != config.Defaults().NATS || c.Log != config.Defaults().Log {
				t.Errorf("an empty section changed the defaults: %+v %+v", c.NATS, c.Log)
			}
		}},
		{"anchors and merge keys", `
pools:
  - &base
    name: a
    max_workers: 7
    docker: {image: img}
  - <<: *base
    name: b
  - <<: [*base]
    name: c
    max_workers: 2
`, func(t *testing.T, c config.Config) {
			if len(c.Pools) != 3 || c.Pools[1].MaxWorkers != 7 || c.Pools[1].Docker.Image != "img" || c.Pools[2].MaxWorkers != 2 {
				t.Errorf("merged pools: %+v", c.Pools)
			}
		}},
		{"kubernetes pool with pod template", `
pools:
  - name: k8s-small
    provider: kubernetes
    dry_run: true
    kubernetes:
      image: reg/w:1
      namespace: ci
      node_selector: {pool: ci}
      tolerations: [{key: ci, operator: Exists}]
      pod_template: {affinity: {nodeAffinity: {}}, volumes: [{name: x, emptyDir: {}}]}
`, func(t *testing.T, c config.Config) {
			p := c.Pools[0]
			if !p.IsDryRun(false) || p.Kubernetes.Namespace != "ci" || len(p.Kubernetes.Tolerations) != 1 || p.Kubernetes.PodTemplate["volumes"] == nil {
				t.Errorf("kubernetes pool: %+v", p)
			}
		}},
		{"documents end marker", minimal + "...\n", nil},
		{"trailing empty document", minimal + "---\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, c.yml)
			if c.check != nil {
				c.check(t, cfg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "reading config") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	cases := []struct {
		parts []string
		want  string
	}{
		{[]string{"nats", "url"}, "AUTOSCALER_NATS_URL"},
		{[]string{"pools", "linux-small", "max_workers"}, "AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS"},
		{[]string{"pools", "-edge-", "docker", "image"}, "AUTOSCALER_POOLS_EDGE_DOCKER_IMAGE"},
	}
	for _, c := range cases {
		in := slices.Clone(c.parts)
		if got := config.EnvName(in...); got != c.want {
			t.Errorf("EnvName(%q) = %q, want %q", c.parts, got, c.want)
		}
		if !slices.Equal(in, c.parts) {
			t.Errorf("EnvName changed its argument slice to %q", in)
		}
	}
}

// No two keys share an environment variable name: each override reaches
// exactly one key.
func TestEnvNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, key := range yamlKeys(reflect.TypeFor[config.Config](), "") {
		parts := strings.Split(key, ".")
		if parts[0] == "pools" {
			parts = append([]string{"pools", "default"}, parts[1:]...)
		}
		name := config.EnvName(parts...)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s are both %s", other, key, name)
		}
		seen[name] = key
	}
}
