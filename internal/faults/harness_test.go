package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// ---------------------------------------------------------------------------
// Binaries: the daemon and nats-server, built once per test process.

var binDir struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.dir != "" {
		_ = os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var daemonBin, natsBin builtBinary

// goBuild builds pkg (a path in this module, or an import path of one of
// its dependencies) into the package's binary folder.
func goBuild(b *builtBinary, name, pkg string) (string, error) {
	b.once.Do(func() {
		binDir.once.Do(func() { binDir.dir, binDir.err = os.MkdirTemp("", "hodei-faults-bin-") })
		if binDir.err != nil {
			b.err = binDir.err
			return
		}
		root, err := dockertest.ModuleRoot()
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(binDir.dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
			return
		}
		b.path = out
	})
	return b.path, b.err
}

// daemonBinary is cmd/autoscaler, built from this tree.
func daemonBinary(t *testing.T) string {
	t.Helper()
	p, err := goBuild(&daemonBin, "autoscaler", "./cmd/autoscaler")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// natsServerBinary is nats-server at the version go.mod requires, built
// from the module proxy.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	p, err := goBuild(&natsBin, "nats-server", "github.com/nats-io/nats-server/v2")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------------------
// Logs.

// logBuffer collects a process's (or a logger's) output, line by line.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File // a copy, kept for post-mortems
}

func newLogBuffer(t *testing.T, name string) *logBuffer {
	t.Helper()
	l := &logBuffer{}
	// FAULTS_LOG_DIR keeps every log for post-mortems; by default they go
	// with the test's temp folder.
	dir := os.Getenv("FAULTS_LOG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name+"-*.log")
	if err == nil {
		l.file = f
		t.Cleanup(func() { _ = f.Close() })
	}
	t.Cleanup(func() {
		if t.Failed() {
			var lines []string
			for _, line := range l.Lines() {
				if !strings.Contains(line, `"nats-server"`) { // the embedded server's chatter
					lines = append(lines, line)
				}
			}
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("last lines of %s:\n%s", name, strings.Join(lines, "\n"))
		}
	})
	return l
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) Lines() []string {
	s := strings.TrimRight(l.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// logEntry is one zerolog JSON line.
type logEntry map[string]any

func (e logEntry) str(k string) string {
	v, _ := e[k].(string)
	return v
}

// Entries returns the JSON log lines whose message is msg ("" for all).
func (l *logBuffer) Entries(msg string) []logEntry {
	var out []logEntry
	for _, line := range l.Lines() {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if msg == "" || e.str("message") == msg {
			out = append(out, e)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Configuration.

// baseConfig is a daemon named owner on an embedded NATS with a fixed free
// port (so workers and restarts find it) and a store in the test's temp
// folder, with short loop intervals; the test adds pools.
func baseConfig(t *testing.T, owner string) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Name = owner
	cfg.Log = config.Log{Level: "debug", Format: "json"}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: bustest.FreePort(t), StoreDir: filepath.Join(t.TempDir(), "nats")}
	cfg.NATS.ReconnectWait = config.Duration(200 * time.Millisecond)
	cfg.Reconcile.Interval = config.Duration(200 * time.Millisecond)
	cfg.Reconcile.ResyncInterval = config.Duration(5 * time.Second)
	cfg.Reconcile.ProviderTimeout = config.Duration(10 * time.Second)
	cfg.Reconcile.RetryInitial = config.Duration(500 * time.Millisecond)
	cfg.Reconcile.RetryMax = config.Duration(5 * time.Second)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	return cfg
}

// dockerPool is a docker pool running image with no network.
func dockerPool(name, image string) config.Pool {
	p := config.PoolDefaults()
	p.Name = name
	p.Provider = "docker"
	p.Docker.Image = image
	p.Docker.PullPolicy = "never"
	p.Docker.NetworkMode = "none"
	p.MaxWorkers = 8
	p.IdleTimeout = config.Fixed(time.Hour)
	// No warm buffer: the fault tests count workers per job, and the
	// idle_workers: auto default adds warm ones (and their create
	// attempts) on top, which made the backoff and count checks flaky.
	p.IdleWorkers = config.IdleWorkers{Count: 0}
	p.ProvisionTimeout = config.Duration(time.Minute)
	p.StopGracePeriod = config.Duration(2 * time.Second)
	p.Resources = domain.Resources{CPUMillis: 100, MemoryMB: 32}
	return p
}

// workerPool is a docker pool of the example worker, on the host network
// so the workers reach the bus at natsURL.
func workerPool(t *testing.T, name, natsURL string) config.Pool {
	t.Helper()
	p := dockerPool(name, dockertest.WorkerImage(t))
	p.Docker.NetworkMode = "host"
	p.Docker.ReadOnlyRootfs = true
	p.Env = map[string]string{"HODEI_NATS_URL": natsURL}
	return p
}

// writeConfig validates cfg and writes it as YAML.
func writeConfig(t *testing.T, cfg config.Config) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---------------------------------------------------------------------------
// The daemon as a process.

type daemonProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	logs     *logBuffer
	httpAddr string
	natsURL  string
	started  time.Time
	exited   chan struct{}
	state    *os.ProcessState
}

// startDaemon runs `autoscaler run --config` on cfg with env added to the
// test's environment, and waits until it listens (New has connected the
// bus and the providers). It is killed at test end if still running.
func startDaemon(t *testing.T, cfg config.Config, env ...string) *daemonProc {
	t.Helper()
	d := launchDaemon(t, writeConfig(t, cfg), env...)
	d.waitListening(60 * time.Second)
	return d
}

// launchDaemon starts the process without waiting.
func launchDaemon(t *testing.T, cfgPath string, env ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{t: t, logs: newLogBuffer(t, "autoscaler"), exited: make(chan struct{})}
	d.cmd = exec.Command(daemonBinary(t), "run", "--config", cfgPath)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	d.started = time.Now()
	go func() {
		_ = d.cmd.Wait()
		d.state = d.cmd.ProcessState
		close(d.exited)
	}()
	t.Cleanup(func() {
		if d.running() {
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

func (d *daemonProc) running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// waitListening waits for the "ready to scale" log line and reads the
// HTTP address and the bus URL from it.
func (d *daemonProc) waitListening(timeout time.Duration) {
	d.t.Helper()
	bustest.Eventually(d.t, timeout, "daemon listening", func() bool {
		if !d.running() {
			d.t.Fatalf("daemon exited early (%v)", d.state)
		}
		for _, e := range d.logs.Entries("ready to scale") {
			d.httpAddr, d.natsURL = e.str("http"), e.str("nats")
			return true
		}
		return false
	})
}

func (d *daemonProc) url(path string) string { return "http://" + d.httpAddr + path }

// ready reports whether /readyz answers 200.
func (d *daemonProc) ready() bool {
	code, _ := httpGet(d.url("/readyz"))
	return code == http.StatusOK
}

// signal sends sig and waits up to timeout for the exit; it returns the
// exit code (-1 when killed by a signal) and how long the exit took.
func (d *daemonProc) signal(sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	d.t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("sending %v: %v", sig, err)
	}
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("daemon did not exit within %v of %v", timeout, sig)
	}
	return d.state.ExitCode(), time.Since(start)
}

// ---------------------------------------------------------------------------
// The daemon in-process (the same app package cmd/autoscaler runs), for
// tests that need no process boundary: the race detector covers it.

type inProc struct {
	t    *testing.T
	app  *app.App
	logs *logBuffer
	stop func() error
}

func startInProc(t *testing.T, cfg config.Config, opt app.Options) *inProc {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	d := &inProc{t: t, logs: newLogBuffer(t, "daemon")}
	opt.Logger = zerolog.New(d.logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		cancel()
		t.Fatalf("starting the daemon: %v", err)
	}
	d.app = a
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = errors.New("daemon did not stop within 60s")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stopping the daemon: %v", err)
		}
	})
	return d
}

func (d *inProc) url(path string) string { return "http://" + d.app.HTTPAddr() + path }

// ---------------------------------------------------------------------------
// HTTP and metrics.

var httpClient = &http.Client{Timeout: 5 * time.Second}

// httpGet returns the status and body; code 0 when the request failed.
func httpGet(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metrics scrapes /metrics.
type metrics map[string]*dto.MetricFamily

func scrape(t *testing.T, url string) metrics {
	t.Helper()
	code, body := httpGet(url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// get sums the samples of family name whose labels include all of
// labels ("k", "v", ...).
func (m metrics) get(name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	sum := 0.0
next:
	for _, s := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Histogram != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// poolStatus is one pool of /v1/pools.
type poolStatus struct {
	Pool        string         `json:"pool"`
	Pending     int            `json:"pending"`
	Running     int            `json:"running"`
	Workers     map[string]int `json:"workers"`
	Desired     int            `json:"desired"`
	Blocked     string         `json:"blocked"`
	ProviderUp  bool           `json:"provider_up"`
	ProviderErr string         `json:"provider_error"`
}

func (s poolStatus) total() int {
	n := 0
	for st, c := range s.Workers {
		if st != string(domain.StateFailed) {
			n += c
		}
	}
	return n
}

// pools reads /v1/pools; ok is false when the daemon does not answer.
func pools(url string) (map[string]poolStatus, bool) {
	code, body := httpGet(url)
	if code != http.StatusOK {
		return nil, false
	}
	var v struct {
		Pools []poolStatus `json:"pools"`
	}
	if json.Unmarshal([]byte(body), &v) != nil {
		return nil, false
	}
	out := map[string]poolStatus{}
	for _, p := range v.Pools {
		out[p.Pool] = p
	}
	return out, true
}

// ---------------------------------------------------------------------------
// nats-server as a process.

type natsProc struct {
	t      *testing.T
	args   []string
	env    []string
	port   int
	logs   *logBuffer
	cmd    *exec.Cmd
	exited chan struct{}
}

// startNATS runs nats-server with JetStream on a free loopback port and a
// store in the test's temp folder; extra args are appended (-c conf ...).
func startNATS(t *testing.T, extra ...string) *natsProc {
	t.Helper()
	return startNATSEnv(t, nil, extra...)
}

// startNATSEnv is startNATS with env added to the server's environment
// (its configuration file may reference variables).
func startNATSEnv(t *testing.T, env []string, extra ...string) *natsProc {
	t.Helper()
	port := bustest.FreePort(t)
	n := &natsProc{t: t, port: port, env: env, logs: newLogBuffer(t, "nats-server")}
	n.args = append([]string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir(), "-n", "faults-" + fmt.Sprint(port)}, extra...)
	n.start()
	t.Cleanup(func() {
		if n.cmd != nil && n.cmd.Process != nil {
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})
	return n
}

func (n *natsProc) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start (re)starts the process on the same port and store, and waits until
// it accepts connections.
func (n *natsProc) start() {
	n.t.Helper()
	n.cmd = exec.Command(natsServerBinary(n.t), n.args...)
	n.cmd.Env = append(os.Environ(), n.env...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("starting nats-server: %v", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	go func() { _ = n.cmd.Wait(); close(exited) }()
	bustest.Eventually(n.t, 20*time.Second, "nats-server accepting connections", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return strings.Contains(n.logs.String(), "Server is ready")
	})
}

// stop sends SIGTERM and waits for the exit.
func (n *natsProc) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatal("nats-server did not stop within 30s")
	}
	n.cmd = nil
}

// ---------------------------------------------------------------------------
// The truth about jobs, read from the stream itself.

// truth is what the job stream says: jobs waiting and running per pool.
type truth struct {
	Pending, Running int
	Queued, Started  int // distinct jobs that got those events
	Finished         int
}

// jobEvent is one well-formed job event read back from the stream.
type jobEvent struct {
	kind string // queued, started, finished
	data domain.JobData
	at   time.Time // the event's time (its publisher's clock: this host)
}

// lifecycleEvent is one worker lifecycle event the daemon published.
type lifecycleEvent struct {
	state  string // the lifecycle state: draining, stopped, ...
	worker string
	at     time.Time
}

// readStream returns every message stream holds, from its first to its
// last, in order (a deleted sequence is skipped).
func readStream(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("reading %s: %v", stream, err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("reading %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// readLifecycle reads HODEI_WORKERS from its first message to its last and
// returns pool's worker lifecycle events, in order: the stream keeps them
// across restarts of the daemon, which its logs do not.
func readLifecycle(t *testing.T, js jetstream.JetStream, pool string) []lifecycleEvent {
	t.Helper()
	var out []lifecycleEvent
	for _, m := range readStream(t, js, events.StreamWorkers) {
		var ce domain.CloudEvent
		var d domain.WorkerEventData
		if json.Unmarshal(m.Data, &ce) != nil || !strings.HasPrefix(ce.Type, domain.TypeWorkerPrefix) || json.Unmarshal(ce.Data, &d) != nil || d.Pool != pool {
			continue
		}
		out = append(out, lifecycleEvent{state: strings.TrimPrefix(ce.Type, domain.TypeWorkerPrefix), worker: d.WorkerID, at: ce.Time})
	}
	return out
}

// readJobEvents reads HODEI_JOBS from its first message to its last and
// returns pool's well-formed events, in order.
func readJobEvents(t *testing.T, js jetstream.JetStream, pool string) []jobEvent {
	t.Helper()
	var out []jobEvent
	for _, m := range readStream(t, js, events.StreamJobs) {
		var ce domain.CloudEvent
		var d domain.JobData
		if json.Unmarshal(m.Data, &ce) != nil || json.Unmarshal(ce.Data, &d) != nil || d.JobID == "" {
			continue
		}
		parts := strings.Split(m.Subject, ".")
		if len(parts) != 4 || parts[2] != pool {
			continue
		}
		out = append(out, jobEvent{kind: parts[3], data: d, at: ce.Time})
	}
	return out
}

// jobTruth folds HODEI_JOBS as a plain reader would: queued makes a job
// pending, started makes it run, finished ends it (before or after the
// others), whatever the order and the duplicates. Only pool's well-formed
// events count.
func jobTruth(t *testing.T, js jetstream.JetStream, pool string) truth {
	t.Helper()
	type jobSeen struct{ queued, started, finished bool }
	jobs := map[string]*jobSeen{}
	for _, e := range readJobEvents(t, js, pool) {
		j := jobs[e.data.JobID]
		if j == nil {
			j = &jobSeen{}
			jobs[e.data.JobID] = j
		}
		switch e.kind {
		case "queued":
			j.queued = true
		case "started":
			j.started = true
		case "finished":
			j.finished = true
		}
	}
	var tr truth
	for _, j := range jobs {
		if j.queued {
			tr.Queued++
		}
		if j.started {
			tr.Started++
		}
		if j.finished {
			tr.Finished++
			continue
		}
		if j.started {
			tr.Running++
		} else if j.queued {
			tr.Pending++
		}
	}
	return tr
}

// connectJS connects a client that reconnects forever (a scheduler would).
func connectJS(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.RetryOnFailedConnect(true)}, opts...)
	return bustest.Connect(t, url, opts...)
}

// ---------------------------------------------------------------------------
// Docker.

const (
	sleeperPkg = "./internal/providers/docker/testdata/sleeper"
	sleeperTag = "hodei-faults-sleeper:test"
)

var sleeperImg struct {
	mu   sync.Mutex
	done bool
}

// sleeperImage builds the Docker provider tests' sleeper program (runs
// until SIGTERM; SLEEPER_EXIT_CODE=n exits at once with n) into an image.
func sleeperImage(t *testing.T) string {
	t.Helper()
	sleeperImg.mu.Lock()
	defer sleeperImg.mu.Unlock()
	if !sleeperImg.done {
		bin := dockertest.BuildGoBinary(t, sleeperPkg)
		dockertest.BuildImage(t, sleeperTag, map[string][]byte{
			"Dockerfile": []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n"),
			"sleeper":    bin,
		})
		sleeperImg.done = true
	}
	return sleeperTag
}

// owned lists the containers (any state) carrying hodei.autoscaler=owner.
func owned(t *testing.T, cli *client.Client, owner string, extra ...string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := filters.NewArgs(filters.Arg("label", domain.LabelOwner+"="+owner))
	for _, l := range extra {
		args.Add("label", l)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	return cs
}

func countState(cs []container.Summary, state string) int {
	n := 0
	for _, c := range cs {
		if c.State == state {
			n++
		}
	}
	return n
}

// sampler watches an owner's container count on the engine continuously.
type sampler struct {
	mu      sync.Mutex
	peak    int
	samples int
	stop    func()
}

func sampleContainers(t *testing.T, cli *client.Client, owner string, every time.Duration) *sampler {
	t.Helper()
	// The client negotiates its API version on first use, racily if two
	// goroutines make that first use together: settle it now.
	nctx, ncancel := context.WithTimeout(context.Background(), 10*time.Second)
	cli.NegotiateAPIVersion(nctx)
	ncancel()
	s := &sampler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		args := filters.NewArgs(filters.Arg("label", domain.LabelOwner+"="+owner))
		for ctx.Err() == nil {
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
			if err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, len(cs))
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(s.stop)
	return s
}

func (s *sampler) result() (peak, samples int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.samples
}

// ---------------------------------------------------------------------------
// Small helpers.

// holds fails the test when cond stops holding during d (checked every
// 50 ms): the opposite of Eventually, for "never" assertions.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startFakePool starts an in-process daemon on cfg with one pool "p1" on a
// fake provider (idle workers held an hour, so only the events move them)
// and connects the test's own client to its bus.
func startFakePool(t *testing.T, cfg config.Config, tweak ...func(*config.Pool)) (*inProc, *fakeprovider.Provider, jetstream.JetStream, *bustest.Jobs) {
	t.Helper()
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "unused"
	p.IdleTimeout = config.Fixed(time.Hour)
	for _, f := range tweak {
		f(&p)
	}
	cfg.Pools = []config.Pool{p}
	fake := fakeprovider.New("p1")
	d := startInProc(t, cfg, app.Options{Providers: func(string, config.Pool, zerolog.Logger) (providers.Provider, error) {
		return fake, nil
	}})
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.app.Ready)
	_, js := bustest.Connect(t, d.app.BusURL())
	jobs := bustest.NewJobs(t, js)
	return d, fake, js, jobs
}
