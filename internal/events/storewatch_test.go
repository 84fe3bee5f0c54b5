package events

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

func TestIsStoreSignal(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"Filestore [HODEI_JOBS] Critical write error: write .../1.blk: no space left on device", true},
		{"JetStream stream '$G > HODEI_JOBS' critical write error: no space left on device", true},
		{"JetStream out of space, will be DISABLED", true},
		{"Filesystem permission denied while writing msg, disabling JetStream: permission denied", true},
		{"JetStream failed to store a msg on stream '$G > HODEI_JOBS': i/o error", true},
		{"Readloop processing time: 2.1s", false},
		{"Slow consumer detected", false},
	} {
		t.Run(c.msg, func(t *testing.T) {
			if got := isStoreSignal(c.msg); got != c.want {
				t.Errorf("isStoreSignal = %v, want %v", got, c.want)
			}
		})
	}
}

// A restart of the embedded server (what the store watch does after a
// storage error) keeps what was stored and the port; the daemon's
// in-process connection and a TCP client both follow it.
func TestEmbeddedRestartKeepsStoreAndPort(t *testing.T) {
	cfg := config.Defaults().NATS
	cfg.URL = "embedded"
	cfg.Embedded = config.Embedded{Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(t.TempDir(), "nats")}
	cfg.ReconnectWait = config.Duration(50 * time.Millisecond)
	cfg.Streams.MaxBytes = config.ByteSize(8 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var restarts []string
	b, err := Connect(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)), OnStoreRestart(func(why string) { restarts = append(restarts, why) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	url := b.ClientURL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	client, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(js jetstream.JetStream, n int) {
		t.Helper()
		for {
			_, err := js.Publish(ctx, "hodei.jobs.p.queued", []byte(fmt.Sprint(n)), jetstream.WithMsgID(fmt.Sprint(n)))
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publishing %d: %v", n, err)
			}
		}
	}
	publish(b.JS, 1)
	publish(client, 2)

	// The watch goroutine owns restarts; stop it and restart by hand.
	b.stopWatch()
	<-b.watchDone
	b.stopWatch = nil
	if !b.restart(ctx, "test") {
		t.Fatalf("restart failed: %v", b.StoreErr())
	}
	if b.StoreRestarts() != 1 || len(restarts) != 1 || restarts[0] != "test" {
		t.Fatalf("restarts %d, told %q: want 1, [test]", b.StoreRestarts(), restarts)
	}
	if got := b.ClientURL(); got != url {
		t.Fatalf("client URL %s after the restart, want %s", got, url)
	}
	publish(b.JS, 3)
	publish(client, 4)
	s, err := b.JS.Stream(ctx, StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 4 {
		t.Fatalf("%s holds %d messages after the restart, want 4", StreamJobs, n)
	}
	if err := b.probeStore(ctx); err != nil {
		t.Fatalf("probe after the restart: %v", err)
	}
}
