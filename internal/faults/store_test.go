package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
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
