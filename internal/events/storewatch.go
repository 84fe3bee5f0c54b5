package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// The store watch of the embedded server (docs/operations.md, "A full
// disk"). Every storeProbeEvery it writes one message to StreamStoreProbe,
// a one-message stream on the same store as the job stream, and waits for
// JetStream's acknowledgement. When that fails, or when the server has
// logged a storage write error, it writes a file of storeCheckBytes in the
// store directory: if the file system refuses it the store is full (or
// unwritable) and the watch waits; if the file system takes it while
// JetStream does not, JetStream has latched its write error (nats-server
// keeps a stream's first write error until the server restarts) and the
// watch restarts the embedded server on the same store directory.
const (
	// StreamStoreProbe is the embedded server's write-probe stream.
	StreamStoreProbe = "HODEI_STORE_PROBE"
	storeProbeSubj   = "_HODEI_STORE.probe"
	storeProbeEvery  = time.Second
	storeProbeWait   = 2 * time.Second
	// storeProbeBytes is larger than a page, so a probe needs new room on
	// a full file system even when the last page of a block has some.
	storeProbeBytes = 8 << 10
	storeCheckBytes = 64 << 10
	// storeFailsBeforeRestart is how many probes in a row must fail, on a
	// file system that takes writes, before the server is restarted
	// without a logged write error.
	storeFailsBeforeRestart = 3
)

// storeSignals are the embedded server's log lines that mean JetStream
// failed to write its store (nats-server v2.15: "critical write error",
// "JetStream out of space, will be DISABLED", "Filesystem permission
// denied while writing msg, disabling JetStream").
var storeSignals = []string{"no space left", "write error", "will be disabled", "disabling jetstream", "failed to store a msg"}

func isStoreSignal(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range storeSignals {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// storeSignal is called from the server's logger: the watch looks now.
func (b *Bus) storeSignal(msg string) {
	if !isStoreSignal(msg) {
		return
	}
	select {
	case b.storeWrite <- msg:
	default:
	}
}

// StoreErr says why the embedded server's store does not take writes, or
// nil (also against an external server, which watches its own store).
func (b *Bus) StoreErr() error {
	if p := b.storeErr.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

// StoreRestarts is how many times the watch restarted the embedded server.
func (b *Bus) StoreRestarts() int64 { return b.restarts.Load() }

func (b *Bus) setStoreErr(err error) {
	if err == nil {
		if b.storeErr.Swap(nil) != nil {
			b.log.Info().Msg("embedded nats store takes writes again")
		}
		return
	}
	msg := err.Error()
	if old := b.storeErr.Swap(&msg); old == nil || *old != msg {
		b.log.Error().Str("store_dir", b.cfg.Embedded.StoreDir).Msg(msg)
	}
}

// watchStore runs the store watch until ctx ends. It is the only
// goroutine that replaces the embedded server after Connect.
func (b *Bus) watchStore(ctx context.Context) {
	defer close(b.watchDone)
	tick := time.NewTicker(storeProbeEvery)
	defer tick.Stop()
	var signal string // the last storage error the server logged
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case signal = <-b.storeWrite:
		case <-tick.C:
		}
		if b.server.Load() == nil {
			b.restart(ctx, "the last restart failed")
			continue
		}
		perr := b.probeStore(ctx)
		if ctx.Err() != nil {
			return
		}
		if perr == nil && signal == "" {
			fails = 0
			b.setStoreErr(nil)
			continue
		}
		if perr != nil {
			fails++
		}
		dir := b.cfg.Embedded.StoreDir
		if ferr := checkRoom(dir, storeCheckBytes); ferr != nil {
			b.setStoreErr(fmt.Errorf("the job stream's store refuses writes: nats.embedded.store_dir %s: %w (free space on it; the daemon recovers by itself)", dir, ferr))
			continue
		}
		if signal == "" && fails < storeFailsBeforeRestart {
			b.setStoreErr(fmt.Errorf("the job stream's store refuses writes: %w", perr))
			continue
		}
		why := signal
		if why == "" {
			why = perr.Error()
		}
		b.setStoreErr(fmt.Errorf("jetstream reported a storage error (%s) while %s takes writes: restarting the embedded nats server", why, dir))
		if b.restart(ctx, why) {
			signal, fails = "", 0
		}
	}
}

// probeStore writes one message to the probe stream and waits for its
// acknowledgement.
func (b *Bus) probeStore(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, storeProbeWait)
	defer cancel()
	if _, err := b.JS.Publish(cctx, storeProbeSubj, b.probeData); err != nil {
		return fmt.Errorf("write probe to stream %s: %w", StreamStoreProbe, err)
	}
	return nil
}

// restart shuts the embedded server down and starts it again on the same
// store directory and port. What the server acknowledged is on disk
// (sync_always) and is recovered; the client reconnects in process.
func (b *Bus) restart(ctx context.Context, why string) bool {
	start := time.Now()
	if old := b.server.Swap(nil); old != nil {
		b.log.Warn().Str("reason", why).Msg("restarting the embedded nats server")
		old.Shutdown()
		old.WaitForShutdown()
	}
	select { // what the old server logged on its way down
	case <-b.storeWrite:
	default:
	}
	srv, err := b.startEmbedded()
	if err != nil {
		b.setStoreErr(fmt.Errorf("restarting the embedded nats server after a storage error (%s): %w", why, err))
		return false
	}
	b.server.Store(srv)
	n := b.restarts.Add(1)
	if b.onRestart != nil {
		b.onRestart(why)
	}
	// The streams are recovered from the store; make sure they are there
	// (a store that lost one gets it back empty rather than a daemon
	// that cannot publish).
	if err := b.awaitReconnect(ctx); err != nil {
		b.log.Warn().Err(err).Msg("embedded nats restarted; the client has not reconnected yet")
	}
	b.log.Warn().Int64("restarts", n).Str("reason", why).Stringer("took", time.Since(start)).Msg("embedded nats server restarted on the same store")
	return true
}

// awaitReconnect waits (bounded) for the client to be back on the new
// server, so that the next probe does not fail on a reconnect.
func (b *Bus) awaitReconnect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !b.NC.IsConnected() {
		select {
		case <-cctx.Done():
			return cctx.Err()
		case <-t.C:
		}
	}
	if _, err := b.JS.Stream(cctx, StreamJobs); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("looking up %s after the restart: %w", StreamJobs, err)
	}
	return nil
}

// startEmbedded starts the embedded server on the port the first one
// got (a random port stays the same across restarts).
func (b *Bus) startEmbedded() (*server.Server, error) {
	cfg := b.cfg.Embedded
	if b.port != 0 {
		cfg.Port = b.port
	}
	srv, err := startEmbedded(cfg, b.log, b.storeSignal)
	if err != nil {
		return nil, err
	}
	if b.port == 0 {
		if tcp, ok := srv.Addr().(*net.TCPAddr); ok {
			b.port = tcp.Port
		}
	}
	return srv, nil
}

// inProcess hands the client a connection to whichever embedded server
// runs now, so the client follows a restart.
type inProcess struct{ b *Bus }

func (p inProcess) InProcessConn() (net.Conn, error) {
	srv := p.b.server.Load()
	if srv == nil {
		return nil, errors.New("the embedded nats server is restarting")
	}
	return srv.InProcessConn()
}

// checkRoom writes n bytes to a file in dir, syncs and removes it: an
// error means the file system has no room (or refuses writes).
func checkRoom(dir string, n int) error {
	f, err := os.CreateTemp(dir, ".hodei-room-check-*")
	if err != nil {
		return fmt.Errorf("creating a file: %w", err)
	}
	name := filepath.Clean(f.Name())
	_, werr := f.Write(make([]byte, n))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("writing %s bytes: %w", strconv.Itoa(n), err)
	}
	return nil
}
