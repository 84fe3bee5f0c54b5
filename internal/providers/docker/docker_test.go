package docker

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// TestCreateConfiguresContainer creates one worker per pool configuration
// and checks, by inspecting the container, everything Create sets.
func TestCreateConfiguresContainer(t *testing.T) {
	hostDir := t.TempDir()
	tests := []struct {
		name   string
		mutate func(*Config)
		check  func(t *testing.T, ci container.InspectResponse)
	}{
		{
			name: "locked down with limits",
			mutate: func(c *Config) {
				c.Env = map[string]string{"HODEI_SERVER_GRPC_URL": "http://sched:50051", domain.EnvWorkerID: "spoofed"}
				c.Resources = domain.Resources{CPUMillis: 500, MemoryMB: 64}
				c.Slots = 3
				c.Docker.ReadOnlyRootfs = true
				c.Docker.CapAdd = []string{"NET_BIND_SERVICE"}
				c.Docker.User = "65534:65534"
				c.Docker.Mounts = []string{hostDir + ":/data:ro"}
			},
			check: func(t *testing.T, ci container.InspectResponse) {
				hc := ci.HostConfig
				if hc.NanoCPUs != 500_000_000 || hc.Memory != 64<<20 {
					t.Errorf("NanoCPUs %d Memory %d, want 5e8 and 64MiB", hc.NanoCPUs, hc.Memory)
				}
				if !hc.ReadonlyRootfs || ci.Config.User != "65534:65534" {
					t.Errorf("ReadonlyRootfs %v User %q", hc.ReadonlyRootfs, ci.Config.User)
				}
				// The engine may normalise capability names to CAP_*.
				if len(hc.CapAdd) != 1 || strings.TrimPrefix(hc.CapAdd[0], "CAP_") != "NET_BIND_SERVICE" {
					t.Errorf("CapAdd %v", hc.CapAdd)
				}
				want := []mount.Mount{{Type: mount.TypeBind, Source: hostDir, Target: "/data", ReadOnly: true}}
				if len(hc.Mounts) != 1 || hc.Mounts[0].Source != want[0].Source || hc.Mounts[0].Target != "/data" || !hc.Mounts[0].ReadOnly || hc.Mounts[0].Type != mount.TypeBind {
					t.Errorf("Mounts %+v, want %+v", hc.Mounts, want)
				}
				for _, e := range []string{"HODEI_SERVER_GRPC_URL=http://sched:50051", "HODEI_WORKER_SLOTS=3"} {
					if !slices.Contains(ci.Config.Env, e) {
						t.Errorf("env %v lacks %s", ci.Config.Env, e)
					}
				}
				if slices.Contains(ci.Config.Env, "HODEI_WORKER_ID=spoofed") {
					t.Errorf("pool env overrode HODEI_WORKER_ID: %v", ci.Config.Env)
				}
			},
		},
		{
			name: "defaults",
			check: func(t *testing.T, ci container.InspectResponse) {
				hc := ci.HostConfig
				if hc.NanoCPUs != 0 || hc.Memory != 0 || len(hc.Mounts) != 0 || len(hc.Binds) != 0 || len(ci.Mounts) != 0 {
					t.Errorf("unexpected limits or mounts: NanoCPUs %d Memory %d Mounts %v Binds %v", hc.NanoCPUs, hc.Memory, hc.Mounts, hc.Binds)
				}
				if !slices.Contains(ci.Config.Env, "HODEI_WORKER_SLOTS=1") {
					t.Errorf("env %v lacks HODEI_WORKER_SLOTS=1", ci.Config.Env)
				}
			},
		},
		{
			name: "entrypoint and command",
			mutate: func(c *Config) {
				c.Docker.Entrypoint = []string{"/sleeper"}
				c.Docker.Command = []string{"serve", "--fast"}
			},
			check: func(t *testing.T, ci container.InspectResponse) {
				if !slices.Equal(ci.Config.Entrypoint, []string{"/sleeper"}) || !slices.Equal(ci.Config.Cmd, []string{"serve", "--fast"}) {
					t.Errorf("Entrypoint %v Cmd %v", ci.Config.Entrypoint, ci.Config.Cmd)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, cli := newProvider(t, tt.mutate)
			id := domain.NewWorkerID()
			before := time.Now()
			w, err := p.Create(ctxT(t, time.Minute), providers.WorkerSpec{ID: id, Pool: testPool})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if w.ID != id || w.Pool != testPool || w.Provider != "docker" || w.Phase != domain.PhaseReady {
				t.Errorf("Create returned %+v, want a ready docker worker %s of %s", w, id, testPool)
			}
			if w.CreatedAt.Before(before.Add(-5*time.Second)) || w.CreatedAt.After(time.Now().Add(5*time.Second)) {
				t.Errorf("CreatedAt %v is not about now (%v)", w.CreatedAt, before)
			}
			ci, ok := exists(t, cli, domain.WorkerName(id))
			if !ok {
				t.Fatalf("no container named %s", domain.WorkerName(id))
			}
			// Common to every configuration.
			wantLabels := domain.WorkerLabels(p.cfg.Owner, testPool, id)
			for k, v := range wantLabels {
				if ci.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, ci.Config.Labels[k], v)
				}
			}
			for _, e := range []string{"HODEI_WORKER_ID=" + string(id), "HODEI_WORKER_POOL=" + string(testPool)} {
				if !slices.Contains(ci.Config.Env, e) {
					t.Errorf("env %v lacks %s", ci.Config.Env, e)
				}
			}
			hc := ci.HostConfig
			if hc.NetworkMode != "none" {
				t.Errorf("NetworkMode %q, want none", hc.NetworkMode)
			}
			if hc.Init == nil || !*hc.Init {
				t.Errorf("Init is not true")
			}
			if hc.RestartPolicy.Name != container.RestartPolicyDisabled {
				t.Errorf("RestartPolicy %+v", hc.RestartPolicy)
			}
			if !hc.Privileged {
				if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
					t.Errorf("SecurityOpt %v lacks no-new-privileges:true", hc.SecurityOpt)
				}
				if len(hc.CapDrop) != 1 || strings.TrimPrefix(hc.CapDrop[0], "CAP_") != "ALL" {
					t.Errorf("CapDrop %v, want [ALL]", hc.CapDrop)
				}
			}
			if !ci.State.Running {
				t.Errorf("container is %s, want running", ci.State.Status)
			}
			if tt.check != nil {
				tt.check(t, ci)
			}
		})
	}
}

// TestCreateIsIdempotent: a repeated or concurrent Create of one id adopts
// the single container; a container only created (not started) is adopted
// and started.
func TestCreateIsIdempotent(t *testing.T) {
	p, cli := newProvider(t, nil)
	ctx := ctxT(t, 2*time.Minute)

	t.Run("concurrent then sequential", func(t *testing.T) {
		id := domain.NewWorkerID()
		// Concurrent first calls race on the name: the losers adopt.
		const n = 6
		results := make([]domain.Worker, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool}) })
		}
		wg.Wait()
		again, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool})
		results, errs = append(results, again), append(errs, err)
		for i, w := range results {
			if errs[i] != nil {
				t.Errorf("Create #%d: %v", i, errs[i])
				continue
			}
			if w.ID != id || w.Phase != domain.PhaseReady || !w.CreatedAt.Equal(results[0].CreatedAt) {
				t.Errorf("Create #%d returned %+v; want the same ready worker as #0 (%+v)", i, w, results[0])
			}
		}
		args := filters.NewArgs(filters.Arg("label", domain.LabelWorkerID+"="+string(id)))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
		if err != nil || len(cs) != 1 {
			t.Fatalf("%d containers for worker %s (%v), want 1", len(cs), id, err)
		}
	})

	t.Run("created but not started", func(t *testing.T) {
		id := domain.NewWorkerID()
		cfg, hostCfg := p.containerConfig(id)
		if _, err := cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, domain.WorkerName(id)); err != nil {
			t.Fatal(err)
		}
		w, ok, desc := listOne(t, p, id)
		if !ok || w.Phase != domain.PhasePending {
			t.Fatalf("created container listed as %s, want pending", desc)
		}
		w, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool})
		if err != nil || w.Phase != domain.PhaseReady {
			t.Fatalf("Create of a created container = %+v, %v; want it started and ready", w, err)
		}
	})
}

// TestStopSignalsThenKills observes the engine's kill events: Stop sends
// SIGTERM; a worker that exits on it is gone well within the grace period,
// one that ignores it is killed (SIGKILL) once the grace period is over.
func TestStopSignalsThenKills(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		grace       time.Duration
		wantSignals []string
		wantExit    string
		minElapsed  time.Duration
		maxElapsed  time.Duration
	}{
		{name: "exits on SIGTERM", grace: 20 * time.Second, wantSignals: []string{"15"}, wantExit: "0", maxElapsed: 5 * time.Second},
		{name: "ignores SIGTERM", env: map[string]string{"SLEEPER_IGNORE_TERM": "1"}, grace: 2 * time.Second,
			wantSignals: []string{"15", "9"}, wantExit: "137", minElapsed: 2 * time.Second, maxElapsed: 2*time.Second + 4*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, cli := newProvider(t, func(c *Config) { c.Env = tt.env })
			ctx := ctxT(t, time.Minute)
			id := domain.NewWorkerID()
			if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool}); err != nil {
				t.Fatal(err)
			}
			// The sleeper logs once its signal handler is installed.
			waitFor(t, 10*time.Second, "the sleeper to run", func() (bool, string) {
				logs := containerLogs(t, cli, domain.WorkerName(id))
				return strings.Contains(logs, "sleeper: running"), logs
			})

			evCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			args := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", domain.LabelWorkerID+"="+string(id)))
			msgs, errs := cli.Events(evCtx, events.ListOptions{Filters: args})

			start := time.Now()
			if err := p.Stop(ctx, id, tt.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			elapsed := time.Since(start)
			t.Logf("Stop took %s (grace %s)", elapsed.Round(time.Millisecond), tt.grace)
			if elapsed < tt.minElapsed || elapsed > tt.maxElapsed {
				t.Errorf("Stop took %s, want between %s and %s", elapsed, tt.minElapsed, tt.maxElapsed)
			}
			if _, ok := exists(t, cli, domain.WorkerName(id)); ok {
				t.Errorf("container still exists after Stop")
			}

			var signals []string
			exit := ""
			for done := false; !done; {
				select {
				case m := <-msgs:
					switch m.Action {
					case events.ActionKill:
						signals = append(signals, m.Actor.Attributes["signal"])
					case events.ActionDie:
						exit = m.Actor.Attributes["exitCode"]
					case events.ActionDestroy:
						done = true
					}
				case err := <-errs:
					t.Fatalf("event stream: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatalf("no destroy event; signals %v exit %q", signals, exit)
				}
			}
			if !slices.Equal(signals, tt.wantSignals) || exit != tt.wantExit {
				t.Errorf("signals %v exit code %q, want %v and %s", signals, exit, tt.wantSignals, tt.wantExit)
			}
		})
	}
}

// TestStopAndDeleteMissingSucceed: a worker that does not exist is already
// stopped and deleted.
func TestStopAndDeleteMissingSucceed(t *testing.T) {
	p, _ := newProvider(t, nil)
	ctx := ctxT(t, time.Minute)
	id := domain.NewWorkerID()
	if err := p.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop of a missing worker: %v", err)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Errorf("Delete of a missing worker: %v", err)
	}

	// Delete removes a running worker at once; a second Delete succeeds.
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Delete(ctx, id); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, ok, desc := listOne(t, p, id); ok {
		t.Errorf("deleted worker still listed: %s", desc)
	}
}

// TestOwnership: List, Stop, Delete and Create never see or touch
// containers of another owner, of another pool of the same owner, or
// without labels, even when they carry a worker's name.
func TestOwnership(t *testing.T) {
	p, cli := newProvider(t, nil)
	ctx := ctxT(t, 2*time.Minute)

	mine := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: mine, Pool: testPool}); err != nil {
		t.Fatal(err)
	}
	foreign := []struct {
		name   string
		labels func(id domain.WorkerID) map[string]string
	}{
		{"other owner", func(id domain.WorkerID) map[string]string {
			return domain.WorkerLabels(p.cfg.Owner+"-other", testPool, id)
		}},
		{"same owner, other pool", func(id domain.WorkerID) map[string]string {
			return domain.WorkerLabels(p.cfg.Owner, "p2", id)
		}},
		{"owner label without worker=true", func(id domain.WorkerID) map[string]string {
			l := domain.WorkerLabels(p.cfg.Owner, testPool, id)
			delete(l, domain.LabelWorker)
			return l
		}},
		{"unlabelled", func(domain.WorkerID) map[string]string { return nil }},
	}
	ids := make([]domain.WorkerID, len(foreign))
	cids := make([]string, len(foreign))
	for i, f := range foreign {
		ids[i] = domain.NewWorkerID()
		cids[i] = createRaw(t, cli, domain.WorkerName(ids[i]), f.labels(ids[i]), true)
	}

	ws, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].ID != mine || ws[0].Phase != domain.PhaseReady {
		t.Errorf("List = %+v, want only the ready worker %s", ws, mine)
	}

	for i, f := range foreign {
		t.Run(f.name, func(t *testing.T) {
			id := ids[i]
			err := p.Stop(ctx, id, time.Second)
			mustNotBeOwned(t, "Stop", err)
			if !errors.Is(err, providers.ErrNotFound) {
				t.Errorf("Stop error %v does not wrap providers.ErrNotFound", err)
			}
			mustNotBeOwned(t, "Delete", p.Delete(ctx, id))
			_, err = p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool})
			mustNotBeOwned(t, "Create", err)
			if err != nil && !strings.Contains(err.Error(), "does not own") {
				t.Errorf("Create error %q does not say the name belongs to someone else", err)
			}
			ci, ok := exists(t, cli, cids[i])
			if !ok || !ci.State.Running {
				t.Errorf("foreign container was touched: exists %v, state %+v", ok, ci.State)
			}
		})
	}
}

// TestWatch reports a worker started, killed by hand (exit code 137) and
// removed by hand, and nothing about containers it does not own.
func TestWatch(t *testing.T) {
	p, cli := newProvider(t, nil)
	ctx := ctxT(t, 2*time.Minute)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := p.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	// A foreign worker of the same pool must not be reported.
	other := domain.NewWorkerID()
	createRaw(t, cli, domain.WorkerName(other), domain.WorkerLabels(p.cfg.Owner+"-other", testPool, other), true)

	id := domain.NewWorkerID()
	if _, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool}); err != nil {
		t.Fatal(err)
	}
	await := func(what string, match func(domain.WorkerChange) bool) domain.WorkerChange {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ch, ok := <-changes:
				if !ok {
					t.Fatalf("watch channel closed while waiting for %s", what)
				}
				t.Logf("change: %+v", ch)
				if ch.ID != id {
					t.Fatalf("change for a worker that is not ours: %+v", ch)
				}
				if match(ch) {
					return ch
				}
			case <-timeout:
				t.Fatalf("no change reporting %s within 20s", what)
			}
		}
	}
	await("ready", func(ch domain.WorkerChange) bool { return !ch.Gone && ch.Worker.Phase == domain.PhaseReady })

	if err := cli.ContainerKill(ctx, domain.WorkerName(id), "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	ch := await("failed", func(ch domain.WorkerChange) bool { return !ch.Gone && ch.Worker.Phase == domain.PhaseFailed })
	if ch.Worker.Reason != "exited with code 137 (SIGKILL)" || ch.Worker.ID != id || ch.Worker.Pool != testPool {
		t.Errorf("killed worker reported as %+v, want reason %q", ch.Worker, "exited with code 137 (SIGKILL)")
	}
	if w, ok, desc := listOne(t, p, id); !ok || w.Phase != domain.PhaseFailed || w.Reason != ch.Worker.Reason {
		t.Errorf("List reports the killed worker as %s", desc)
	}

	if err := cli.ContainerRemove(ctx, domain.WorkerName(id), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	await("gone", func(ch domain.WorkerChange) bool { return ch.Gone })

	cancel()
	select {
	case _, ok := <-changes:
		for ok {
			_, ok = <-changes
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed after cancel")
	}
}

// TestPullPolicy: never with a missing image fails naming the image and the
// policy and creates nothing; if-not-present and always try to pull a
// missing image and fail naming it; if-not-present uses a present image
// without pulling.
func TestPullPolicy(t *testing.T) {
	missing := "127.0.0.1:1/hodei/missing-" + strings.ToLower(dockertest.UniqueName("img")) + ":v1"
	tests := []struct {
		policy  string
		image   string
		wantErr []string
		is      error
	}{
		{policy: PullNever, image: missing, wantErr: []string{missing, `pull policy is "never"`}, is: ErrImageNotPresent},
		{policy: PullIfNotPresent, image: missing, wantErr: []string{missing, "pulling image"}},
		{policy: PullAlways, image: missing, wantErr: []string{missing, "pulling image", "always"}},
		{policy: PullIfNotPresent, image: sleeperTag},
	}
	for _, tt := range tests {
		t.Run(tt.policy+" "+filepath.Base(tt.image), func(t *testing.T) {
			p, cli := newProvider(t, func(c *Config) { c.Docker.PullPolicy = tt.policy; c.Docker.Image = tt.image })
			id := domain.NewWorkerID()
			_, err := p.Create(ctxT(t, time.Minute), providers.WorkerSpec{ID: id, Pool: testPool})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Create succeeded with a missing image")
			}
			t.Logf("error: %v", err)
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if _, ok := exists(t, cli, domain.WorkerName(id)); ok {
				t.Errorf("a container was created")
			}
		})
	}
}

// TestWorkerThatEnds: a command that exits at once is reported exited (code
// 0) or failed with its exit code; a container that cannot start makes
// Create fail and is listed as failed with the engine's error.
func TestWorkerThatEnds(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*Config)
		createErr  bool
		wantPhase  domain.Phase
		wantReason string
	}{
		{name: "exit 3", mutate: func(c *Config) { c.Env = map[string]string{"SLEEPER_EXIT_CODE": "3"} },
			wantPhase: domain.PhaseFailed, wantReason: "exited with code 3"},
		{name: "exit 0", mutate: func(c *Config) { c.Env = map[string]string{"SLEEPER_EXIT_CODE": "0"} },
			wantPhase: domain.PhaseExited, wantReason: "exited with code 0"},
		// The init process starts, then fails to run the missing program.
		{name: "missing entrypoint", mutate: func(c *Config) { c.Docker.Entrypoint = []string{"/no-such-binary"} },
			wantPhase: domain.PhaseFailed, wantReason: "exited with code 127"},
		// The runtime cannot start the container at all.
		{name: "unknown user", mutate: func(c *Config) { c.Docker.User = "no-such-user" },
			createErr: true, wantPhase: domain.PhaseFailed, wantReason: "no-such-user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newProvider(t, tt.mutate)
			id := domain.NewWorkerID()
			_, err := p.Create(ctxT(t, time.Minute), providers.WorkerSpec{ID: id, Pool: testPool})
			if tt.createErr != (err != nil) {
				t.Fatalf("Create error = %v, want error: %v", err, tt.createErr)
			}
			if err != nil {
				t.Logf("Create error: %v", err)
			}
			waitFor(t, 20*time.Second, "the worker to end", func() (bool, string) {
				w, ok, desc := listOne(t, p, id)
				return ok && w.Phase.Terminal(), desc
			})
			w, _, _ := listOne(t, p, id)
			if w.Phase != tt.wantPhase || !strings.Contains(w.Reason, tt.wantReason) {
				t.Errorf("worker %+v, want phase %s and a reason containing %q", w, tt.wantPhase, tt.wantReason)
			}
			t.Logf("reported as %s: %s", w.Phase, w.Reason)
		})
	}
}

// TestHealthcheck: with an image HEALTHCHECK, a running worker is pending
// until healthy, then ready; an unhealthy one is failed. List (status text)
// and inspect (Watch/Create) agree.
func TestHealthcheck(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		phase  domain.Phase
		reason string
	}{
		{name: "healthy", phase: domain.PhaseReady, reason: "healthy"},
		{name: "unhealthy", env: map[string]string{"SLEEPER_UNHEALTHY": "1"}, phase: domain.PhaseFailed, reason: "unhealthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newProvider(t, func(c *Config) { c.Docker.Image = testImage(t, healthTag); c.Env = tt.env })
			ctx := ctxT(t, time.Minute)
			id := domain.NewWorkerID()
			w, err := p.Create(ctx, providers.WorkerSpec{ID: id, Pool: testPool})
			if err != nil {
				t.Fatal(err)
			}
			if w.Phase != domain.PhasePending || !strings.Contains(w.Reason, "starting") {
				t.Errorf("just created: %+v, want pending while the health check starts", w)
			}
			waitFor(t, 30*time.Second, "health "+tt.name, func() (bool, string) {
				w, ok, desc := listOne(t, p, id)
				return ok && w.Phase == tt.phase && strings.Contains(w.Reason, tt.reason), desc
			})
			w, err = p.inspectWorker(ctx, domain.WorkerName(id))
			if err != nil || w.Phase != tt.phase || !strings.Contains(w.Reason, tt.reason) {
				t.Errorf("inspect: %+v, %v; want %s (%s)", w, err, tt.phase, tt.reason)
			}
			t.Logf("reported as %s: %s", w.Phase, w.Reason)
		})
	}
}

// TestPingAndName checks the trivial calls, and that a bad host fails Ping
// with an error naming it.
func TestPingAndName(t *testing.T) {
	p, _ := newProvider(t, nil)
	if err := p.Ping(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if p.Name() != "docker" {
		t.Errorf("Name = %q", p.Name())
	}
	bad, err := New(Config{Owner: "o", Pool: testPool, Docker: dockerCfg("img", "unix:///nonexistent/docker.sock")}, p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctxT(t, 10*time.Second)); err == nil || !strings.Contains(err.Error(), "/nonexistent/docker.sock") {
		t.Errorf("Ping of a missing engine: %v", err)
	}
}
