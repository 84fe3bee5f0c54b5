// Command dockerscale measures row 4 of the benchmark suite on the real
// Docker engine: 0 → N running worker containers and back to 0, through a
// whole daemon (internal/app with the real Docker provider, embedded NATS
// as in `make run`), against the docker CLI doing the same with the same
// image and container settings, one by one and in parallel with xargs -P,
// in the same run.
//
//   - up, daemon: from publishing N job.queued events to the N-th
//     successful Create (container created, started and inspected);
//   - up, CLI: `docker run -d` per container, from the first to the last
//     returning;
//   - down, daemon: from publishing the N job.finished events to the N-th
//     successful Stop (SIGTERM, then removal);
//   - down, CLI: `docker stop` then `docker rm` per container.
//
// The workers are the example worker image; they are given an unreachable
// NATS URL so they idle (retrying) and no job reaches them: the row
// measures the container lifecycle, not the jobs. Every container carries
// the label hodei.bench.run=<run id> or is owned (hodei.autoscaler) by
// hodei-bench-<run id>, and all are removed at the end.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
)

const (
	poolName  = "bench"
	runLabel  = "hodei.bench.run"
	grace     = 10 * time.Second
	cpuMillis = 250
	memoryMB  = 64
	// deadNATS is a loopback port nothing listens on: workers idle.
	deadNATS = "nats://127.0.0.1:9"
)

func main() {
	n := flag.Int("n", 50, "containers")
	image := flag.String("image", "hodei-worker:dev", "worker image (make worker-image)")
	par := flag.String("parallel", "4,8,16", "xargs -P values to try")
	runID := flag.String("run-id", "", "label value of this run (default: random)")
	first := flag.Int("first", 50, "time to first worker (row 4c): jobs one at a time (0: skip)")
	onlyFirst := flag.Bool("only-first", false, "run only row 4c")
	out := flag.String("out", "bench/out/docker.json", "result file")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("dockerscale: ")
	if *runID == "" {
		*runID = uuid.NewString()[:8]
	}
	res := benchkit.NewResult("dockerscale")
	b := &bench{n: *n, image: *image, runID: *runID, owner: "hodei-bench-" + *runID, first: *first, onlyFirst: *onlyFirst}
	for _, p := range strings.Split(*par, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			log.Fatalf("bad -parallel value %q", p)
		}
		b.parallel = append(b.parallel, v)
	}
	err := b.run(res)
	if cerr := b.cleanup(); cerr != nil {
		log.Printf("cleanup: %v", cerr)
	}
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		log.Printf("not run: %v", err)
		res.Rows = append(res.Rows,
			benchkit.NotRun("4a", "Docker: 0 → 50 running worker containers", skip.why),
			benchkit.NotRun("4b", "Docker: 50 → 0", skip.why),
			benchkit.NotRun("4c", "time to first worker", skip.why))
	case err != nil:
		log.Printf("error: %v", err)
		res.Rows = append(res.Rows,
			benchkit.NotRun("4a", "Docker: 0 → 50 running worker containers", "error: "+err.Error()),
			benchkit.NotRun("4b", "Docker: 50 → 0", "error: "+err.Error()),
			benchkit.NotRun("4c", "time to first worker", "error: "+err.Error()))
		_ = res.Write(*out)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		log.Fatal(err)
	}
}

type skipError struct{ why string }

func (e *skipError) Error() string { return e.why }

type bench struct {
	n         int
	image     string
	runID     string
	owner     string
	parallel  []int
	cli       *client.Client
	first     int // row 4c's jobs
	onlyFirst bool
}

// dockerArgs are the `docker run` arguments giving a CLI container the
// settings the Docker provider gives a worker of the benchmark's pool
// (see internal/providers/docker containerConfig). {} is replaced by xargs.
func (b *bench) dockerArgs(name, id string) []string {
	return []string{"run", "-d", "--name", name,
		"--label", runLabel + "=" + b.runID,
		"--label", domain.LabelWorker + "=true",
		"--label", domain.LabelWorkerID + "=" + id,
		"--label", domain.LabelWorkerPool + "=" + poolName,
		"--label", domain.LabelOwner + "=hodei-bench-cli-" + b.runID,
		"--env", "HODEI_NATS_URL=" + deadNATS,
		"--env", domain.EnvWorkerID + "=" + id,
		"--env", domain.EnvWorkerPool + "=" + poolName,
		"--env", domain.EnvWorkerSlots + "=1",
		"--network", "host", "--restart", "no", "--init",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
		"--cpus", fmt.Sprintf("%.3f", float64(cpuMillis)/1000), "--memory", fmt.Sprintf("%dm", memoryMB),
		b.image}
}

func (b *bench) run(res *benchkit.Result) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return &skipError{"no docker CLI on PATH"}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return &skipError{"no docker client: " + err.Error()}
	}
	b.cli = cli
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return &skipError{"no Docker engine answers: " + err.Error()}
	}
	if _, err := cli.ImageInspect(ctx, b.image); err != nil {
		return &skipError{fmt.Sprintf("image %s missing (make worker-image): %v", b.image, err)}
	}
	if v, err := cli.ServerVersion(ctx); err == nil {
		res.Detail("- Docker engine %s (API %s), storage driver and image as configured on this machine; image %s", v.Version, v.APIVersion, b.image)
	}
	if b.onlyFirst {
		return b.firstWorker(ctx, res, b.first, 3)
	}

	type way struct {
		name     string
		up, down time.Duration
	}
	var ways []way

	// One by one.
	names := make([]string, b.n)
	start := time.Now()
	for i := range b.n {
		names[i] = fmt.Sprintf("hodei-bench-%s-seq-%02d", b.runID, i)
		if err := docker(ctx, b.dockerArgs(names[i], fmt.Sprintf("seq-%02d", i))...); err != nil {
			return err
		}
	}
	up := time.Since(start)
	if err := b.expectRunning(ctx, runLabel+"="+b.runID, b.n); err != nil {
		return err
	}
	start = time.Now()
	for _, name := range names {
		if err := docker(ctx, "stop", "-t", strconv.Itoa(int(grace.Seconds())), name); err != nil {
			return err
		}
		if err := docker(ctx, "rm", name); err != nil {
			return err
		}
	}
	ways = append(ways, way{"docker CLI one by one", up, time.Since(start)})
	if err := b.expectRunning(ctx, runLabel+"="+b.runID, 0); err != nil {
		return err
	}

	// In parallel.
	for _, p := range b.parallel {
		prefix := fmt.Sprintf("hodei-bench-%s-p%d", b.runID, p)
		var seq bytes.Buffer
		for i := range b.n {
			fmt.Fprintf(&seq, "%02d\n", i)
		}
		args := append([]string{"-P", strconv.Itoa(p), "-I{}", "docker"}, b.dockerArgs(prefix+"-{}", fmt.Sprintf("p%d-{}", p))...)
		start := time.Now()
		if err := xargs(ctx, seq.Bytes(), args...); err != nil {
			return err
		}
		up := time.Since(start)
		if err := b.expectRunning(ctx, runLabel+"="+b.runID, b.n); err != nil {
			return err
		}
		var list bytes.Buffer
		for i := range b.n {
			fmt.Fprintf(&list, "%s-%02d\n", prefix, i)
		}
		start = time.Now()
		script := fmt.Sprintf(`docker stop -t %d "$0" >/dev/null && docker rm "$0" >/dev/null`, int(grace.Seconds()))
		if err := xargs(ctx, list.Bytes(), "-P", strconv.Itoa(p), "-I{}", "sh", "-c", script, "{}"); err != nil {
			return err
		}
		ways = append(ways, way{fmt.Sprintf("docker CLI, xargs -P %d", p), up, time.Since(start)})
		if err := b.expectRunning(ctx, runLabel+"="+b.runID, 0); err != nil {
			return err
		}
	}

	// The daemon.
	dUp, dDown, err := b.daemon(ctx, res)
	if err != nil {
		return err
	}

	bestUp, bestDown := ways[0], ways[0]
	for _, w := range ways {
		res.Detail("- %s: up %s, down %s", w.name, benchkit.Dur(w.up), benchkit.Dur(w.down))
		if w.up < bestUp.up {
			bestUp = w
		}
		if w.down < bestDown.down {
			bestDown = w
		}
	}
	res.Detail("- daemon (Docker provider): up %s, down %s", benchkit.Dur(dUp), benchkit.Dur(dDown))
	others := func(pick func(way) time.Duration) string {
		var s []string
		for _, w := range ways {
			name := strings.TrimPrefix(strings.TrimPrefix(w.name, "docker CLI"), ", ")
			s = append(s, fmt.Sprintf("%s %s", strings.TrimSpace(name), benchkit.Dur(pick(w))))
		}
		return strings.Join(s, "; ")
	}
	xu := float64(dUp) / float64(bestUp.up)
	xd := float64(dDown) / float64(bestDown.down)
	res.Rows = append(res.Rows, benchkit.Row{
		ID: "4a", What: fmt.Sprintf("Docker: 0 → %d running worker containers (real engine, real provider)", b.n),
		Reference: fmt.Sprintf("fastest CLI: %s, %s (all: %s)", bestUp.name, benchkit.Dur(bestUp.up), others(func(w way) time.Duration { return w.up })),
		Ours:      benchkit.Dur(dUp) + " (queued published → last create returned)",
		Ratio:     benchkit.Ratio(xu),
		Target:    "≤ 1.2× the fastest CLI way",
		Met:       benchkit.YesNo(xu <= 1.2),
		Note:      "same image and container settings (labels, env, init, cap-drop, no-new-privileges, host network, 0.25 CPU, 64 MB)",
	}, benchkit.Row{
		ID: "4b", What: fmt.Sprintf("Docker: %d → 0 (graceful stop, then remove)", b.n),
		Reference: fmt.Sprintf("fastest CLI: %s, %s (all: %s)", bestDown.name, benchkit.Dur(bestDown.down), others(func(w way) time.Duration { return w.down })),
		Ours:      benchkit.Dur(dDown) + " (finished published → last stop returned)",
		Ratio:     benchkit.Ratio(xd),
		Target:    "≤ 1.2× the fastest CLI way",
		Met:       benchkit.YesNo(xd <= 1.2),
		Note:      "CLI: docker stop then docker rm per container; daemon: Stop = inspect, stop (SIGTERM, grace 10 s), remove",
	})
	if b.first > 0 {
		return b.firstWorker(ctx, res, b.first, 3)
	}
	return nil
}

// timed wraps the real provider and records when calls succeed.
type timed struct {
	providers.Provider
	mu     sync.Mutex
	create []time.Time
	stop   []time.Time
	errs   []error
}

func (t *timed) Create(ctx context.Context, spec providers.WorkerSpec) (domain.Worker, error) {
	w, err := t.Provider.Create(ctx, spec)
	t.record(&t.create, err)
	return w, err
}

func (t *timed) Stop(ctx context.Context, id domain.WorkerID, g time.Duration) error {
	err := t.Provider.Stop(ctx, id, g)
	t.record(&t.stop, err)
	return err
}

func (t *timed) record(to *[]time.Time, err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs = append(t.errs, err)
		return
	}
	*to = append(*to, now)
}

func (t *timed) counts() (creates, stops int, errs []error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.create), len(t.stop), append([]error(nil), t.errs...)
}

func (t *timed) last(which []time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last time.Time
	for _, at := range which {
		if at.After(last) {
			last = at
		}
	}
	return last
}

// Close closes the real provider's client.
func (t *timed) Close() error {
	if c, ok := t.Provider.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (b *bench) daemon(ctx context.Context, res *benchkit.Result) (up, down time.Duration, err error) {
	store, err := os.MkdirTemp("", "hodei-bench-docker-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(store)
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	cfg, err := b.config(store, port, b.n, time.Second)
	if err != nil {
		return 0, 0, err
	}
	log := zerolog.New(io.Discard)
	real, err := factory.New(cfg.Name, cfg.Pools[0], log)
	if err != nil {
		return 0, 0, err
	}
	prov := &timed{Provider: real}
	d, err := benchkit.StartDaemon(cfg, map[string]providers.Provider{poolName: prov}, log)
	if err != nil {
		return 0, 0, err
	}
	defer d.Stop()
	if _, err := d.WaitReady(time.Minute); err != nil {
		return 0, 0, err
	}
	time.Sleep(200 * time.Millisecond) // the first listing is in
	nc, js, err := benchkit.Connect(d.App.BusURL())
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	jobs := make([]benchkit.Event, b.n)
	for i := range jobs {
		jobs[i] = benchkit.Event{Pool: poolName, Kind: domain.JobQueued, Job: fmt.Sprintf("docker-%s-%02d", b.runID, i)}
	}
	start := time.Now()
	if err := benchkit.Fill(ctx, js, jobs, time.Now); err != nil {
		return 0, 0, err
	}
	if err := waitFor(ctx, 10*time.Minute, func() (bool, error) {
		c, _, errs := prov.counts()
		if len(errs) > 0 {
			return false, fmt.Errorf("provider errors: %v", errs)
		}
		return c >= b.n, nil
	}); err != nil {
		return 0, 0, fmt.Errorf("scaling up: %w", err)
	}
	up = prov.last(prov.create).Sub(start)
	if err := b.expectRunning(ctx, domain.LabelOwner+"="+b.owner, b.n); err != nil {
		return 0, 0, err
	}

	time.Sleep(1500 * time.Millisecond) // every worker idle past idle_timeout
	for i := range jobs {
		jobs[i].Kind = domain.JobFinished
	}
	start = time.Now()
	if err := benchkit.Fill(ctx, js, jobs, time.Now); err != nil {
		return 0, 0, err
	}
	if err := waitFor(ctx, 10*time.Minute, func() (bool, error) {
		_, s, errs := prov.counts()
		if len(errs) > 0 {
			return false, fmt.Errorf("provider errors: %v", errs)
		}
		return s >= b.n, nil
	}); err != nil {
		return 0, 0, fmt.Errorf("scaling down: %w", err)
	}
	down = prov.last(prov.stop).Sub(start)
	if err := b.expectRunning(ctx, domain.LabelOwner+"="+b.owner, 0); err != nil {
		return 0, 0, err
	}
	return up, down, nil
}

// config is the daemon's config for the Docker rows: one pool of the
// example worker with row 4's container settings and no warm buffer (with
// idle_workers auto, the default since issue 14, the policy keeps a worker
// for the next burst: 50 → 0 would never reach 0, and row 4c's jobs would
// find a worker ready instead of paying a cold start).
func (b *bench) config(store string, port, maxWorkers int, idle time.Duration) (config.Config, error) {
	cfg, err := benchkit.Config("embedded", store, port, []string{poolName}, func(p *config.Pool) {
		p.Provider = "docker"
		p.MaxWorkers = maxWorkers
		p.MaxConcurrentProvisioning = maxWorkers
		p.IdleTimeout = config.Fixed(idle)
		p.IdleWorkers = config.IdleWorkers{}
		p.StopGracePeriod = config.Duration(grace)
		p.Docker.Image = b.image
		p.Docker.PullPolicy = "never"
		p.Docker.NetworkMode = "host"
		p.Env = map[string]string{"HODEI_NATS_URL": deadNATS}
		p.Resources = domain.Resources{CPUMillis: cpuMillis, MemoryMB: memoryMB}
	})
	cfg.Name = b.owner
	return cfg, err
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// expectRunning checks that exactly n containers with the label exist and
// all of them run.
func (b *bench) expectRunning(ctx context.Context, label string, n int) error {
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		return err
	}
	running := 0
	for _, c := range cs {
		if c.State == container.StateRunning {
			running++
		}
	}
	if len(cs) != n || running != n {
		return fmt.Errorf("expected %d running containers with %s, found %d (%d running)", n, label, len(cs), running)
	}
	return nil
}

// cleanup force-removes every container of this run.
func (b *bench) cleanup() error {
	if b.cli == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, label := range []string{runLabel + "=" + b.runID, domain.LabelOwner + "=" + b.owner} {
		cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range cs {
			if err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func docker(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

func xargs(ctx context.Context, stdin []byte, args ...string) error {
	cmd := exec.CommandContext(ctx, "xargs", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xargs: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
