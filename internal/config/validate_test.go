package config_test

import (
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// pool is a config with one pool "a" whose keys are fields (YAML at the
// pool's indentation, one key a line).
func pool(fields string) string {
	var b strings.Builder
	b.WriteString("pools:\n  - name: a\n")
	for l := range strings.SplitSeq(strings.TrimSpace(fields), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// dockerPool is pool with a valid docker section.
func dockerPool(fields string) string { return pool("docker: {image: img}\n" + fields) }

// top is a config with the given top-level keys and a valid pool.
func top(fields string) string { return strings.TrimSpace(fields) + "\n" + minimal }

func TestInvalidValuesNameTheKey(t *testing.T) {
	const P = "pools[0] (a)."
	cases := []struct {
		name string
		yml  string
		want []string // each: "|"-separated substrings of one problem line
	}{
		// counts
		{"negative min_workers", dockerPool("min_workers: -1"), []string{P + "min_workers|must be 0 or more"}},
		{"negative max_workers", dockerPool("max_workers: -2"), []string{P + "max_workers|at least 1"}},
		{"zero max_workers", dockerPool("max_workers: 0"), []string{P + "max_workers|at least 1"}},
		{"min above max", dockerPool("min_workers: 5\nmax_workers: 2"), []string{P + "min_workers|5 is above max_workers 2|lower min_workers or raise max_workers"}},
		{"jobs_per_worker 0", dockerPool("jobs_per_worker: 0"), []string{P + "jobs_per_worker|at least 1"}},
		{"negative idle_workers", dockerPool("idle_workers: -1"), []string{P + "idle_workers|between 0 and max_workers"}},
		{"idle_workers above max", dockerPool("max_workers: 2\nidle_workers: 3"), []string{P + "idle_workers|between 0 and max_workers (2)"}},
		{"negative max_idle_workers", dockerPool("max_idle_workers: -1"), []string{P + "max_idle_workers|0 (no bound) or more"}},

		// wait targets and the idle hold
		{"target with a fixed buffer", dockerPool("idle_workers: 2\ntarget_wait_p95: 10s"), []string{P + "idle_workers|is 2, a fixed buffer|not used|idle_workers: auto"}},
		{"p99 target with a fixed buffer", dockerPool("idle_workers: 0\ntarget_wait_p99: 30s"), []string{P + "idle_workers|not used"}},
		{"zero target", dockerPool("target_wait_p95: 0s"), []string{P + "target_wait_p95|positive duration such as 10s, or auto"}},
		{"bad target", dockerPool("target_wait_p95: soon"), []string{P + "target_wait_p95|invalid duration \"soon\"|or auto"}},
		{"p99 below p95", dockerPool("target_wait_p95: 20s\ntarget_wait_p99: 10s"), []string{P + "target_wait_p99|10s is below target_wait_p95 20s"}},
		{"negative p99", dockerPool("target_wait_p99: -1s"), []string{P + "target_wait_p99|0 (none) or a positive duration"}},
		{"auto p99", dockerPool("target_wait_p99: auto"), []string{P + "target_wait_p99|invalid duration \"auto\""}},
		{"hold bounds crossed", dockerPool("idle_timeout_min: 5m\nidle_timeout_max: 1m"), []string{P + "idle_timeout_min|5m0s is above idle_timeout_max 1m0s"}},
		{"zero hold bound", dockerPool("idle_timeout_max: 0s"), []string{P + "idle_timeout_max|positive duration"}},
		{"negative hold bound", dockerPool("idle_timeout_min: -1s"), []string{P + "idle_timeout_min|0 or a positive duration"}},
		{"zero max_concurrent_provisioning", dockerPool("max_concurrent_provisioning: 0"), []string{P + "max_concurrent_provisioning|at least 1"}},
		{"negative resources", dockerPool("resources: {cpu_millis: -1, memory_mb: -5}"), []string{P + "resources.cpu_millis|0 (no limit) or more", P + "resources.memory_mb|0 (no limit) or more"}},
		{"memory below docker minimum", dockerPool("resources: {memory_mb: 3}"), []string{P + "resources.memory_mb|at least 6"}},

		// provider, durations
		{"unknown provider", pool("provider: lambda"), []string{P + "provider|unknown provider \"lambda\"|docker or kubernetes"}},
		{"duration abc", dockerPool("idle_timeout: abc"), []string{"line 4: " + P + "idle_timeout|invalid duration \"abc\"|such as 30s|or auto"}},
		{"duration without unit", dockerPool("provision_timeout: 10"), []string{P + "provision_timeout|invalid duration \"10\"|with a unit"}},
		{"top-level duration without unit", top("reconcile: {interval: 10}"), []string{"line 1: reconcile.interval|invalid duration \"10\""}},
		{"duration as a list", top("shutdown: {timeout: [1s]}"), []string{"shutdown.timeout|expected a duration such as 30s, got a list"}},
		{"negative duration", dockerPool("idle_timeout: -1s\nstop_grace_period: -5s"), []string{P + "idle_timeout|positive duration", P + "stop_grace_period|0 or more"}},
		{"zero provision_timeout", dockerPool("provision_timeout: 0s"), []string{P + "provision_timeout|positive duration"}},
		{"provision_timeout above max_job_age", "reconcile: {max_job_age: 1m}\n" + dockerPool("provision_timeout: 2m"), []string{P + "provision_timeout|longer than reconcile.max_job_age"}},
		{"zero reconcile durations", top("reconcile: {interval: 0s, resync_interval: 0s, provider_timeout: 0s, max_job_age: 0s, breaker_cooldown: 0s}"), []string{
			"reconcile.interval|positive duration", "reconcile.resync_interval|positive", "reconcile.provider_timeout|positive",
			"reconcile.max_job_age|positive", "reconcile.breaker_cooldown|positive",
		}},
		{"retry_max below retry_initial", top("reconcile: {retry_initial: 10s, retry_max: 5s}"), []string{"reconcile.retry_max|at least reconcile.retry_initial (10s), got 5s"}},
		{"zero retry_initial", top("reconcile: {retry_initial: 0s}"), []string{"reconcile.retry_initial|positive"}},
		{"reconcile counts", top("reconcile: {breaker_failures: 0, max_concurrent_ops: 0}"), []string{"reconcile.breaker_failures|at least 1", "reconcile.max_concurrent_ops|at least 1"}},
		{"zero shutdown timeout", top("shutdown: {timeout: 0s}"), []string{"shutdown.timeout|positive"}},

		// docker and kubernetes sections
		{"docker without image", pool("max_workers: 2"), []string{P + "docker.image|is required"}},
		{"kubernetes without image", pool("provider: kubernetes"), []string{P + "kubernetes.image|is required"}},
		{"kubernetes pool ignores a docker image", pool("provider: kubernetes\ndocker: {image: img}"), []string{P + "kubernetes.image|is required"}},
		{"bad docker pull policy", pool("docker: {image: img, pull_policy: sometimes}"), []string{P + "docker.pull_policy|always, if-not-present or never|\"sometimes\""}},
		{"bad kubernetes pull policy", pool("provider: kubernetes\nkubernetes: {image: i, image_pull_policy: always}"), []string{P + "kubernetes.image_pull_policy|Always, IfNotPresent or Never"}},
		{"empty docker network mode", pool("docker: {image: img, network_mode: ''}"), []string{P + "docker.network_mode|must be set"}},
		{"bad docker mounts", pool("docker: {image: img, mounts: ['/x', '/a:rel', '/a:/b:rx', ':/b']}"), []string{
			P + "docker.mounts|\"/x\"", P + "docker.mounts|\"/a:rel\"", P + "docker.mounts|\"/a:/b:rx\"", P + "docker.mounts|\":/b\"",
		}},
		{"qps not a number", pool("provider: kubernetes\nkubernetes: {image: i, qps: .nan}"), []string{P + "kubernetes.qps|positive number"}},
		{"qps infinite", pool("provider: kubernetes\nkubernetes: {image: i, qps: .inf}"), []string{P + "kubernetes.qps|positive number"}},
		{"bad kubernetes namespace", pool("provider: kubernetes\nkubernetes: {image: i, namespace: Bad_NS}"), []string{P + "kubernetes.namespace|DNS label"}},
		{"kubernetes rate limits", pool("provider: kubernetes\nkubernetes: {image: i, qps: 0, burst: 0}"), []string{P + "kubernetes.qps|positive", P + "kubernetes.burst|at least 1"}},

		// pool names and pools
		{"pool name with spaces", strings.Replace(minimal, "name: a", "name: my pool", 1), []string{"pools[0] (my pool).name|letters, digits, '-' or '_'"}},
		{"pool name with dots", strings.Replace(minimal, "name: a", "name: a.b", 1), []string{"pools[0] (a.b).name|letters, digits"}},
		{"pool name too long", strings.Replace(minimal, "name: a", "name: "+strings.Repeat("x", 64), 1), []string{"pools[0] (" + strings.Repeat("x", 64) + ").name|1-63"}},
		{"pool name with a wildcard", strings.Replace(minimal, "name: a", "name: '*'", 1), []string{"pools[0] (*).name|letters, digits"}},
		{"pool without a name", "pools:\n  - docker: {image: img}\n", []string{"pools[0].name|1-63"}},
		{"duplicate pools", minimal + "  - name: a\n    docker: {image: img}\n", []string{"pools[1] (a).name|duplicate pool name \"a\""}},
		{"pools differing only in case and dashes", minimal + "  - name: A\n    docker: {image: img}\n  - name: x-y\n    docker: {image: img}\n  - name: x_y\n    docker: {image: img}\n", []string{
			"pools[1] (A).name|\"a\" and \"A\" share the environment variables AUTOSCALER_POOLS_A_*|rename one",
			"pools[3] (x_y).name|AUTOSCALER_POOLS_X_Y_*",
		}},
		{"zero pools", "pools: []\n", []string{"pools|at least one pool"}},
		{"no pools key", "name: x\n", []string{"pools|at least one pool"}},

		// top level
		{"bad name", "name: 'has space'\n" + minimal, []string{"name|ownership label"}},
		{"name with a slash", "name: a/b\n" + minimal, []string{"name|ownership label"}},
		{"name too long", "name: " + strings.Repeat("n", 64) + "\n" + minimal, []string{"name|1-63"}},
		{"empty name", "name: ''\n" + minimal, []string{"name|1-63"}},
		{"bad log level and format", top("log: {level: verbose, format: xml}"), []string{"log.level|trace, debug, info, warn, error", "log.format|json or console"}},

		// http
		{"http.listen without host", top("http: {listen: '9090'}"), []string{"http.listen|host:port"}},
		{"http.listen without port", top("http: {listen: localhost}"), []string{"http.listen|host:port"}},
		{"http.listen non-numeric port", top("http: {listen: '127.0.0.1:abc'}"), []string{"http.listen|0-65535"}},
		{"http.listen port out of range", top("http: {listen: '127.0.0.1:70000'}"), []string{"http.listen|0-65535"}},

		// nats
		{"empty nats.url", top("nats: {url: ''}"), []string{"nats.url|\"embedded\" or a server URL"}},
		{"http nats.url", top("nats: {url: 'http://h:4222'}"), []string{"nats.url|is not a NATS URL"}},
		{"nats.url without scheme", top("nats: {url: 'localhost:4222'}"), []string{"nats.url|is not a NATS URL"}},
		{"nats.url without host", top("nats: {url: 'nats://'}"), []string{"nats.url|is not a NATS URL"}},
		{"bad entry in nats.url list", top("nats: {url: 'nats://a:4222,bogus'}"), []string{"nats.url|\"bogus\" is not a NATS URL"}},
		{"credentials in nats.url", top("nats: {url: 'nats://me:s3cr3t@h:4222'}"), []string{"nats.url|must not carry credentials|nats.auth"}},
		{"embedded port out of range", top("nats: {embedded: {port: 70000}}"), []string{"nats.embedded.port|0-65535"}},
		{"embedded without store_dir and host", top("nats: {embedded: {store_dir: '', host: ''}}"), []string{"nats.embedded.store_dir|directory", "nats.embedded.host|address"}},
		{"user and token", top("nats: {url: 'nats://h:4222', auth: {user: u, token: t}}"), []string{"nats.auth|set only one of"}},
		{"token and creds file", top("nats: {url: 'nats://h:4222', auth: {token_file: t, creds_file: c}}"), []string{"nats.auth|set only one of"}},
		{"nkey and creds file", top("nats: {url: 'nats://h:4222', auth: {nkey_seed_file: n, creds_file: c}}"), []string{"nats.auth|set only one of"}},
		{"password and password_file", top("nats: {url: 'nats://h:4222', auth: {user: u, password: p, password_file: f}}"), []string{"nats.auth.password|password or password_file, not both"}},
		{"token and token_file", top("nats: {url: 'nats://h:4222', auth: {token: t, token_file: f}}"), []string{"nats.auth.token|token or token_file, not both"}},
		{"password without user", top("nats: {url: 'nats://h:4222', auth: {password: p}}"), []string{"nats.auth.user|a password needs a user"}},
		{"cert without key", top("nats: {url: 'nats://h:4222', tls: {cert_file: c.pem}}"), []string{"nats.tls|cert_file and key_file go together"}},
		{"key without cert", top("nats: {url: 'nats://h:4222', tls: {key_file: k.pem}}"), []string{"nats.tls|cert_file and key_file go together"}},
		{"embedded with auth", top("nats: {auth: {user: u, password: p}}"), []string{"nats.url|auth and tls settings apply to an external server"}},
		{"embedded with token", top("nats: {auth: {token: t}}"), []string{"nats.url|external server"}},
		{"embedded with tls", top("nats: {tls: {enabled: true}}"), []string{"nats.url|external server"}},
		{"embedded with client cert", top("nats: {tls: {cert_file: c, key_file: k}}"), []string{"nats.url|external server"}},
		{"subject prefix with wildcard", top("nats: {subject_prefix: 'hodei.>'}"), []string{"nats.subject_prefix|subject tokens"}},
		{"subject prefix with empty token", top("nats: {subject_prefix: 'a..b'}"), []string{"nats.subject_prefix|subject tokens"}},
		{"subject prefix with space", top("nats: {subject_prefix: 'a b'}"), []string{"nats.subject_prefix|subject tokens"}},
		{"empty subject prefix", top("nats: {subject_prefix: ''}"), []string{"nats.subject_prefix|subject tokens"}},
		{"max_event_bytes too small", top("nats: {max_event_bytes: 100}"), []string{"nats.max_event_bytes|between 256 and 8388608 (got 100)"}},
		{"max_event_bytes too large", top("nats: {max_event_bytes: 9000000}"), []string{"nats.max_event_bytes|between 256 and 8388608"}},
		{"memory_limit too small", top("memory_limit: 1MiB"), []string{"memory_limit|at least 32MiB"}},
		{"memory_limit not a size", top("memory_limit: lots"), []string{"memory_limit|invalid size"}},
		{"unbounded streams", top("nats: {streams: {max_age: 0s, max_bytes: 0, replicas: 0}}"), []string{"nats.streams.max_age|bounded", "nats.streams.max_bytes|bounded", "nats.streams.replicas|1 to 5"}},
		{"too many replicas", top("nats: {streams: {replicas: 6}}"), []string{"nats.streams.replicas|1 to 5"}},
		{"duplicate window above max_age", top("nats: {streams: {max_age: 1m, duplicate_window: 2m}}"), []string{"nats.streams.duplicate_window|between 0 and nats.streams.max_age"}},
		{"bad max_bytes", top("nats: {streams: {max_bytes: lots}}"), []string{"nats.streams.max_bytes|invalid size \"lots\"|512MiB"}},
		{"bad max_bytes unit", top("nats: {streams: {max_bytes: 12XB}}"), []string{"nats.streams.max_bytes|invalid size \"12XB\""}},
		{"negative max_bytes", top("nats: {streams: {max_bytes: -1}}"), []string{"nats.streams.max_bytes|invalid size"}},
		{"zero timeouts and buffer", top("nats: {connect_timeout: 0s, reconnect_wait: 0s, publish: {buffer: 0}, source: ''}"), []string{
			"nats.connect_timeout|positive", "nats.reconnect_wait|positive", "nats.publish.buffer|at least 1", "nats.source|non-empty",
		}},

		// env
		{"reserved env keys", dockerPool("env: {HODEI_WORKER_ID: x, HODEI_WORKER_POOL: y, HODEI_WORKER_SLOTS: '2'}"), []string{
			P + "env.HODEI_WORKER_ID|set by the autoscaler|remove it", P + "env.HODEI_WORKER_POOL|remove it", P + "env.HODEI_WORKER_SLOTS|remove it",
		}},
		{"bad env names", dockerPool("env: {'1BAD': x, 'A-B': y}"), []string{P + "env|\"1BAD\" is not a valid", P + "env|\"A-B\" is not a valid"}},

		// unknown keys
		{"unknown top-level key", "pool:\n  - name: a\n", []string{"line 1: pool|unknown key (did you mean \"pools\"?)"}},
		{"unknown pool key", dockerPool("max_worker: 3"), []string{"line 4: " + P + "max_worker|unknown key (did you mean \"max_workers\"?)"}},
		{"unknown nested key", top("nats:\n  streams:\n    max_ag: 1h"), []string{"line 3: nats.streams.max_ag|did you mean \"max_age\"?"}},
		{"unknown docker key", pool("docker: {imag: img}"), []string{P + "docker.imag|did you mean \"image\"?"}},
		{"unknown key far from all", top("zzzzzzzz: 1"), []string{"zzzzzzzz|unknown key (known keys: budgets, dry_run, ha, http, inputs, log, memory_limit, name, nats, pools, reconcile, shutdown)"}},
		{"key given twice", dockerPool("max_workers: 2\nmax_workers: 3"), []string{"line 5: " + P + "max_workers|given twice (first on line 4)"}},
		{"second document", minimal + "---\nname: other\n", []string{"line 7: |second YAML document"}},
		{"merge of a scalar", dockerPool("<<: 5"), []string{P + "<<|a merge takes a mapping"}},

		// wrong YAML types
		{"list where a map goes", top("nats: [a, b]"), []string{"line 1: nats|expected a mapping of keys, got a list"}},
		{"scalar where a map goes", top("reconcile: fast"), []string{"reconcile|expected a mapping of keys, got a value"}},
		{"map where the pool list goes", "pools: {name: a}\n", []string{"pools|expected a list such as [a, b], got a mapping"}},
		{"scalar pool", "pools: [a]\n", []string{"pools[0]|expected a mapping of keys, got a value"}},
		{"list where pool env goes", dockerPool("env: [A=1]"), []string{P + "env|expected a mapping of keys, got a list"}},
		{"scalar where a list goes", pool("docker: {image: img, command: /bin/worker}"), []string{P + "docker.command|expected a list"}},
		{"map in a list of strings", pool("docker: {image: img, cap_add: [NET_ADMIN, {a: b}]}"), []string{P + "docker.cap_add[1]|expected a text value, got a mapping"}},
		{"text where a number goes", dockerPool("max_workers: many"), []string{P + "max_workers|expected a whole number, got \"many\""}},
		{"fraction where a whole number goes", dockerPool("max_workers: 2.5"), []string{P + "max_workers|expected a whole number, got \"2.5\""}},
		{"fractional idle_workers", dockerPool("idle_workers: 1.5"), []string{P + "idle_workers|expected a whole number or \"auto\", got \"1.5\""}},
		{"fraction in resources", dockerPool("resources: {cpu_millis: 0.5}"), []string{P + "resources.cpu_millis|expected a whole number"}},
		{"text where a bool goes", top("dry_run: maybe"), []string{"dry_run|expected true or false, got \"maybe\""}},
		{"list where text goes", top("name: [a]"), []string{"name|expected a text value, got a list"}},
		{"text where a float goes", pool("provider: kubernetes\nkubernetes: {image: i, qps: fast}"), []string{P + "kubernetes.qps|expected a number"}},
		{"idle_workers lots", dockerPool("idle_workers: lots"), []string{P + "idle_workers|expected a whole number or \"auto\", got \"lots\""}},
		{"idle_workers as a map", dockerPool("idle_workers: {auto: true}"), []string{P + "idle_workers|expected a whole number or \"auto\", got a mapping"}},
		{"pod_template not a map", pool("provider: kubernetes\nkubernetes: {image: i, pod_template: [x]}"), []string{P + "kubernetes.pod_template|expected a mapping"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblems(t, c.yml, nil, c.want...)
		})
	}
}

// Files that cannot be read as a config at all give one clear problem.
func TestUnreadableFiles(t *testing.T) {
	cases := []struct {
		name, yml, want string
	}{
		{"empty", "", "config is empty"},
		{"blank", "  \n\n", "config is empty"},
		{"comments only", "# nothing here\n", "config is empty"},
		{"document marker only", "---\n", "config is empty"},
		{"null", "~\n", "config is empty"},
		{"list at top level", "- a\n- b\n", "line 1: config must be a mapping of keys"},
		{"scalar at top level", "just text\n", "config must be a mapping of keys (name, nats, pools, ...), got a value"},
		{"not YAML", "pools: [\n", "config is not valid YAML"},
		{"tab indentation", "pools:\n\t- name: a\n", "config is not valid YAML"},
		{"broken second document", minimal + "---\n[\n", "config is not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wantProblems(t, c.yml, nil, c.want)
			if len(got) != 1 {
				t.Errorf("want one problem, got %d:\n  %s", len(got), strings.Join(got, "\n  "))
			}
		})
	}
}

// A file with many problems of every stage (unknown keys, wrong types,
// invalid values, bad overrides) reports all of them in one error, and does
// not repeat a key already reported as the wrong type.
func TestAllProblemsReportedAtOnce(t *testing.T) {
	yml := `name: ok
nats:
  url: 'nats://u:pw@h:4222'
  max_event_bytes: 1
  streams: {max_ag: 1h, replicas: many}
reconcile:
  interval: abc
  retry_initial: 10s
  retry_max: 1s
http: {listen: nope}
pools:
  - name: a
    max_workers: lots
    min_workers: -1
    idle_timeout: 10
    jobs_per_worker: 0
    docker: {pull_policy: sometimes}
  - name: b
    provider: lambda
    env: {HODEI_WORKER_ID: x}
  - 42
`
	want := []string{
		"nats.url|must not carry credentials",
		"nats.max_event_bytes|between 256",
		"line 5: nats.streams.max_ag|did you mean \"max_age\"",
		"line 5: nats.streams.replicas|expected a whole number, got \"many\"",
		"line 7: reconcile.interval|invalid duration \"abc\"",
		"reconcile.retry_max|at least reconcile.retry_initial",
		"http.listen|host:port",
		"line 13: pools[0] (a).max_workers|expected a whole number, got \"lots\"",
		"pools[0] (a).min_workers|0 or more",
		"line 15: pools[0] (a).idle_timeout|invalid duration \"10\"",
		"pools[0] (a).jobs_per_worker|at least 1",
		"pools[0] (a).docker.image|is required",
		"pools[0] (a).docker.pull_policy|sometimes",
		"pools[1] (b).provider|lambda",
		"pools[1] (b).env.HODEI_WORKER_ID|remove it",
		"line 21: pools[2]|expected a mapping of keys, got a value",
		"AUTOSCALER_NOPE|no config key",
		"pools[a].min_workers (from AUTOSCALER_POOLS_A_MIN_WORKERS)|expected a whole number",
	}
	got := wantProblems(t, yml, []string{"AUTOSCALER_NOPE=1", "AUTOSCALER_POOLS_A_MIN_WORKERS=x"}, want...)
	if len(got) != len(want) {
		t.Errorf("want exactly %d problems (no repeats), got %d:\n  %s", len(want), len(got), strings.Join(got, "\n  "))
	}
	for _, p := range got {
		if strings.Contains(p, "pw") {
			t.Errorf("problem shows the password: %q", p)
		}
	}
}

// Validate on a Config built in code reports every problem and changes
// nothing.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := config.Defaults()
	c.Name = ""
	c.HTTP.Listen = "x"
	c.NATS.URL = ""
	c.Reconcile.Interval = 0
	c.Pools = []config.Pool{config.PoolDefaults(), config.PoolDefaults()}
	before := problems(c.Validate())
	for _, w := range []string{"name:", "http.listen:", "nats.url:", "reconcile.interval:", "pools[0].name:", "pools[1].name:", "pools[0].docker.image:", "pools[1].docker.image:"} {
		found := false
		for _, p := range before {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("no problem starts with %q; got:\n  %s", w, strings.Join(before, "\n  "))
		}
	}
	after := problems(c.Validate())
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("Validate is not repeatable:\nfirst  %q\nsecond %q", before, after)
	}
}
