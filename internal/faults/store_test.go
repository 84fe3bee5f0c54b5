package faults

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// mountTmpfs mounts a tmpfs of size at a new directory, with extra mount
// options, and unmounts it at the end. Without the right to mount, the
// test is skipped, unless REQUIRE_MOUNT=1.
func mountTmpfs(t *testing.T, size, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	o := "size=" + size
	if opts != "" {
		o += "," + opts
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", o, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "cannot mount a tmpfs here (" + strings.TrimSpace(string(out)) + "): " + err.Error()
		if os.Getenv("REQUIRE_MOUNT") == "1" {
			t.Fatal(msg + " (REQUIRE_MOUNT=1)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// Issue 10, item 6: a read-only store directory fails the start with that
// cause, not with "is the port in use?".
func TestReadOnlyStoreDirNamed(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "4m", "ro")
	cfg := baseConfig(t, "faults-rostore")
	cfg.NATS.Embedded.StoreDir = dir
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "unused"
	cfg.Pools = []config.Pool{p}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{Logger: zerolog.Nop(), Providers: func(string, config.Pool, zerolog.Logger) (providers.Provider, error) {
		return fakeprovider.New("p1"), nil
	}})
	if err == nil {
		_ = a
		t.Fatal("the daemon started on a read-only store directory")
	}
	msg := err.Error()
	if !strings.Contains(msg, "not writable") || !strings.Contains(msg, "store_dir") || strings.Contains(msg, "port in use") {
		t.Fatalf("error %q: want it to name the unwritable store_dir, not the port", msg)
	}
	t.Logf("refused with: %s", msg)
}

// startRetrying runs app.New in the background (it retries the bus until
// its context ends) and returns the HTTP address it listens on.
func startRetrying(t *testing.T, cfg config.Config) string {
	t.Helper()
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(t))
	p := config.PoolDefaults()
	p.Name = "p1"
	p.Docker.Image = "unused"
	cfg.Pools = []config.Pool{p}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, err := app.New(ctx, cfg, app.Options{Logger: zerolog.Nop(), Providers: func(string, config.Pool, zerolog.Logger) (providers.Provider, error) {
			return fakeprovider.New("p1"), nil
		}})
		if err == nil {
			t.Errorf("app.New returned without error while the bus is unusable")
			_ = a.Run(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + cfg.HTTP.Listen
}

// Issue 10, item 6: the HTTP listener starts before the bus; during the
// bus retries /healthz answers and /readyz says why it is not ready.
func TestReadyzSaysWhyDuringBusRetries(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, "faults-busretry")
	cfg.NATS.URL = fmt.Sprintf("nats://127.0.0.1:%d", bustest.FreePort(t)) // nothing listens
	base := startRetrying(t, cfg)
	bustest.Eventually(t, 20*time.Second, "/healthz answers during bus retries", func() bool {
		code, _ := httpGet(base + "/healthz")
		return code == http.StatusOK
	})
	var body string
	bustest.Eventually(t, 20*time.Second, "/readyz names the retry", func() bool {
		var code int
		code, body = httpGet(base + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connecting to nats, retrying")
	})
	t.Logf("/readyz: %s", body)
}

// Issue 10, item 6: a store smaller than nats.streams.max_bytes is named,
// with the fix, in /readyz while the daemon retries.
func TestStoreSmallerThanMaxBytesNamed(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "8m", "")
	cfg := baseConfig(t, "faults-smallstore")
	cfg.NATS.Embedded.StoreDir = dir // max_bytes stays 1GiB
	base := startRetrying(t, cfg)
	var body string
	bustest.Eventually(t, 30*time.Second, "/readyz names max_bytes", func() bool {
		var code int
		code, body = httpGet(base + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "nats.streams.max_bytes")
	})
	t.Logf("/readyz: %s", body)
}

// fillDisk writes zeros to a file in dir until the file system is full,
// and returns a func that removes it.
func fillDisk(t *testing.T, dir string) func() {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("closing the filler: %v", err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(name); err != nil {
			t.Fatalf("removing the filler: %v", err)
		}
	}
}

// ackedPublisher publishes queued events as a scheduler that retries
// would: each job until JetStream acknowledges it (same Nats-Msg-Id on
// every attempt), and remembers which were acknowledged.
type ackedPublisher struct {
	t      *testing.T
	js     jetstream.JetStream
	mu     sync.Mutex
	acked  []string
	tries  int
	failed int
}

func (p *ackedPublisher) publish(ctx context.Context, job string) error {
	// 5 KiB of labels: each event needs a new page of the store, so on a
	// full disk none fits in what is left of a page.
	labels := map[string]string{"pad": strings.Repeat("x", 5<<10)}
	payload, err := events.Encode(job, "test-scheduler", domain.JobQueued.Type(), time.Now(), domain.JobData{JobID: job, Pool: "p1", Labels: labels})
	if err != nil {
		return fmt.Errorf("encoding %s: %w", job, err)
	}
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := p.js.Publish(actx, "hodei.jobs.p1.queued", payload, jetstream.WithMsgID(job))
		cancel()
		p.mu.Lock()
		p.tries++
		if err == nil {
			p.acked = append(p.acked, job)
		} else {
			p.failed++
		}
		p.mu.Unlock()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %s: %w (last attempt: %w)", job, ctx.Err(), err)
		case <-pace.C:
		}
	}
}

func (p *ackedPublisher) ackedJobs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// Issue 10, item 6: a full disk under the embedded server turns /readyz
// false with the reason; once space returns the daemon takes writes again
// without a restart of its own (the store watch restarts the embedded
// server, whose JetStream keeps its write error otherwise), and every job
// acknowledged before, during and after the full disk is in the ledger.
func TestFullDiskReadyzAndRecovery(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "32m", "")
	cfg := baseConfig(t, "faults-fullstore")
	cfg.NATS.Embedded.StoreDir = dir
	cfg.NATS.Streams.MaxBytes = config.ByteSize(4 << 20)
	d, _, _, _ := startFakePool(t, cfg)
	_, js := bustest.Connect(t, d.app.BusURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	pub := &ackedPublisher{t: t, js: js}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pending := func(n int) func() bool {
		return func() bool {
			st, ok := pools(d.url("/v1/pools"))
			return ok && st["p1"].Pending == n
		}
	}

	for i := range 10 {
		if err := pub.publish(ctx, fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 30*time.Second, "the 10 jobs before the fill pending", pending(10))

	free := fillDisk(t, dir)
	filled := time.Now()
	var body string
	bustest.Eventually(t, 30*time.Second, "/readyz false naming the store", func() bool {
		var code int
		code, body = httpGet(d.url("/readyz"))
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"store"`) && strings.Contains(body, "refuses writes")
	})
	t.Logf("disk full, /readyz 503 after %s: %s", time.Since(filled).Round(time.Millisecond), body)
	bustest.Eventually(t, 10*time.Second, "store_writable 0 while the disk is full", func() bool {
		return scrape(t, d.url("/metrics")).get("hodei_autoscaler_store_writable") == 0
	})

	// A scheduler keeps publishing while the disk is full: its attempts
	// fail or wait for an ack, and it retries.
	during := make(chan error, 1)
	go func() {
		for i := range 10 {
			if err := pub.publish(ctx, fmt.Sprintf("during-%d", i)); err != nil {
				during <- err
				return
			}
		}
		during <- nil
	}()
	bustest.Eventually(t, 30*time.Second, "a publish refused (or not acknowledged) while the disk is full", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return pub.failed >= 2
	})
	if code, _ := httpGet(d.url("/readyz")); code == http.StatusOK {
		t.Errorf("/readyz ready while the disk is still full")
	}

	free()
	freed := time.Now()
	bustest.Eventually(t, 60*time.Second, "/readyz ready again after space returns", d.app.Ready)
	t.Logf("space back, ready again after %s", time.Since(freed).Round(time.Millisecond))
	if err := <-during; err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := pub.publish(ctx, fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	acked := pub.ackedJobs()
	if len(acked) != 30 {
		t.Fatalf("%d jobs acknowledged, want 30", len(acked))
	}
	bustest.Eventually(t, 30*time.Second, "every acknowledged job pending in the ledger", pending(30))

	// And on the stream itself: nothing acknowledged was lost.
	stored := map[string]bool{}
	for _, e := range readJobEvents(t, js, "p1") {
		stored[e.data.JobID] = true
	}
	for _, j := range acked {
		if !stored[j] {
			t.Errorf("acknowledged job %s is not in %s", j, events.StreamJobs)
		}
	}
	m := scrape(t, d.url("/metrics"))
	restarts := m.get("hodei_autoscaler_embedded_nats_restarts_total")
	if restarts < 1 {
		t.Errorf("embedded_nats_restarts_total %v: the probe stream's write error needs a restart to clear", restarts)
	}
	bustest.Eventually(t, 10*time.Second, "store_writable 1 after recovery", func() bool {
		return scrape(t, d.url("/metrics")).get("hodei_autoscaler_store_writable") == 1
	})
	if n := len(d.logs.Entries("embedded nats server restarted on the same store")); n < 1 {
		t.Errorf("no restart logged")
	}
	t.Logf("recovered: %v embedded-server restart(s), %d publish attempts for 30 jobs (%d refused or unacknowledged)", restarts, pub.tries, pub.failed)
}
