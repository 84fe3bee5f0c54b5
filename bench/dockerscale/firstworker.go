package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/providers/factory"
)

// starts follows the engine's container start events and tells when the
// container of a worker id started (the engine's own timestamp).
type starts struct {
	mu   sync.Mutex
	at   map[string]time.Time // owner/worker id -> start
	wake chan struct{}
	err  error
}

func (b *bench) followStarts(ctx context.Context) *starts {
	s := &starts{at: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", string(events.ActionStart)))})
	go func() {
		for {
			select {
			case m := <-msgs:
				id := m.Actor.Attributes[domain.LabelWorkerID]
				if id == "" {
					continue
				}
				s.mu.Lock()
				s.at[m.Actor.Attributes[domain.LabelOwner]+"/"+id] = time.Unix(0, m.TimeNano)
				s.mu.Unlock()
			case err := <-errs:
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			case <-ctx.Done():
				return
			}
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// wait returns when the container of a worker id matching pick started.
func (s *starts) wait(ctx context.Context, timeout time.Duration, pick func(id string) bool) (string, time.Time, error) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		err := s.err
		for id, at := range s.at {
			if pick(id) {
				s.mu.Unlock()
				return id, at, nil
			}
		}
		s.mu.Unlock()
		if err != nil {
			return "", time.Time{}, fmt.Errorf("docker events: %w", err)
		}
		select {
		case <-s.wake:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			return "", time.Time{}, fmt.Errorf("no container started within %s", timeout)
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		}
	}
}

// firstWorker measures row 4c: one job.queued published to that job's
// worker container running (the engine's start event), one job at a time,
// through the whole daemon with the real Docker provider, against `docker
// run -d` of the same image and settings timed the same way (command
// started to the engine's start event), alternating the two, same run.
// Each daemon worker is then given its job (job.started), so the next
// queued job needs a new worker.
func (b *bench) firstWorker(ctx context.Context, res *benchkit.Result, n, warm int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := b.followStarts(ctx)
	store, err := os.MkdirTemp("", "hodei-bench-first-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	port, err := freePort()
	if err != nil {
		return err
	}
	total := n + warm
	cfg, err := b.config(store, port, total+1, time.Hour)
	if err != nil {
		return err
	}
	log := zerolog.New(io.Discard)
	prov, err := factory.New(cfg.Name, cfg.Pools[0], log)
	if err != nil {
		return err
	}
	d, err := benchkit.StartDaemon(cfg, map[string]providers.Provider{poolName: prov}, log)
	if err != nil {
		return err
	}
	defer d.Stop()
	if _, err := d.WaitReady(time.Minute); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // the first listing is in
	nc, js, err := benchkit.Connect(d.App.BusURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	publish := func(ev benchkit.Event) error {
		subj, payload, id, err := benchkit.Encode(ev, time.Now())
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: subj, Data: payload, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		_, err = js.PublishMsg(ctx, msg)
		return err
	}

	seen := map[string]bool{}
	var cli, ours []time.Duration
	daemonOne := func(i int) (time.Duration, error) {
		job := fmt.Sprintf("first-%s-%02d", b.runID, i)
		t0 := time.Now()
		if err := publish(benchkit.Event{Pool: poolName, Kind: domain.JobQueued, Job: job}); err != nil {
			return 0, err
		}
		key, at, err := st.wait(ctx, 2*time.Minute, func(key string) bool { return !seen[key] && strings.HasPrefix(key, cfg.Name+"/") })
		if err != nil {
			return 0, fmt.Errorf("daemon job %d: %w", i, err)
		}
		seen[key] = true
		id := strings.TrimPrefix(key, cfg.Name+"/")
		// The worker takes the job, so the next one needs a new worker.
		if err := publish(benchkit.Event{Pool: poolName, Kind: domain.JobStarted, Job: job, Worker: domain.WorkerID(id)}); err != nil {
			return 0, err
		}
		if err := waitFor(ctx, time.Minute, func() (bool, error) {
			_, running, _ := d.Totals()
			return running == i+1, nil
		}); err != nil {
			return 0, fmt.Errorf("daemon job %d started: %w", i, err)
		}
		return at.Sub(t0), nil
	}
	cliOne := func(i int) (time.Duration, error) {
		id := fmt.Sprintf("first-cli-%02d", i)
		t0 := time.Now()
		if err := docker(ctx, b.dockerArgs(fmt.Sprintf("hodei-bench-%s-first-%02d", b.runID, i), id)...); err != nil {
			return 0, err
		}
		_, at, err := st.wait(ctx, 2*time.Minute, func(key string) bool { return strings.HasSuffix(key, "/"+id) })
		if err != nil {
			return 0, fmt.Errorf("docker run %d: %w", i, err)
		}
		return at.Sub(t0), nil
	}
	for i := range total {
		// Alternate which goes first, so drift in the machine's load
		// falls on both alike.
		first, second := cliOne, daemonOne
		if i%2 == 1 {
			first, second = daemonOne, cliOne
		}
		a, err := first(i)
		if err != nil {
			return err
		}
		c, err := second(i)
		if err != nil {
			return err
		}
		if i%2 == 1 {
			a, c = c, a
		}
		if i >= warm {
			cli, ours = append(cli, a), append(ours, c)
		}
	}
	if err := b.expectRunning(ctx, domain.LabelOwner+"="+cfg.Name, total); err != nil {
		return err
	}
	firstRow(res, cli, ours, warm)
	res.Raw = map[string]any{"first_worker_cli_ns": cli, "first_worker_ours_ns": ours}
	return nil
}

// within is the row's target: ours ≤ 1.1 × the CLI + 5 ms.
func within(ours, cli time.Duration) bool {
	return float64(ours) <= 1.1*float64(cli)+float64(5*time.Millisecond)
}

func firstRow(res *benchkit.Result, cli, ours []time.Duration, warm int) {
	sum := func(ds []time.Duration) benchkit.Dist { return benchkit.Summarise(slices.Clone(ds)) }
	c, o := sum(cli), sum(ours)
	met := within(o.P50, c.P50) && within(o.P95, c.P95)
	// The two halves of the run judged alone: if they disagree, the
	// spread is wider than the margin to the target.
	h := len(cli) / 2
	c1, o1 := sum(cli[:h]), sum(ours[:h])
	c2, o2 := sum(cli[h:]), sum(ours[h:])
	m1 := within(o1.P50, c1.P50) && within(o1.P95, c1.P95)
	m2 := within(o2.P50, c2.P50) && within(o2.P95, c2.P95)
	verdict := benchkit.YesNo(met)
	if m1 != m2 {
		verdict += " (the run's two halves disagree: the spread is wider than the margin to the target, not a result)"
	}
	res.Detail("- time to first worker, %d jobs one at a time (%d warm-up pairs not counted): docker run -d → start %s; job.queued → start %s; halves: CLI p50 %s / %s, ours p50 %s / %s",
		len(cli), warm, c, o, benchkit.Dur(c1.P50), benchkit.Dur(c2.P50), benchkit.Dur(o1.P50), benchkit.Dur(o2.P50))
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        "4c",
		What:      fmt.Sprintf("time to first worker: one job.queued published → that job's worker container running (real engine, real Docker provider, example worker image), %d jobs one at a time", len(cli)),
		Reference: fmt.Sprintf("docker run -d of the same image and settings, command start → the engine's start event: p50 %s, p95 %s (min %s, max %s)", benchkit.Dur(c.P50), benchkit.Dur(c.P95), benchkit.Dur(c.Min), benchkit.Dur(c.Max)),
		Ours:      fmt.Sprintf("publish → the engine's start event: p50 %s, p95 %s (min %s, max %s)", benchkit.Dur(o.P50), benchkit.Dur(o.P95), benchkit.Dur(o.Min), benchkit.Dur(o.Max)),
		Ratio:     fmt.Sprintf("%.2f× (p50), %.2f× (p95); %+.1f ms at p50", float64(o.P50)/float64(c.P50), float64(o.P95)/float64(c.P95), float64(o.P50-c.P50)/1e6),
		Target:    "≤ 1.1× + 5 ms, at p50 and p95",
		Met:       verdict,
		Note:      "pool with idle_workers 0 (no warm buffer: every job a cold start); alternating CLI and daemon job by job, same run; each daemon worker then takes its job (job.started) so the next job needs a new one; the provider's create is inspect, image check, create, start, inspect; the CLI's is one process start, API negotiation, create, start",
	})
}
