// Package config loads the daemon's YAML configuration, applies defaults
// and AUTOSCALER_* environment overrides, and validates it, reporting every
// problem with the key that has it and how to fix it.
package config

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// Config is the whole configuration file.
type Config struct {
	// Name is the ownership label value (hodei.autoscaler=<name>): this
	// daemon lists, stops and deletes only workers that carry it.
	Name      string    `yaml:"name"`
	Log       Log       `yaml:"log"`
	HTTP      HTTP      `yaml:"http"`
	NATS      NATS      `yaml:"nats"`
	HA        HA        `yaml:"ha"`
	Reconcile Reconcile `yaml:"reconcile"`
	Shutdown  Shutdown  `yaml:"shutdown"`
	// DryRun computes and publishes decisions without calling providers.
	DryRun bool `yaml:"dry_run"`
	// MemoryLimit is the Go runtime's soft memory limit. 0 (the default)
	// chooses one: GOMEMLIMIT if set (GOMEMLIMIT=off for none), else 90%
	// of the cgroup's memory limit, else memlimit.Default (150MiB). With
	// the embedded NATS server the bus's caches share the process, and a
	// limit keeps the whole bounded (internal/memlimit).
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// Budgets are named capacities shared by the pools that name them
	// (budget.go, docs/policy.md).
	Budgets map[string]Budget `yaml:"budgets"`
	Pools   []Pool            `yaml:"pools"`
	// Inputs are the sources of job events (inputs.go); none: the own
	// contract alone.
	Inputs []Input `yaml:"inputs"`
}

// Log configures zerolog.
type Log struct {
	Level  string `yaml:"level"`  // trace, debug, info, warn, error
	Format string `yaml:"format"` // json or console
}

// HTTP configures the metrics/health/API listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// NATS configures the bus connection and streams.
type NATS struct {
	// URL is "embedded" for the in-process server, or a nats:// / tls://
	// URL list: comma separated, or a YAML list (the servers of a cluster).
	URL           string   `yaml:"url"`
	Embedded      Embedded `yaml:"embedded"`
	SubjectPrefix string   `yaml:"subject_prefix"`
	Streams       Streams  `yaml:"streams"`
	Auth          Auth     `yaml:"auth"`
	TLS           TLS      `yaml:"tls"`
	MaxEventBytes int      `yaml:"max_event_bytes"`
	// stream stored it; further is refused (reason future_time). 0: off.
	MaxClockSkew  Duration      `yaml:"max_clock_skew"`
	ConnectWait   Duration      `yaml:"connect_timeout"`
	ReconnectWait Duration      `yaml:"reconnect_wait"`
	Source        string        `yaml:"source"` // CloudEvents source of what we publish
	Publish       PublishConfig `yaml:"publish"`
}

// PublishConfig bounds outgoing event buffering.
type PublishConfig struct {
	// Buffer is how many outgoing events may wait while the bus is down.
	Buffer int `yaml:"buffer"`
}

// Embedded configures the in-process NATS server.
type Embedded struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	StoreDir string `yaml:"store_dir"`
	// SyncInterval lets the server write the store in the background (a
	// kill -9 may then lose the last writes); by default every write is
	// synced before it is acknowledged.
	SyncInterval bool `yaml:"sync_interval"`
}

// Streams configures stream creation and retention.
type Streams struct {
	Create   bool     `yaml:"create"`
	MaxAge   Duration `yaml:"max_age"`
	MaxBytes ByteSize `yaml:"max_bytes"`
	Replicas int      `yaml:"replicas"`
	// DuplicateWindow is JetStream's Nats-Msg-Id de-duplication window.
	DuplicateWindow Duration `yaml:"duplicate_window"`
}

// Auth holds NATS credentials. Secrets come from files or from the
// environment (AUTOSCALER_NATS_AUTH_PASSWORD and so on); they are never
// logged or served.
type Auth struct {
	User         string `yaml:"user"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	Token        Secret `yaml:"token"`
	TokenFile    string `yaml:"token_file"`
	NKeySeedFile string `yaml:"nkey_seed_file"`
	CredsFile    string `yaml:"creds_file"`
}

// TLS configures TLS to an external NATS server.
type TLS struct {
	Enabled  bool   `yaml:"enabled"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
}

// Reconcile configures the reconcile loop.
type Reconcile struct {
	Interval         Duration `yaml:"interval"`
	ResyncInterval   Duration `yaml:"resync_interval"`
	ProviderTimeout  Duration `yaml:"provider_timeout"`
	MaxJobAge        Duration `yaml:"max_job_age"`
	RetryInitial     Duration `yaml:"retry_initial"`
	RetryMax         Duration `yaml:"retry_max"`
	RetryJitter      float64  `yaml:"retry_jitter"`
	BreakerFailures  int      `yaml:"breaker_failures"`
	BreakerCooldown  Duration `yaml:"breaker_cooldown"`
	MaxConcurrentOps int      `yaml:"max_concurrent_ops"`
}

// Shutdown configures SIGTERM handling.
type Shutdown struct {
	Timeout     Duration `yaml:"timeout"`
	StopWorkers bool     `yaml:"stop_workers"`
}

// Pool is one worker pool.
type Pool struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"` // docker or kubernetes
	DryRun   *bool  `yaml:"dry_run"`  // nil: the global dry_run

	MinWorkers                int          `yaml:"min_workers"`
	MaxWorkers                int          `yaml:"max_workers"`
	JobsPerWorker             int          `yaml:"jobs_per_worker"`
	IdleWorkers               IdleWorkers  `yaml:"idle_workers"`
	MaxIdleWorkers            int          `yaml:"max_idle_workers"`
	IdleTimeout               AutoDuration `yaml:"idle_timeout"`
	ProvisionTimeout          Duration     `yaml:"provision_timeout"`
	MaxConcurrentProvisioning int          `yaml:"max_concurrent_provisioning"`
	StopGracePeriod           Duration     `yaml:"stop_grace_period"`
	// DrainTimeout is how long a stopped worker that still runs a job (by
	// the ledger or its own heartbeat) may finish it before it is killed;
	// stop_grace_period applies only to an idle one (docs/operations.md).
	DrainTimeout Duration `yaml:"drain_timeout"`
	// HeartbeatTimeout is how long a worker's heartbeat is believed
	// (docs/events.md, worker heartbeats).
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`

	// Wait targets (docs/policy.md): the warm buffer of idle_workers: auto
	// keeps the p95 (p99) of queue waits within them at the least cost.
	TargetWaitP95 AutoDuration `yaml:"target_wait_p95"` // auto: one measured median boot
	TargetWaitP99 Duration     `yaml:"target_wait_p99"` // 0: none
	// With idle_timeout: auto, the hold stays within these.
	IdleTimeoutMin Duration `yaml:"idle_timeout_min"`
	IdleTimeoutMax Duration `yaml:"idle_timeout_max"`

	// Policy v2 (types in policy.go; every knob in docs/policy.md).
	ArrivalRateWindow Duration   `yaml:"arrival_rate_window"` // idle_workers: auto's averaging window
	MaxJobsPerWorker  int        `yaml:"max_jobs_per_worker"` // retire a worker after N jobs (1: ephemeral)
	ScaleUp           ScaleUp    `yaml:"scale_up"`
	ScaleDown         ScaleDown  `yaml:"scale_down"`
	Schedules         []Schedule `yaml:"schedules"`

	// Env is added to every worker's environment.
	Env       map[string]string `yaml:"env"`
	Resources domain.Resources  `yaml:"resources"`

	Docker     Docker     `yaml:"docker"`
	Kubernetes Kubernetes `yaml:"kubernetes"`

	// Budget names the budget the pool draws from (none: the pool scales
	// alone); priority (0-100, higher first), weight (1-100, the fair
	// share among equal priorities) and guaranteed (workers it always
	// gets when it wants them) share it (budget.go).
	Budget     string `yaml:"budget"`
	Priority   int    `yaml:"priority"`
	Weight     int    `yaml:"weight"`
	Guaranteed int    `yaml:"guaranteed"`
	// Tiers are providers to spill over to, in order; with tiers the
	// pool's provider is the first tier's and its max_workers the sum of
	// the tiers'.
	Tiers []Tier `yaml:"tiers"`
}

// PoolName returns the pool's name as a domain type.
func (p Pool) PoolName() domain.PoolName { return domain.PoolName(p.Name) }

// IsDryRun reports whether provider calls are suppressed for the pool.
func (p Pool) IsDryRun(global bool) bool {
	if p.DryRun != nil {
		return *p.DryRun
	}
	return global
}

// Docker is the Docker provider's pool settings.
type Docker struct {
	// Host overrides DOCKER_HOST for this pool.
	Host       string   `yaml:"host"`
	Image      string   `yaml:"image"`
	PullPolicy string   `yaml:"pull_policy"` // always, if-not-present, never
	Command    []string `yaml:"command"`
	// Entrypoint overrides the image's entrypoint when set.
	Entrypoint     []string `yaml:"entrypoint"`
	NetworkMode    string   `yaml:"network_mode"`
	ReadOnlyRootfs bool     `yaml:"read_only_rootfs"`
	CapDrop        []string `yaml:"cap_drop"`
	CapAdd         []string `yaml:"cap_add"`
	Privileged     bool     `yaml:"privileged"`
	// Mounts are bind mounts "host:container[:ro]"; none by default.
	Mounts []string `yaml:"mounts"`
	User   string   `yaml:"user"`
}

// Kubernetes is the Kubernetes provider's pool settings.
type Kubernetes struct {
	Kubeconfig         string            `yaml:"kubeconfig"`
	Context            string            `yaml:"context"`
	Namespace          string            `yaml:"namespace"`
	Image              string            `yaml:"image"`
	ImagePullPolicy    string            `yaml:"image_pull_policy"` // Always, IfNotPresent, Never
	Command            []string          `yaml:"command"`
	Args               []string          `yaml:"args"`
	ServiceAccountName string            `yaml:"service_account_name"`
	NodeSelector       map[string]string `yaml:"node_selector"`
	Tolerations        []map[string]any  `yaml:"tolerations"`
	// PodTemplate is a PodSpec fragment merged under the provider's own
	// fields: affinity, volumes, sidecars, security overrides.
	PodTemplate map[string]any `yaml:"pod_template"`
	// Labels and Annotations are added to every worker pod's metadata
	// (the ownership labels cannot be overridden), e.g. the cluster
	// autoscaler's safe-to-evict annotation.
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	QPS         float64           `yaml:"qps"`
	Burst       int               `yaml:"burst"`
}

// Defaults returns a configuration with every default filled in and no
// pools. Load decodes the file on top of it.
func Defaults() Config {
	return Config{
		Name: "hodei-autoscaler",
		Log:  Log{Level: "info", Format: "json"},
		HTTP: HTTP{Listen: "127.0.0.1:9090"},
		NATS: NATS{
			URL:           "embedded",
			Embedded:      Embedded{Host: "127.0.0.1", Port: 4222, StoreDir: "data/nats"},
			SubjectPrefix: "hodei",
			Streams: Streams{
				Create:          true,
				MaxAge:          Duration(7 * 24 * time.Hour),
				MaxBytes:        ByteSize(1 << 30),
				Replicas:        1,
				DuplicateWindow: Duration(2 * time.Minute),
			},
			MaxEventBytes: 64 << 10,
			MaxClockSkew:  Duration(5 * time.Minute),
			ConnectWait:   Duration(5 * time.Second),
			ReconnectWait: Duration(2 * time.Second),
			Source:        "hodei-autoscaler",
			Publish:       PublishConfig{Buffer: 10000},
		},
		HA: HADefaults(),
		Reconcile: Reconcile{
			Interval:         Duration(5 * time.Second),
			ResyncInterval:   Duration(30 * time.Second),
			ProviderTimeout:  Duration(30 * time.Second),
			MaxJobAge:        Duration(24 * time.Hour),
			RetryInitial:     Duration(time.Second),
			RetryMax:         Duration(5 * time.Minute),
			RetryJitter:      0.2,
			BreakerFailures:  5,
			BreakerCooldown:  Duration(30 * time.Second),
			MaxConcurrentOps: 64,
		},
		Shutdown: Shutdown{Timeout: Duration(15 * time.Second)},
	}
}

// PoolDefaults returns a pool with every default filled in.
func PoolDefaults() Pool {
	return Pool{
		Provider:                  "docker",
		MinWorkers:                0,
		MaxWorkers:                10,
		JobsPerWorker:             1,
		IdleWorkers:               IdleWorkers{Auto: true},
		IdleTimeout:               Auto,
		IdleTimeoutMax:            Duration(policy.DefaultIdleTimeoutMax),
		TargetWaitP95:             Auto,
		ProvisionTimeout:          Duration(5 * time.Minute),
		MaxConcurrentProvisioning: 10,
		StopGracePeriod:           Duration(30 * time.Second),
		Weight:                    1,
		DrainTimeout:              Duration(6 * time.Hour),
		HeartbeatTimeout:          Duration(30 * time.Second),
		ScaleUp:                   ScaleUp{Period: Duration(time.Minute)},
		ScaleDown:                 ScaleDown{Period: Duration(time.Minute)},
		Docker: Docker{
			PullPolicy:  "if-not-present",
			NetworkMode: "bridge",
			CapDrop:     []string{"ALL"},
		},
		Kubernetes: Kubernetes{
			Namespace:       "hodei-workers",
			ImagePullPolicy: "IfNotPresent",
			QPS:             100,
			Burst:           200,
		},
	}
}
