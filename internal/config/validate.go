package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/logging"
)

// Providers this build knows. Both are always compiled in.
var knownProviders = []string{"docker", "kubernetes"}

// Validate reports every problem in the configuration, one error per
// problem, each naming the key and the fix.
func (c *Config) Validate() error {
	v := &validator{}
	c.validate(v)
	return errors.Join(v.problems...)
}

type validator struct{ problems []error }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "must be a positive duration such as 30s (got %s)", d)
	}
}

func (c *Config) validate(v *validator) {
	if !labelValueRE.MatchString(c.Name) {
		v.add("name", "must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got %q): it is the hodei.autoscaler ownership label on every container and pod", c.Name)
	}
	switch strings.ToLower(c.Log.Level) {
	case "trace", "debug", "info", "warn", "error":
	default:
		v.add("log.level", "must be one of trace, debug, info, warn, error (got %q)", c.Log.Level)
	}
	if err := logging.CheckFormat(c.Log.Format); err != nil {
		v.add("log.format", "%v", err)
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || !validPort(port) {
		v.add("http.listen", "must be host:port with a port of 0-65535, such as 127.0.0.1:9090 (got %q)", c.HTTP.Listen)
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 32<<20 {
		v.add("memory_limit", "must be 0 (chosen: GOMEMLIMIT, the cgroup limit or 150MiB) or at least 32MiB, such as 256MiB (got %d bytes)", c.MemoryLimit)
	}
	c.NATS.validate(v)
	c.HA.validate(v, c.NATS)
	c.Reconcile.validate(v)
	c.validateInputs(v)
	v.positive("shutdown.timeout", c.Shutdown.Timeout)

	if len(c.Pools) == 0 {
		v.add("pools", "at least one pool is needed; see config.example.yaml")
	}
	seen := map[string]bool{}
	envNames := map[string]string{} // AUTOSCALER_POOLS_<NAME> -> first pool name
	for i := range c.Pools {
		p := &c.Pools[i]
		key := fmt.Sprintf("pools[%d]", i)
		if p.Name != "" {
			key = fmt.Sprintf("pools[%d] (%s)", i, p.Name)
		}
		if seen[p.Name] {
			v.add(key+".name", "duplicate pool name %q: every pool needs its own name", p.Name)
		}
		seen[p.Name] = true
		// Overrides address pools by name with non-alphanumerics as '_' and
		// in upper case, so a-b and A_B would share every variable.
		if en := EnvName("pools", p.Name); p.Name != "" {
			if other, dup := envNames[en]; dup && other != p.Name {
				v.add(key+".name", "pools %q and %q share the environment variables %s_*: rename one so each name differs in more than case and '-'/'_'", other, p.Name, en)
			} else if !dup {
				envNames[en] = p.Name
			}
		}
		p.validate(v, key, c.Reconcile)
		p.validateShare(v, key, c.Budgets)
		p.validateTiers(v, key)
	}
	c.validateBudgets(v)
}

func (n *NATS) validate(v *validator) {
	if n.URL == "" {
		v.add("nats.url", "must be \"embedded\" or a server URL such as nats://127.0.0.1:4222")
	} else if n.URL == "embedded" {
		if n.Embedded.Port < -1 || n.Embedded.Port > 65535 {
			v.add("nats.embedded.port", "must be 0-65535, or -1 for a random port (got %d)", n.Embedded.Port)
		}
		if n.Embedded.StoreDir == "" {
			v.add("nats.embedded.store_dir", "must name a directory for JetStream's files, such as data/nats")
		}
		if n.Embedded.Host == "" {
			v.add("nats.embedded.host", "must be an address to listen on, such as 127.0.0.1")
		}
	} else {
		for _, u := range strings.Split(n.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, pu.Scheme) {
				v.add("nats.url", "%q is not a NATS URL: use embedded or nats://host:port (tls://, ws://, wss:// also work)", redactUserinfo(u))
			} else if pu.User != nil {
				v.add("nats.url", "must not carry credentials; put them in nats.auth (or AUTOSCALER_NATS_AUTH_PASSWORD) so they stay out of logs")
			}
		}
	}
	if !subjectTokenRE.MatchString(n.SubjectPrefix) {
		v.add("nats.subject_prefix", "must be one or more subject tokens of letters, digits, '-' or '_' separated by dots (got %q)", n.SubjectPrefix)
	}
	if n.Streams.MaxAge <= 0 {
		v.add("nats.streams.max_age", "must be positive so the streams stay bounded, such as 168h (got %s)", n.Streams.MaxAge)
	}
	if n.Streams.MaxBytes <= 0 {
		v.add("nats.streams.max_bytes", "must be positive so the streams stay bounded, such as 1GiB (got %d)", n.Streams.MaxBytes)
	}
	if n.Streams.Replicas < 1 || n.Streams.Replicas > 5 {
		v.add("nats.streams.replicas", "must be 1 to 5 (got %d)", n.Streams.Replicas)
	}
	if n.Streams.DuplicateWindow < 0 || (n.Streams.MaxAge > 0 && n.Streams.DuplicateWindow > n.Streams.MaxAge) {
		v.add("nats.streams.duplicate_window", "must be between 0 and nats.streams.max_age (got %s)", n.Streams.DuplicateWindow)
	}
	if n.MaxEventBytes < 256 || n.MaxEventBytes > 8<<20 {
		v.add("nats.max_event_bytes", "must be between 256 and 8388608 (got %d)", n.MaxEventBytes)
	}
	if n.MaxClockSkew < 0 {
		v.add("nats.max_clock_skew", "must not be negative; 0 turns the check off (got %s)", n.MaxClockSkew)
	}
	v.positive("nats.connect_timeout", n.ConnectWait)
	v.positive("nats.reconnect_wait", n.ReconnectWait)
	if n.Publish.Buffer < 1 {
		v.add("nats.publish.buffer", "must be at least 1 (got %d)", n.Publish.Buffer)
	}
	if n.Source == "" {
		v.add("nats.source", "must be a non-empty CloudEvents source, such as hodei-autoscaler")
	}
	a := n.Auth
	methods := 0
	for _, set := range []bool{a.User != "", a.Token != "" || a.TokenFile != "", a.NKeySeedFile != "", a.CredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		v.add("nats.auth", "set only one of user/password, token, nkey_seed_file or creds_file")
	}
	if a.Password != "" && a.PasswordFile != "" {
		v.add("nats.auth.password", "set password or password_file, not both")
	}
	if (a.Password != "" || a.PasswordFile != "") && a.User == "" {
		v.add("nats.auth.user", "a password needs a user")
	}
	if a.Token != "" && a.TokenFile != "" {
		v.add("nats.auth.token", "set token or token_file, not both")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		v.add("nats.tls", "cert_file and key_file go together (mutual TLS needs both)")
	}
	if n.URL == "embedded" && (methods > 0 || a.Password != "" || a.PasswordFile != "" || n.TLS.Enabled || n.TLS.CAFile != "" || n.TLS.CertFile != "" || n.TLS.KeyFile != "") {
		v.add("nats.url", "auth and tls settings apply to an external server; the embedded server listens on loopback without them")
	}
}

func (r *Reconcile) validate(v *validator) {
	v.positive("reconcile.interval", r.Interval)
	v.positive("reconcile.resync_interval", r.ResyncInterval)
	v.positive("reconcile.provider_timeout", r.ProviderTimeout)
	v.positive("reconcile.max_job_age", r.MaxJobAge)
	v.positive("reconcile.retry_initial", r.RetryInitial)
	if r.RetryMax < r.RetryInitial {
		v.add("reconcile.retry_max", "must be at least reconcile.retry_initial (%s), got %s", r.RetryInitial, r.RetryMax)
	}
	if !(r.RetryJitter >= 0 && r.RetryJitter <= 1) { // NaN fails both
		v.add("reconcile.retry_jitter", "must be a fraction from 0 (none) to 1 (got %g)", r.RetryJitter)
	}
	if r.BreakerFailures < 1 {
		v.add("reconcile.breaker_failures", "must be at least 1 (got %d)", r.BreakerFailures)
	}
	v.positive("reconcile.breaker_cooldown", r.BreakerCooldown)
	if r.MaxConcurrentOps < 1 {
		v.add("reconcile.max_concurrent_ops", "must be at least 1 (got %d)", r.MaxConcurrentOps)
	}
}

func (p *Pool) validate(v *validator, key string, r Reconcile) {
	if err := domain.ValidatePoolName(p.Name); err != nil {
		v.add(key+".name", "%v", err)
	}
	if !slices.Contains(knownProviders, p.Provider) {
		v.add(key+".provider", "unknown provider %q: use docker or kubernetes", p.Provider)
	}
	if p.MinWorkers < 0 {
		v.add(key+".min_workers", "must be 0 or more (got %d)", p.MinWorkers)
	}
	if p.MaxWorkers < 1 {
		v.add(key+".max_workers", "must be at least 1 (got %d)", p.MaxWorkers)
	}
	if p.MinWorkers > p.MaxWorkers {
		v.add(key+".min_workers", "%d is above max_workers %d: lower min_workers or raise max_workers", p.MinWorkers, p.MaxWorkers)
	}
	if p.JobsPerWorker < 1 {
		v.add(key+".jobs_per_worker", "must be at least 1 (got %d)", p.JobsPerWorker)
	}
	if !p.IdleWorkers.Auto && (p.IdleWorkers.Count < 0 || p.IdleWorkers.Count > p.MaxWorkers) {
		v.add(key+".idle_workers", "must be between 0 and max_workers (%d), or auto (got %d)", p.MaxWorkers, p.IdleWorkers.Count)
	}
	if p.MaxIdleWorkers < 0 {
		v.add(key+".max_idle_workers", "must be 0 (no bound) or more (got %d)", p.MaxIdleWorkers)
	}
	p.validateWaits(v, key)
	v.positive(key+".provision_timeout", p.ProvisionTimeout)
	p.validatePolicy(v, key)
	if p.MaxConcurrentProvisioning < 1 {
		v.add(key+".max_concurrent_provisioning", "must be at least 1 (got %d)", p.MaxConcurrentProvisioning)
	}
	if p.StopGracePeriod < 0 {
		v.add(key+".stop_grace_period", "must be 0 or more (got %s)", p.StopGracePeriod)
	}
	if p.DrainTimeout < p.StopGracePeriod {
		v.add(key+".drain_timeout", "must be at least stop_grace_period %s (got %s)", p.StopGracePeriod, p.DrainTimeout)
	}
	v.positive(key+".heartbeat_timeout", p.HeartbeatTimeout)
	if p.Resources.CPUMillis < 0 {
		v.add(key+".resources.cpu_millis", "must be 0 (no limit) or more (got %d)", p.Resources.CPUMillis)
	}
	if p.Resources.MemoryMB < 0 {
		v.add(key+".resources.memory_mb", "must be 0 (no limit) or more (got %d)", p.Resources.MemoryMB)
	} else if p.Resources.MemoryMB > 0 && p.Resources.MemoryMB < 6 {
		v.add(key+".resources.memory_mb", "must be at least 6 (Docker's minimum) or 0 for no limit (got %d)", p.Resources.MemoryMB)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) { // sorted: the same problems in the same order every run
		if !envKeyRE.MatchString(k) {
			v.add(key+".env", "%q is not a valid environment variable name", k)
		}
		if k == domain.EnvWorkerID || k == domain.EnvWorkerPool || k == domain.EnvWorkerSlots {
			v.add(key+".env."+k, "is set by the autoscaler for every worker; remove it")
		}
	}
	if r.MaxJobAge > 0 && p.ProvisionTimeout > r.MaxJobAge {
		v.add(key+".provision_timeout", "%s is longer than reconcile.max_job_age %s", p.ProvisionTimeout, r.MaxJobAge)
	}
	switch {
	case p.Tiered(): // each tier's own section (validateTiers)
	case p.Provider == "docker":
		p.Docker.validate(v, key+".docker")
	case p.Provider == "kubernetes":
		p.Kubernetes.validate(v, key+".kubernetes")
	}
}

// Pull policies of a docker pool (docker.pull_policy).
const (
	PullAlways       = "always"
	PullIfNotPresent = "if-not-present"
	PullNever        = "never"
)

// Check reports every problem of a docker section, keyed from "docker.".
// It is the one owner of these rules: config validation applies them to
// every docker pool, and the docker provider refuses what they refuse.
func (d Docker) Check() error {
	v := &validator{}
	d.validate(v, "docker")
	return errors.Join(v.problems...)
}

func (d *Docker) validate(v *validator, key string) {
	if d.Image == "" {
		v.add(key+".image", "is required: the worker image, such as hodei-worker:dev")
	}
	switch d.PullPolicy {
	case PullAlways, PullIfNotPresent, PullNever:
	default:
		v.add(key+".pull_policy", "the pull policy must be always, if-not-present or never (got %q)", d.PullPolicy)
	}
	if d.NetworkMode == "" {
		v.add(key+".network_mode", "must be set, such as bridge, host or the name of a Docker network")
	}
	if d.Host != "" && !validDockerHost(d.Host) {
		v.add(key+".host", "%q is not a Docker engine address: use the DOCKER_HOST form, such as unix:///var/run/docker.sock or tcp://10.0.0.5:2376", d.Host)
	}
	for _, m := range d.Mounts {
		if _, err := ParseMount(m); err != nil {
			v.add(key+".mounts", "%v", err)
		}
	}
}

// validDockerHost reports whether the Docker client takes host as an
// engine address: proto://address (and a URL for tcp).
func validDockerHost(host string) bool {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return false
	}
	if proto == "tcp" {
		if _, err := url.Parse("tcp://" + addr); err != nil {
			return false
		}
	}
	return true
}

// Mount is a bind mount of a docker pool's workers.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// ParseMount parses "host:container[:ro|rw]". Both paths must be absolute:
// a relative source (data:/data) would make the engine create a named
// volume instead of a bind mount.
func ParseMount(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("mount %q is not host:container[:ro|rw]", spec)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if !strings.HasPrefix(m.Source, "/") || !strings.HasPrefix(m.Target, "/") {
		return Mount{}, fmt.Errorf("mount %q: host and container paths must be absolute, such as /srv/cache:/cache", spec)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("mount %q: mode %q is not ro or rw", spec, parts[2])
		}
	}
	return m, nil
}

// Check reports every problem of a kubernetes section that needs no
// Kubernetes types, keyed from "kubernetes.". Config validation applies
// it to every kubernetes pool; the kubernetes provider's ValidateConfig
// adds what needs the API's types (pod_template, labels, tolerations).
func (k Kubernetes) Check() error {
	v := &validator{}
	k.validate(v, "kubernetes")
	return errors.Join(v.problems...)
}

func (k *Kubernetes) validate(v *validator, key string) {
	if k.Image == "" {
		v.add(key+".image", "is required: the worker image, such as registry.example.com/hodei-worker:1.0")
	}
	switch k.ImagePullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		v.add(key+".image_pull_policy", "must be Always, IfNotPresent or Never (got %q)", k.ImagePullPolicy)
	}
	if !dnsLabelRE.MatchString(k.Namespace) {
		v.add(key+".namespace", "must be a DNS label such as hodei-workers (got %q)", k.Namespace)
	}
	if !(k.QPS > 0) || math.IsInf(k.QPS, 0) { // NaN fails every comparison
		v.add(key+".qps", "must be a positive number such as 100 (got %g)", k.QPS)
	}
	if k.Burst < 1 {
		v.add(key+".burst", "must be at least 1 (got %d)", k.Burst)
	}
}

// validPort reports whether p is a port number net.Listen takes.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

// redactUserinfo hides what sits before the '@' of a URL that did not
// parse, so a password in a mistyped nats.url is not printed.
func redactUserinfo(u string) string {
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return u
	}
	start := 0
	if i := strings.Index(u, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return u[:start] + "[redacted]" + u[at:]
}

var (
	labelValueRE   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	envKeyRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dnsLabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	subjectTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)
