package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// twoPools has pools "default" and "linux-small" (a name with '-').
const twoPools = `
pools:
  - name: default
    docker: {image: img}
    env: {FROM_FILE: "1"}
  - name: linux-small
    docker: {image: small}
`

func TestEnvOverrides(t *testing.T) {
	// Characters YAML would mangle (flow indicators, comment, quotes,
	// anchors, tags, a leading '-', a trailing colon) and a number.
	const password = `-p@ss: #w0rd "x" 'y' {z} [w], &a *b !tag |> %`
	cases := []struct {
		name  string
		env   []string
		check func(t *testing.T, c config.Config)
	}{
		{"scalar", []string{"AUTOSCALER_NATS_URL=nats://nats.internal:4222"}, func(t *testing.T, c config.Config) {
			eq(t, "nats.url", c.NATS.URL, "nats://nats.internal:4222")
		}},
		{"url list with spaces, verbatim", []string{"AUTOSCALER_NATS_URL=nats://a:4222, nats://b:4222"}, func(t *testing.T, c config.Config) {
			eq(t, "nats.url", c.NATS.URL, "nats://a:4222, nats://b:4222")
		}},
		{"duration", []string{"AUTOSCALER_RECONCILE_INTERVAL=10s"}, func(t *testing.T, c config.Config) {
			eq(t, "reconcile.interval", c.Reconcile.Interval.D(), 10*time.Second)
		}},
		{"bools", []string{"AUTOSCALER_DRY_RUN=true", "AUTOSCALER_SHUTDOWN_STOP_WORKERS=true", "AUTOSCALER_NATS_STREAMS_CREATE=false"}, func(t *testing.T, c config.Config) {
			eq(t, "dry_run", c.DryRun, true)
			eq(t, "shutdown.stop_workers", c.Shutdown.StopWorkers, true)
			eq(t, "nats.streams.create", c.NATS.Streams.Create, false)
		}},
		{"nested keys", []string{"AUTOSCALER_NATS_STREAMS_MAX_AGE=48h", "AUTOSCALER_NATS_STREAMS_MAX_BYTES=2GiB", "AUTOSCALER_NATS_EMBEDDED_PORT=-1", "AUTOSCALER_NATS_PUBLISH_BUFFER=5"}, func(t *testing.T, c config.Config) {
			eq(t, "nats.streams.max_age", c.NATS.Streams.MaxAge.D(), 48*time.Hour)
			eq(t, "nats.streams.max_bytes", c.NATS.Streams.MaxBytes, config.ByteSize(2<<30))
			eq(t, "nats.embedded.port", c.NATS.Embedded.Port, -1)
			eq(t, "nats.publish.buffer", c.NATS.Publish.Buffer, 5)
		}},
		{"pool key by name", []string{"AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS=20"}, func(t *testing.T, c config.Config) {
			eq(t, "pools[default].max_workers", c.Pools[0].MaxWorkers, 20)
			eq(t, "pools[linux-small].max_workers", c.Pools[1].MaxWorkers, config.PoolDefaults().MaxWorkers)
		}},
		{"pool name with a dash", []string{"AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS=3", "AUTOSCALER_POOLS_LINUX_SMALL_DOCKER_IMAGE=reg/w:2"}, func(t *testing.T, c config.Config) {
			eq(t, "pools[linux-small].max_workers", c.Pools[1].MaxWorkers, 3)
			eq(t, "pools[linux-small].docker.image", c.Pools[1].Docker.Image, "reg/w:2")
			eq(t, "pools[default].max_workers", c.Pools[0].MaxWorkers, config.PoolDefaults().MaxWorkers)
		}},
		{"wait targets and the idle hold", []string{"AUTOSCALER_POOLS_DEFAULT_TARGET_WAIT_P95=15s", "AUTOSCALER_POOLS_DEFAULT_IDLE_TIMEOUT=45s", "AUTOSCALER_POOLS_LINUX_SMALL_IDLE_TIMEOUT_MAX=2m"}, func(t *testing.T, c config.Config) {
			eq(t, "target_wait_p95", c.Pools[0].TargetWaitP95, config.Fixed(15*time.Second))
			eq(t, "idle_timeout", c.Pools[0].IdleTimeout, config.Fixed(45*time.Second))
			eq(t, "linux-small idle_timeout", c.Pools[1].IdleTimeout, config.Auto)
			eq(t, "linux-small idle_timeout_max", c.Pools[1].IdleTimeoutMax.D(), 2*time.Minute)
		}},
		{"pool custom types", []string{"AUTOSCALER_POOLS_DEFAULT_IDLE_WORKERS=auto", "AUTOSCALER_POOLS_DEFAULT_DRY_RUN=true", "AUTOSCALER_POOLS_DEFAULT_RESOURCES_CPU_MILLIS=250"}, func(t *testing.T, c config.Config) {
			eq(t, "idle_workers", c.Pools[0].IdleWorkers, config.IdleWorkers{Auto: true})
			eq(t, "dry_run", c.Pools[0].IsDryRun(false), true)
			eq(t, "linux-small dry_run", c.Pools[1].DryRun, (*bool)(nil))
			eq(t, "resources.cpu_millis", c.Pools[0].Resources.CPUMillis, int64(250))
		}},
		{"map in flow syntax replaces the map", []string{`AUTOSCALER_POOLS_DEFAULT_ENV={HODEI_SERVER_GRPC_URL: "http://sched:50051", GREETING: "a b: c"}`}, func(t *testing.T, c config.Config) {
			eq(t, "env", c.Pools[0].Env, map[string]string{"HODEI_SERVER_GRPC_URL": "http://sched:50051", "GREETING": "a b: c"})
		}},
		{"list in flow syntax", []string{`AUTOSCALER_POOLS_DEFAULT_DOCKER_COMMAND=["/worker","-v"]`, "AUTOSCALER_POOLS_DEFAULT_DOCKER_CAP_ADD=[NET_BIND_SERVICE]"}, func(t *testing.T, c config.Config) {
			eq(t, "docker.command", c.Pools[0].Docker.Command, []string{"/worker", "-v"})
			eq(t, "docker.cap_add", c.Pools[0].Docker.CapAdd, []string{"NET_BIND_SERVICE"})
		}},
		{"secret taken verbatim", []string{"AUTOSCALER_NATS_URL=nats://h:4222", "AUTOSCALER_NATS_AUTH_USER=svc", "AUTOSCALER_NATS_AUTH_PASSWORD=" + password}, func(t *testing.T, c config.Config) {
			eq(t, "nats.auth.user", c.NATS.Auth.User, "svc")
			eq(t, "nats.auth.password", c.NATS.Auth.Password.Value(), password)
		}},
		{"secrets YAML would retype", []string{"AUTOSCALER_NATS_URL=nats://h:4222", "AUTOSCALER_NATS_AUTH_TOKEN=0123"}, func(t *testing.T, c config.Config) {
			eq(t, "nats.auth.token", c.NATS.Auth.Token.Value(), "0123")
		}},
		{"value with '='", []string{"AUTOSCALER_NATS_URL=nats://h:4222", "AUTOSCALER_NATS_AUTH_TOKEN=a=b=="}, func(t *testing.T, c config.Config) {
			eq(t, "nats.auth.token", c.NATS.Auth.Token.Value(), "a=b==")
		}},
		{"AUTOSCALER_CONFIG and other variables are ignored", []string{"AUTOSCALER_CONFIG=/etc/autoscaler.yaml", "HOME=/root", "NOEQUALS", "autoscaler_nats_url=lower"}, func(t *testing.T, c config.Config) {
			eq(t, "nats.url", c.NATS.URL, "embedded")
		}},
		{"no variables", nil, func(t *testing.T, c config.Config) {
			eq(t, "pools", len(c.Pools), 2)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, mustParse(t, twoPools, c.env...))
		})
	}
}

func TestEnvOverrideProblems(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown variable", []string{"AUTOSCALER_NATS_URLL=x"}, []string{"AUTOSCALER_NATS_URLL|no config key has this name|AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS"}},
		{"unknown pool", []string{"AUTOSCALER_POOLS_NOPE_MAX_WORKERS=3"}, []string{"AUTOSCALER_POOLS_NOPE_MAX_WORKERS|no config key"}},
		{"pool addressed by index", []string{"AUTOSCALER_POOLS_0_MAX_WORKERS=3"}, []string{"AUTOSCALER_POOLS_0_MAX_WORKERS|no config key"}},
		{"a section is not a key", []string{"AUTOSCALER_NATS={url: x}"}, []string{"AUTOSCALER_NATS|no config key"}},
		{"bare prefix", []string{"AUTOSCALER_=1"}, []string{"AUTOSCALER_|no config key"}},
		{"bad number", []string{"AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS=many"}, []string{"pools[default].max_workers (from AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS)|expected a whole number, got \"many\""}},
		{"fractional number", []string{"AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS=2.5"}, []string{"pools[linux-small].max_workers (from AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS)|expected a whole number, got \"2.5\""}},
		{"bad duration", []string{"AUTOSCALER_RECONCILE_INTERVAL=abc"}, []string{"reconcile.interval (from AUTOSCALER_RECONCILE_INTERVAL)|invalid duration \"abc\""}},
		{"duration without unit", []string{"AUTOSCALER_RECONCILE_INTERVAL=10"}, []string{"reconcile.interval (from AUTOSCALER_RECONCILE_INTERVAL)|invalid duration \"10\""}},
		{"bad bool", []string{"AUTOSCALER_DRY_RUN=maybe"}, []string{"dry_run (from AUTOSCALER_DRY_RUN)|expected true or false"}},
		{"bad idle_workers", []string{"AUTOSCALER_POOLS_DEFAULT_IDLE_WORKERS=lots"}, []string{"pools[default].idle_workers (from AUTOSCALER_POOLS_DEFAULT_IDLE_WORKERS)|\"auto\""}},
		{"scalar where a list goes", []string{"AUTOSCALER_POOLS_DEFAULT_DOCKER_COMMAND=/worker"}, []string{"pools[default].docker.command (from AUTOSCALER_POOLS_DEFAULT_DOCKER_COMMAND)|expected a list"}},
		{"broken flow syntax", []string{"AUTOSCALER_POOLS_DEFAULT_ENV={A: 1"}, []string{"pools[default].env (from AUTOSCALER_POOLS_DEFAULT_ENV)"}},
		{"valid type, invalid value", []string{"AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS=-3"}, []string{"pools[0] (default).max_workers|at least 1"}},
		{"credentials in the url", []string{"AUTOSCALER_NATS_URL=nats://u:s3cr3t@h:4222"}, []string{"nats.url|must not carry credentials"}},
		{"several at once", []string{"AUTOSCALER_A=1", "AUTOSCALER_B=2", "AUTOSCALER_DRY_RUN=x"}, []string{"AUTOSCALER_A|no config key", "AUTOSCALER_B|no config key", "dry_run (from AUTOSCALER_DRY_RUN)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wantProblems(t, twoPools, c.env, c.want...)
			for _, p := range got {
				if strings.Contains(p, "s3cr3t") {
					t.Errorf("problem shows the secret: %q", p)
				}
			}
		})
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// With pools "default" and "default_max", AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS
// spells default.max_idle_workers and default_max.idle_workers. It used to
// set both; now it is refused, naming both keys and the fix, and neither
// pool is changed. Variables that name one key still apply.
func TestEnvOverrideNamingTwoKeysIsRefused(t *testing.T) {
	const yml = `
pools:
  - name: default
    docker: {image: img}
  - name: default_max
    docker: {image: img}
`
	got := wantProblems(t, yml, []string{"AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS=7"},
		"AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS|pools[default].max_idle_workers|pools[default_max].idle_workers|applied to neither|rename a pool")
	if len(got) != 1 {
		t.Errorf("want one problem, got %q", got)
	}
	c := mustParse(t, yml, "AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS=4", "AUTOSCALER_POOLS_DEFAULT_MAX_MAX_WORKERS=6")
	eq(t, "pools[default].max_workers", c.Pools[0].MaxWorkers, 4)
	eq(t, "pools[default_max].max_workers", c.Pools[1].MaxWorkers, 6)
	eq(t, "pools[default].max_idle_workers", c.Pools[0].MaxIdleWorkers, 0)
}
