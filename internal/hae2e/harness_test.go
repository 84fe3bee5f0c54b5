package hae2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
	"github.com/hodei/hodei-autoscaler/internal/testutil/natscluster"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// Short lease timings, so that a failover takes seconds: margin is
// 250ms + 2 x 0.5% x 4s = 290ms, tolerance 4 - 0.29 - 1 = 2.71s.
const (
	leaseTTL   = 4 * time.Second
	renewEvery = time.Second
	pool       = domain.PoolName("ha")
)

var daemonBin struct {
	once sync.Once
	path string
	err  error
}

// daemonBinary builds cmd/autoscaler from this tree once per test run
// (or is HAE2E_DAEMON, when set).
func daemonBinary(t *testing.T) string {
	t.Helper()
	daemonBin.once.Do(func() {
		if bin := os.Getenv("HAE2E_DAEMON"); bin != "" { // a binary built beforehand, e.g. to run one commit many times
			daemonBin.path = bin
			return
		}
		root, err := dockertest.ModuleRoot()
		if err != nil {
			daemonBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "hodei-ha-bin-")
		if err != nil {
			daemonBin.err = err
			return
		}
		out := filepath.Join(dir, "autoscaler")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/autoscaler")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			daemonBin.err = fmt.Errorf("go build ./cmd/autoscaler: %w\n%s", err, msg)
			return
		}
		daemonBin.path = out
	})
	if daemonBin.err != nil {
		t.Fatal(daemonBin.err)
	}
	return daemonBin.path
}

// env is one test's cluster, Docker engine and the replicas it runs.
type env struct {
	t      *testing.T
	nats   *natscluster.Cluster
	cli    *client.Client
	image  string
	owner  string
	docker bool
	js     jetstream.JetStream
	jobs   *bustest.Jobs
	jobEv  *bustest.Collector
	wrkEv  *bustest.Collector
	// pool settings; poolExtra is YAML added to the pool (its keys at
	// four spaces)
	maxWorkers int
	poolExtra  string
	// clientURL, when set, is where the test's own client connects.
	clientURL string
	// ttl and renew are the replicas' lease timings (leaseTTL and
	// renewEvery unless a test needs the defaults' margin).
	ttl, renew time.Duration
	mu         sync.Mutex
	replicas   []*replica
}

// newEnv starts a 3-node cluster; with docker, also the worker image.
func newEnv(t *testing.T, docker bool) *env {
	t.Helper()
	e := &env{t: t, docker: docker, owner: dockertest.UniqueName("ha"), maxWorkers: 10, ttl: leaseTTL, renew: renewEvery}
	e.nats = natscluster.Start(t, 3)
	if docker {
		e.cli = dockertest.Client(t)
		e.image = dockertest.WorkerImage(t)
		dockertest.Cleanup(t, domain.LabelOwner+"="+e.owner)
	}
	return e
}

// follow connects the test's own client to the cluster (directly, not
// through any replica's proxies) once the streams exist.
func (e *env) follow() {
	e.t.Helper()
	url := e.clientURL
	if url == "" {
		url = e.nats.URL()
	}
	_, js := bustest.Connect(e.t, url)
	e.js = js
	// The workers' claims bucket, made by the operator with a copy on
	// each server as docs/operations.md says for a cluster: the one a
	// first worker would make has a single copy, lost with its server.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "HODEI_CLAIMS", Replicas: 3}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		e.t.Fatalf("creating the claims bucket: %v", err)
	}
	e.jobs = bustest.NewJobs(e.t, js)
	e.jobEv = bustest.CollectStream(e.t, js, events.StreamJobs)
	e.wrkEv = bustest.Collect(e.t, js)
}

// logLevel is the replicas' log level: info, or HAE2E_LOG_LEVEL.
func logLevel() string {
	if l := os.Getenv("HAE2E_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// replica is one daemon process with its proxies.
type replica struct {
	e       *env
	id      string
	cfgPath string
	http    string
	proxies []*tcpproxy.Proxy
	engine  *engineproxy.Proxy
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
}

// addReplica writes a replica's config (ha on unless haOff) and starts it.
func (e *env) addReplica(id string, haOff bool) *replica {
	e.t.Helper()
	r := &replica{e: e, id: id}
	var urls []string
	for _, n := range e.nats.Nodes {
		p := tcpproxy.Start(e.t, n.Addr())
		r.proxies = append(r.proxies, p)
		urls = append(urls, "nats://"+p.Addr())
	}
	dir := e.t.TempDir()
	r.cfgPath = filepath.Join(dir, "config.yaml")
	r.logPath = filepath.Join(dir, id+".log")
	if keep := os.Getenv("HAE2E_LOG_DIR"); keep != "" { // to read a failed run's full logs
		ldir := filepath.Join(keep, strings.ReplaceAll(e.t.Name(), "/", "_"))
		if err := os.MkdirAll(ldir, 0o755); err != nil {
			e.t.Fatal(err)
		}
		r.logPath = filepath.Join(ldir, id+".log")
	}
	r.http = fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(e.t))
	dockerHost := ""
	if e.docker {
		r.engine = engineproxy.New(e.t)
		dockerHost = r.engine.Host()
	}
	cfg := fmt.Sprintf(`name: %s
log: {level: %s, format: json}
http: {listen: %q}
nats:
  url: [%s]
  connect_timeout: 2s
  reconnect_wait: 100ms
  streams: {replicas: 3}
ha:
  enabled: %v
  replica_id: %s
  lease_ttl: %s
  renew_interval: %s
  call_timeout: 500ms
reconcile: {interval: 1s, resync_interval: 5s, provider_timeout: 20s}
shutdown: {timeout: 20s}
pools:
  - name: %s
    provider: docker
    max_workers: %d
    jobs_per_worker: 1
    idle_workers: 0
    idle_timeout: 2s
    stop_grace_period: 10s
    provision_timeout: 60s
    env: {HODEI_NATS_URL: %q}
    resources: {cpu_millis: 250, memory_mb: 64}
%s    docker:
      host: %q
      image: %q
      pull_policy: never
      network_mode: host
      read_only_rootfs: true
`, e.owner, logLevel(), r.http, strings.Join(urls, ", "), !haOff, id, e.ttl, e.renew, pool, e.maxWorkers, e.nats.URL(), e.poolExtra, dockerHost, e.image)
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.replicas = append(e.replicas, r)
	e.mu.Unlock()
	r.start()
	return r
}

// start starts ha replicas with these ids, waits until each is ready,
// and follows the cluster's streams.
func (e *env) start(ids ...string) []*replica {
	e.t.Helper()
	var rs []*replica
	for _, id := range ids {
		rs = append(rs, e.addReplica(id, false))
	}
	for _, r := range rs {
		bustest.Eventually(e.t, 60*time.Second, "replica "+r.id+" ready", r.ready)
	}
	e.follow()
	return rs
}

// start runs the daemon process (again).
func (r *replica) start() {
	t := r.e.t
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBinary(t), "run", "--config", r.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting replica %s: %v", r.id, err)
	}
	exited := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		r.mu.Lock()
		r.state = cmd.ProcessState
		r.mu.Unlock()
		close(exited)
	}()
	t.Cleanup(func() {
		if r.running() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("last lines of replica %s:\n%s", r.id, r.logTail(40))
		}
	})
}

func (r *replica) running() bool {
	r.mu.Lock()
	ch := r.exited
	r.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to go.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, ch := r.cmd, r.exited
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-ch
}

// stop sends SIGTERM and waits (a clean shutdown).
func (r *replica) stop(timeout time.Duration) {
	r.e.t.Helper()
	r.mu.Lock()
	cmd, ch := r.cmd, r.exited
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch:
	case <-time.After(timeout):
		r.e.t.Fatalf("replica %s did not stop within %v after SIGTERM", r.id, timeout)
	}
}

// wait waits for the process to exit on its own.
func (r *replica) wait(timeout time.Duration) *os.ProcessState {
	r.e.t.Helper()
	select {
	case <-r.exited:
	case <-time.After(timeout):
		r.e.t.Fatalf("replica %s still running after %v", r.id, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *replica) logTail(n int) string {
	f, err := os.Open(r.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logHas reports whether a log line contains every part.
func (r *replica) logHas(parts ...string) bool {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok && line != "" {
			return true
		}
	}
	return false
}

// pools is the replica's /v1/pools (nil when it does not answer).
func (r *replica) pools() []reconciler.PoolStatus {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.http + "/v1/pools")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Pools []reconciler.PoolStatus `json:"pools"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	return body.Pools
}

// poolsJSON is the replica's /v1/pools as it answers it.
func (r *replica) poolsJSON() string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.http + "/v1/pools")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// holds reports whether the replica says it may act on the pool now.
func (r *replica) holds() bool {
	for _, p := range r.pools() {
		if p.Pool == string(pool) && p.Lease != nil && p.Lease.Mine {
			return true
		}
	}
	return false
}

// ready reports whether /readyz answers 200.
func (r *replica) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// holder waits until exactly one running replica holds the pool.
func (e *env) holder(timeout time.Duration) *replica {
	e.t.Helper()
	var h *replica
	bustest.Eventually(e.t, timeout, "one replica holding the pool", func() bool {
		var hs []*replica
		for _, r := range e.replicas {
			if r.running() && r.holds() {
				hs = append(hs, r)
			}
		}
		if len(hs) == 1 {
			h = hs[0]
			return true
		}
		return false
	})
	return h
}

// containers lists the test's worker containers.
func (e *env) containers() []container.Summary {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", domain.LabelOwner+"="+e.owner))})
	if err != nil {
		e.t.Fatalf("listing containers: %v", err)
	}
	return cs
}

// sampler records the most worker containers seen at once, every 100ms.
type sampler struct {
	mu   sync.Mutex
	peak int
	stop chan struct{}
	done chan struct{}
}

func (e *env) sample() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true,
				Filters: filters.NewArgs(filters.Arg("label", domain.LabelOwner+"="+e.owner))})
			cancel()
			if err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, len(cs))
				s.mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(s.end)
	return s
}

func (s *sampler) end() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *sampler) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// queue publishes n jobs of duration d named prefix-i.
func (e *env) queue(prefix string, n int, d time.Duration) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		e.jobs.Queued(pool, id, map[string]string{"duration": d.String()})
		ids = append(ids, id)
	}
	return ids
}

// finished is the set of jobs with a job.finished event, and their outcome.
func (e *env) finished() map[string]string {
	out := map[string]string{}
	for _, ev := range e.jobEv.OfType(domain.TypeJobFinished) {
		out[ev.Job.JobID] = ev.Job.Outcome
	}
	return out
}

// waitServed waits until every job has finished, and checks they all
// succeeded.
func (e *env) waitServed(ids []string, timeout time.Duration) {
	e.t.Helper()
	bustest.Eventually(e.t, timeout, fmt.Sprintf("%d jobs finished", len(ids)), func() bool {
		f := e.finished()
		for _, id := range ids {
			if _, ok := f[id]; !ok {
				return false
			}
		}
		return true
	})
	f := e.finished()
	for _, id := range ids {
		if f[id] != string(domain.OutcomeSucceeded) {
			e.t.Errorf("job %s finished %q, want succeeded", id, f[id])
		}
	}
}

// busyStops lists the drains of a worker while it ran a job: a
// hodei.worker.draining event between the job's started and finished.
func (e *env) busyStops() []string {
	type span struct{ from, to time.Time }
	running := map[string][]span{} // worker -> job spans
	started := map[string]bustest.Event{}
	for _, ev := range e.jobEv.Events() {
		switch ev.Type {
		case domain.TypeJobStarted:
			started[ev.Job.JobID] = ev
		case domain.TypeJobFinished:
			if s, ok := started[ev.Job.JobID]; ok {
				running[s.Job.WorkerID] = append(running[s.Job.WorkerID], span{s.At, ev.At})
			}
		}
	}
	var out []string
	for _, ev := range e.wrkEv.OfType(bustest.Lifecycle(domain.LifecycleDraining)) {
		for _, sp := range running[ev.Worker.WorkerID] {
			if ev.At.After(sp.from) && ev.At.Before(sp.to) {
				out = append(out, fmt.Sprintf("%s drained at %s while running a job (%s to %s)", ev.Worker.WorkerID,
					ev.At.Format("15:04:05.000"), sp.from.Format("15:04:05.000"), sp.to.Format("15:04:05.000")))
			}
		}
	}
	return out
}

// waitNoContainers waits until the pool's workers are all gone.
func (e *env) waitNoContainers(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	left := e.containers()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		left = e.containers()
	}
	if len(left) > 0 {
		var names []string
		for _, c := range left {
			names = append(names, fmt.Sprintf("%v (%s, %s)", c.Names, c.State, c.Status))
		}
		var views []string
		for _, r := range e.replicas {
			if r.running() {
				views = append(views, r.id+": "+r.poolsJSON())
			}
		}
		e.t.Fatalf("worker containers left %v after the jobs: %s\nthe replicas' /v1/pools:\n%s\njob events (event time, stored, received by the test):\n%s",
			timeout, strings.Join(names, "; "), strings.Join(views, "\n"), e.jobTimes())
	}
}

// jobTimes lists the job events with their times, to tell a late publish
// from a late delivery.
func (e *env) jobTimes() string {
	var b strings.Builder
	for _, ev := range e.jobEv.Events() {
		fmt.Fprintf(&b, "  %s %s worker %s: at %s stored %s received %s\n", ev.Type, ev.Job.JobID, ev.Job.WorkerID,
			ev.At.Format("15:04:05.000"), ev.Stored.Format("15:04:05.000"), ev.Received.Format("15:04:05.000"))
	}
	return b.String()
}

// lags is the worst lag of the job events so far: from the event's time
// to the stream storing it (a late publish), and from storing to this
// test's consumer receiving it (a late delivery).
func (e *env) lags() (publish, delivery time.Duration) {
	for _, ev := range e.jobEv.Events() {
		publish = max(publish, ev.Stored.Sub(ev.At))
		delivery = max(delivery, ev.Received.Sub(ev.Stored))
	}
	return publish, delivery
}

// call is one provider call that changes something (POST or DELETE on
// the Docker engine), by replica.
type call struct {
	replica    string
	what       string
	start, end time.Time
}

// calls are every replica's mutating provider calls, in start order. One
// provider Create is two engine requests (create, then start of the
// container it made); the start is folded into its create, so a Create
// that began before the fence closed and is still in flight (the overlap
// the protocol allows) counts from its first request, not its last.
func (e *env) calls() []call {
	var out []call
	for _, r := range e.replicas {
		var mine []call
		for _, q := range r.engine.Requests(func(q engineproxy.Req) bool {
			return q.Method == http.MethodPost || q.Method == http.MethodDelete
		}) {
			c := call{replica: r.id, what: q.Method + " " + q.Path, start: q.Start, end: q.End}
			if n := len(mine); n > 0 && strings.HasSuffix(c.what, "/start") && strings.HasSuffix(mine[n-1].what, "/containers/create") {
				mine[n-1].what += " + start"
				mine[n-1].end = c.end
				continue
			}
			mine = append(mine, c)
		}
		out = append(out, mine...)
	}
	slices.SortFunc(out, func(a, b call) int { return a.start.Compare(b.start) })
	return out
}

// terms walks the calls in start order and counts the switches from one
// replica to another: with terms that never overlap, a replica's calls
// all come before the next holder's, so one failover is one switch. It
// also lists, per switch, the gap from the previous replica's last call
// to the next one's first, and whether that last call was still in
// flight when the next began (the overlap the protocol allows).
func terms(cs []call) (switches int, gaps []time.Duration, inFlight int) {
	for i := 1; i < len(cs); i++ {
		if cs[i].replica == cs[i-1].replica {
			continue
		}
		switches++
		gaps = append(gaps, cs[i].start.Sub(cs[i-1].start))
		if cs[i-1].end.IsZero() || cs[i-1].end.After(cs[i].start) {
			inFlight++
		}
	}
	return switches, gaps, inFlight
}

func describe(cs []call) string {
	var b strings.Builder
	for _, c := range cs {
		end := "in flight"
		if !c.end.IsZero() {
			end = c.end.Format("15:04:05.000")
		}
		fmt.Fprintf(&b, "  %s-%s %s %s\n", c.start.Format("15:04:05.000"), end, c.replica, c.what)
	}
	return b.String()
}
