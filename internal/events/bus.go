package events

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// Bus is a NATS connection with JetStream, and the embedded server when
// nats.url is "embedded".
type Bus struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Subjects Subjects

	// server is the embedded server (nil against an external one, and
	// while the store watch restarts it: storewatch.go).
	server atomic.Pointer[server.Server]
	port   int // the embedded server's port, kept across restarts
	cfg    config.NATS
	log    zerolog.Logger
	// onRetry hears every failed attempt while Connect retries (the
	// daemon's /readyz says why it is not ready yet).
	onRetry func(error)
	// onRestart hears every restart of the embedded server by the store
	// watch, with its reason.
	onRestart func(reason string)

	// The store watch of the embedded server (storewatch.go).
	storeWrite chan string // storage errors the server logged
	storeErr   atomic.Pointer[string]
	restarts   atomic.Int64
	probeData  []byte
	stopWatch  context.CancelFunc
	watchDone  chan struct{}
}

// ConnectOption tunes Connect.
type ConnectOption func(*Bus)

// OnRetry has fn called with the error of each failed attempt while
// Connect retries.
func OnRetry(fn func(error)) ConnectOption { return func(b *Bus) { b.onRetry = fn } }

// OnStoreRestart has fn called, with the reason, each time the store
// watch restarts the embedded server.
func OnStoreRestart(fn func(reason string)) ConnectOption {
	return func(b *Bus) { b.onRestart = fn }
}

// Connect starts the embedded server if configured, connects, and makes sure
// the streams exist. Against an external server it keeps retrying (with
// backoff) until ctx ends, so the daemon can start before the bus.
func Connect(ctx context.Context, cfg config.NATS, log zerolog.Logger, opts ...ConnectOption) (*Bus, error) {
	b := &Bus{cfg: cfg, log: log, Subjects: Subjects{Prefix: cfg.SubjectPrefix}}
	for _, o := range opts {
		o(b)
	}
	copts, err := b.clientOptions()
	if err != nil {
		return nil, err
	}
	url := cfg.URL
	embedded := cfg.URL == "embedded"
	if embedded {
		b.storeWrite = make(chan string, 1)
		srv, err := b.startEmbedded()
		if err != nil {
			return nil, err
		}
		b.server.Store(srv)
		url = srv.ClientURL()
		copts = append(copts, nats.InProcessServer(inProcess{b}))
	}
	nc, err := nats.Connect(url, copts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connecting to nats at %s: %w", redactURL(url), err)
	}
	b.NC = nc
	b.JS, err = jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("opening jetstream: %w", err)
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if embedded {
		b.probeData = make([]byte, storeProbeBytes)
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		b.stopWatch, b.watchDone = cancel, make(chan struct{})
		go b.watchStore(wctx)
	}
	return b, nil
}

// StartEmbedded starts an in-process NATS server with JetStream.
func StartEmbedded(cfg config.Embedded, log zerolog.Logger) (*server.Server, error) {
	return startEmbedded(cfg, log, nil)
}

// startEmbedded is StartEmbedded with onError told every error or
// warning the server logs (the store watch looks for storage errors).
func startEmbedded(cfg config.Embedded, log zerolog.Logger, onError func(string)) (*server.Server, error) {
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating nats store dir: %w", err)
	}
	if err := checkWritable(cfg.StoreDir); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "hodei-autoscaler-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		// Every write reaches the disk before it is acknowledged: a kill
		// -9 of the daemon then loses no acknowledged ack, delivery or
		// claim (docs/operations.md, what embedded mode guarantees).
		SyncAlways: !cfg.SyncInterval,
		// The store dir and the port belong to this daemon; a second
		// daemon on the same dir would fail here, which is what we want.
	})
	if err != nil {
		return nil, fmt.Errorf("configuring embedded nats: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log: log.With().Str("component", "nats-server").Logger(), onError: onError}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start listening on %s within 10s (is the port in use?)", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	}
	log.Info().Str("url", srv.ClientURL()).Str("store_dir", cfg.StoreDir).Msg("embedded nats server started")
	return srv, nil
}

// ClientURL is where workers and the scheduler reach the bus.
func (b *Bus) ClientURL() string {
	if srv := b.server.Load(); srv != nil {
		return srv.ClientURL()
	}
	if b.cfg.URL == "embedded" && b.port != 0 {
		return fmt.Sprintf("nats://%s", net.JoinHostPort(b.cfg.Embedded.Host, strconv.Itoa(b.port)))
	}
	return redactURL(b.cfg.URL)
}

// Connected reports whether the connection is up.
func (b *Bus) Connected() bool { return b.NC != nil && b.NC.IsConnected() }

// Closed returns an error when the client has given up on the connection
// for good and will not reconnect (nats.go does so after the server
// rejects the same credentials twice), saying why; nil otherwise,
// including while it reconnects.
func (b *Bus) Closed() error {
	if b.NC == nil || !b.NC.IsClosed() {
		return nil
	}
	err := b.NC.LastError()
	if err == nil {
		err = nats.ErrConnectionClosed
	}
	return fmt.Errorf("nats closed the connection and will not reconnect: %w (check nats.auth and nats.tls)", err)
}

// Close drains nothing: it closes the connection and stops the embedded
// server. Callers flush what they must publish first.
func (b *Bus) Close() {
	if b.stopWatch != nil {
		b.stopWatch()
		<-b.watchDone
	}
	if b.NC != nil {
		b.NC.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if srv := b.server.Swap(nil); srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (b *Bus) clientOptions() ([]nats.Option, error) {
	c := b.cfg
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.ReconnectWait.D()
	bo.MaxInterval = 30 * time.Second
	bo.MaxElapsedTime = 0
	opts := []nats.Option{
		nats.Name("hodei-autoscaler"),
		nats.Timeout(c.ConnectWait.D()),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(16 << 20),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			if attempts <= 1 {
				bo.Reset()
			}
			return bo.NextBackOff()
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close
			}
			b.log.Warn().Err(err).Msg("nats disconnected; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info().Str("url", redactURL(nc.ConnectedUrl())).Msg("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn().Err(err).Msg("nats error")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				b.log.Error().Err(err).Msg("nats connection closed for good; the daemon stops")
			}
		}),
	}
	a := c.Auth
	switch {
	case a.User != "":
		pw := a.Password.Value()
		if a.PasswordFile != "" {
			s, err := readSecretFile(a.PasswordFile, "nats.auth.password_file")
			if err != nil {
				return nil, err
			}
			pw = s
		}
		opts = append(opts, nats.UserInfo(a.User, pw))
	case a.Token != "" || a.TokenFile != "":
		tok := a.Token.Value()
		if a.TokenFile != "" {
			s, err := readSecretFile(a.TokenFile, "nats.auth.token_file")
			if err != nil {
				return nil, err
			}
			tok = s
		}
		opts = append(opts, nats.Token(tok))
	case a.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("reading nats.auth.nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		if _, err := os.Stat(a.CredsFile); err != nil {
			return nil, fmt.Errorf("reading nats.auth.creds_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	t := c.TLS
	if t.Enabled || t.CAFile != "" || t.CertFile != "" {
		opts = append(opts, nats.Secure(&tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}))
		if t.CAFile != "" {
			opts = append(opts, nats.RootCAs(t.CAFile))
		}
		if t.CertFile != "" {
			opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
		}
	}
	return opts, nil
}

func readSecretFile(path, key string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("reading %s: file %s is empty", key, path)
	}
	return s, nil
}

// ensureStreams creates HODEI_JOBS and HODEI_WORKERS when they are missing
// (nats.streams.create), retrying while the bus is unreachable, and the
// embedded server's write-probe stream (storewatch.go).
func (b *Bus) ensureStreams(ctx context.Context) error {
	s := b.cfg.Streams
	var want []jetstream.StreamConfig
	for _, sc := range []jetstream.StreamConfig{
		{Name: StreamJobs, Subjects: []string{b.Subjects.AllJobs()}},
		{Name: StreamWorkers, Subjects: []string{b.Subjects.AllWorkers(), b.Subjects.AllDecisions()}},
	} {
		sc.Retention = jetstream.LimitsPolicy
		sc.Storage = jetstream.FileStorage
		sc.Discard = jetstream.DiscardOld
		sc.MaxAge = s.MaxAge.D()
		sc.MaxBytes = int64(s.MaxBytes)
		sc.Replicas = s.Replicas
		sc.Duplicates = s.DuplicateWindow.D()
		sc.MaxMsgSize = int32(min(b.cfg.MaxEventBytes*16, 8<<20))
		want = append(want, sc)
	}
	if b.cfg.URL == "embedded" {
		// One message at a time, on the same store: the probe's only
		// cost is its write.
		want = append(want, jetstream.StreamConfig{
			Name: StreamStoreProbe, Subjects: []string{storeProbeSubj},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
			MaxMsgs: 1, MaxBytes: 1 << 20, Replicas: 1, Duplicates: time.Second,
		})
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 0
	for _, sc := range want {
		op := func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := b.JS.Stream(cctx, sc.Name)
			if err == nil {
				return nil
			}
			if err := b.Closed(); err != nil {
				// nats.go gives up for good on some errors (the same
				// authorization error twice): retrying cannot help.
				return backoff.Permanent(err)
			}
			if !errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("looking up stream %s: %w", sc.Name, err)
			}
			if !s.Create && sc.Name != StreamStoreProbe {
				return backoff.Permanent(fmt.Errorf("stream %s does not exist and nats.streams.create is false: create it or set create: true", sc.Name))
			}
			if _, err := b.JS.CreateStream(cctx, sc); err != nil {
				return fmt.Errorf("creating stream %s: %w%s", sc.Name, err, storeHint(err, b.cfg))
			}
			b.log.Info().Str("stream", sc.Name).Strs("subjects", sc.Subjects).Stringer("max_age", sc.MaxAge).Int64("max_bytes", sc.MaxBytes).Msg("stream created")
			return nil
		}
		notify := func(err error, wait time.Duration) {
			b.log.Warn().Err(err).Stringer("retry_in", wait).Msg("nats not ready; retrying")
			if b.onRetry != nil {
				b.onRetry(err)
			}
		}
		if err := backoff.RetryNotify(op, backoff.WithContext(bo, ctx), notify); err != nil {
			return err
		}
	}
	return nil
}

// redactURL drops any user info from a URL list before it is logged.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "[redacted]@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// natsLogger routes the embedded server's logs to zerolog.
// onError (may be nil) hears every warning and error.
type natsLogger struct {
	log     zerolog.Logger
	onError func(string)
}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Warn().Msgf(format, v...)
	l.tell(format, v)
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error().Msgf(format, v...)
	l.tell(format, v)
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error().Msgf(format, v...)
	l.tell(format, v)
}

func (l natsLogger) tell(format string, v []any) {
	if l.onError != nil {
		l.onError(fmt.Sprintf(format, v...))
	}
}

func (l natsLogger) Debugf(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
