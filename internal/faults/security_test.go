package faults

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

	"github.com/google/uuid"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// securedServer starts an in-process NATS server with JetStream and the
// auth/TLS settings of opts on a free loopback port.
func securedServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("configuring nats: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// writeSecret writes a secret file readable by its owner only.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// securedCase is one way for the daemon to authenticate to NATS.
type securedCase struct {
	url     string
	auth    config.Auth
	tls     config.TLS
	env     []string      // AUTOSCALER_* secrets
	client  []nats.Option // how the test's own client connects
	secrets []string      // strings that must never be shown
}

// runSecured starts a daemon process (its only pool dry-run on a stub
// engine) against a secured server, proves it consumes and publishes over
// that connection, then checks that no secret appears in its logs, in
// /v1/pools, /readyz or /metrics, and that SIGTERM still exits 0.
func runSecured(t *testing.T, c securedCase) {
	t.Helper()
	cfg := securedConfig(t, c.url)
	cfg.NATS.Auth = c.auth
	cfg.NATS.TLS = c.tls
	d := startDaemon(t, cfg, c.env...)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)

	_, js := connectJS(t, c.url, c.client...)
	bustest.NewJobs(t, js).Queued("sec", "job-1", nil)
	out := bustest.Collect(t, js)
	bustest.Eventually(t, 10*time.Second, "the job consumed", func() bool {
		st, _ := pools(d.url("/v1/pools"))
		return st["sec"].Pending == 1
	})
	bustest.Eventually(t, 10*time.Second, "a decision published", func() bool {
		for _, e := range out.OfType(domain.TypeDecision) {
			if e.Decide.Desired == 1 {
				return true
			}
		}
		return false
	})

	shown := map[string]string{}
	for _, path := range []string{"/v1/pools", "/readyz", "/metrics", "/healthz"} {
		code, body := httpGet(d.url(path))
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
		shown[path] = body
	}
	if code, _ := d.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	shown["the daemon's log"] = d.logs.String()
	for _, s := range c.secrets {
		for where, text := range shown {
			if strings.Contains(text, s) {
				t.Errorf("a secret (%.6s...) appears in %s", s, where)
			}
		}
	}
}

func TestNATSUserPassword(t *testing.T) {
	t.Parallel()
	const user, pw = "hodei-daemon", "pw-s3cret-from-env-7f3a"
	srv := securedServer(t, server.Options{Username: user, Password: pw})
	t.Run("password from env", func(t *testing.T) {
		runSecured(t, securedCase{
			url: srv.ClientURL(), auth: config.Auth{User: user},
			env:    []string{"AUTOSCALER_NATS_AUTH_PASSWORD=" + pw},
			client: []nats.Option{nats.UserInfo(user, pw)}, secrets: []string{pw},
		})
	})
	t.Run("password from file", func(t *testing.T) {
		runSecured(t, securedCase{
			url: srv.ClientURL(), auth: config.Auth{User: user, PasswordFile: writeSecret(t, "password", pw+"\n")},
			client: []nats.Option{nats.UserInfo(user, pw)}, secrets: []string{pw},
		})
	})
}

func TestNATSToken(t *testing.T) {
	t.Parallel()
	const token = "tok-s3cret-1b9e77c2d4"
	srv := securedServer(t, server.Options{Authorization: token})
	t.Run("token from env", func(t *testing.T) {
		runSecured(t, securedCase{
			url: srv.ClientURL(), env: []string{"AUTOSCALER_NATS_AUTH_TOKEN=" + token},
			client: []nats.Option{nats.Token(token)}, secrets: []string{token},
		})
	})
	t.Run("token from file", func(t *testing.T) {
		runSecured(t, securedCase{
			url: srv.ClientURL(), auth: config.Auth{TokenFile: writeSecret(t, "token", token)},
			client: []nats.Option{nats.Token(token)}, secrets: []string{token},
		})
	})
}

func TestNATSNKeySeedFile(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	srv := securedServer(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	seedFile := writeSecret(t, "user.nk", string(seed))
	client, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	runSecured(t, securedCase{
		url: srv.ClientURL(), auth: config.Auth{NKeySeedFile: seedFile},
		client: []nats.Option{client}, secrets: []string{string(seed)},
	})
}

// TestNATSCredsFile runs the daemon against a server in operator
// (decentralized JWT) mode with a memory resolver: operator, account with
// JetStream, and a user whose .creds file the daemon reads.
func TestNATSCredsFile(t *testing.T) {
	t.Parallel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "hodei-test-operator"
	ojwt, err := oc.Encode(okp)
	must(err)
	op, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)

	account := func(name string, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
		}
		tok, err := ac.Encode(okp)
		must(err)
		return kp, pub, tok
	}
	_, sysPub, sysJWT := account("SYS", false)
	akp, apub, ajwt := account("HODEI", true)
	resolver := &server.MemAccResolver{}
	must(resolver.Store(sysPub, sysJWT))
	must(resolver.Store(apub, ajwt))

	user := func(name string) (string, []byte) {
		ukp, err := nkeys.CreateUser()
		must(err)
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		uc := jwt.NewUserClaims(upub)
		uc.Name = name
		ujwt, err := uc.Encode(akp)
		must(err)
		creds, err := jwt.FormatUserConfig(ujwt, useed)
		must(err)
		return writeSecret(t, name+".creds", string(creds)), useed
	}
	daemonCreds, daemonSeed := user("autoscaler")
	testCreds, _ := user("test-scheduler")
	srv := securedServer(t, server.Options{TrustedOperators: []*jwt.OperatorClaims{op}, AccountResolver: resolver, SystemAccount: sysPub})
	runSecured(t, securedCase{
		url: srv.ClientURL(), auth: config.Auth{CredsFile: daemonCreds},
		client: []nats.Option{nats.UserCredentials(testCreds)}, secrets: []string{string(daemonSeed)},
	})
}

// pki is a throw-away certificate authority with a server certificate for
// 127.0.0.1 and a client certificate, written as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	clientKeyPEM                                         string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, typ string, der []byte) (string, string) {
		p := filepath.Join(dir, name)
		data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p, string(data)
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		return n
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "hodei test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, usage x509.ExtKeyUsage) (string, string, string) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := write(name+".crt", "CERTIFICATE", der)
		keyFile, keyPEM := write(name+".key", "PRIVATE KEY", kder)
		return cert, keyFile, keyPEM
	}
	var p pki
	p.caFile, _ = write("ca.crt", "CERTIFICATE", caDER)
	p.serverCert, p.serverKey, _ = leaf("server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey, p.clientKeyPEM = leaf("client", x509.ExtKeyUsageClientAuth)
	return p
}

// keyBody is the base64 body of a PEM key, the part that must not leak.
func keyBody(pemText string) string {
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func tlsServerOptions(t *testing.T, p pki, verify bool) server.Options {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.caFile, Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	return server.Options{TLSConfig: tc, TLS: true, TLSVerify: verify, TLSTimeout: 5}
}

func TestNATSTLSCustomCA(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := securedServer(t, tlsServerOptions(t, p, false))
	url := fmt.Sprintf("tls://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
	runSecured(t, securedCase{
		url: url, tls: config.TLS{Enabled: true, CAFile: p.caFile},
		client: []nats.Option{nats.RootCAs(p.caFile)},
	})
}

func TestNATSMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := securedServer(t, tlsServerOptions(t, p, true))
	url := fmt.Sprintf("tls://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
	runSecured(t, securedCase{
		url: url, tls: config.TLS{Enabled: true, CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey},
		client:  []nats.Option{nats.RootCAs(p.caFile), nats.ClientCert(p.clientCert, p.clientKey)},
		secrets: []string{keyBody(p.clientKeyPEM)},
	})
	// Without a client certificate the server refuses the daemon.
	t.Run("no client certificate", func(t *testing.T) {
		nc, err := nats.Connect(url, nats.RootCAs(p.caFile), nats.Timeout(3*time.Second))
		if err == nil {
			nc.Close()
			t.Fatal("a client without a certificate connected to the mutual-TLS server")
		}
	})
}

// A wrong password fails clearly: the daemon names the server's refusal
// and exits 1 at once (retrying the same credentials cannot help, and a
// supervisor restarts it with its secrets read again), never becomes
// ready, and never shows the password.
func TestNATSWrongPassword(t *testing.T) {
	t.Parallel()
	const user, pw, wrong = "hodei-daemon", "right-pw-93c1d0", "wrong-pw-5e8f2a"
	srv := securedServer(t, server.Options{Username: user, Password: pw})
	cfg := securedConfig(t, srv.ClientURL())
	cfg.NATS.Auth = config.Auth{User: user}
	d := launchDaemon(t, writeConfig(t, cfg), "AUTOSCALER_NATS_AUTH_PASSWORD="+wrong)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon still runs 30s after the server refused its password")
	}
	took := time.Since(d.started)
	var msg string
	for _, e := range d.logs.Entries("cannot start") {
		msg = e.str("error")
	}
	t.Logf("wrong password: exit %d after %v: %s", d.state.ExitCode(), took.Round(time.Millisecond), msg)
	if d.state.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", d.state.ExitCode())
	}
	if !strings.Contains(strings.ToLower(msg), "authorization violation") {
		t.Errorf("the error does not say the server refused the credentials: %q", msg)
	}
	if len(d.logs.Entries("ready to scale")) != 0 {
		t.Errorf("the daemon became ready with a wrong password")
	}
	for _, s := range []string{pw, wrong} {
		if strings.Contains(d.logs.String(), s) {
			t.Errorf("a password appears in the log")
		}
	}
}

// Credentials revoked while the daemon runs (the server's password
// changes): the server disconnects it, nats.go gives up after the same
// refusal twice, and the daemon exits 1 naming the cause instead of
// staying up, unready, with a connection that will never come back.
func TestNATSCredentialsRevoked(t *testing.T) {
	t.Parallel()
	const user, pw = "hodei-daemon", "before-rotation-41aa"
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, Username: user, Password: pw}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	cfg := securedConfig(t, srv.ClientURL())
	cfg.NATS.Auth = config.Auth{User: user}
	d := startDaemon(t, cfg, "AUTOSCALER_NATS_AUTH_PASSWORD="+pw)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)

	rotated := *opts
	rotated.Password = "after-rotation-77be"
	revoked := time.Now()
	if err := srv.ReloadOptions(&rotated); err != nil {
		t.Fatalf("reloading the server: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the daemon still runs 60s after its credentials were revoked")
	}
	var msg string
	for _, e := range d.logs.Entries("stopped") {
		msg = e.str("error")
	}
	t.Logf("credentials revoked: exit %d after %v: %s", d.state.ExitCode(), time.Since(revoked).Round(time.Millisecond), msg)
	if d.state.ExitCode() != 1 || !strings.Contains(strings.ToLower(msg), "authorization violation") {
		t.Errorf("exit %d with %q, want 1 and the server's refusal", d.state.ExitCode(), msg)
	}
	if strings.Contains(d.logs.String(), pw) {
		t.Errorf("the password appears in the log")
	}
}

// securedConfig is a daemon on an external server url whose only pool is
// dry-run on a stub engine.
func securedConfig(t *testing.T, url string) config.Config {
	t.Helper()
	cfg := baseConfig(t, "faults-sec")
	cfg.NATS.URL = url
	p := dockerPool("sec", "unused:latest")
	p.Docker.Host = stubEngine(t)
	dry := true
	p.DryRun = &dry
	cfg.Pools = []config.Pool{p}
	return cfg
}

// securityConf returns the nats-server configuration block of SECURITY.md
// (the fenced block after the TestNATSPermissions marker), so the document
// and this test cannot drift apart.
func securityConf(t *testing.T) string {
	t.Helper()
	root, err := dockertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- tested: TestNATSPermissions -->")
	if !ok {
		t.Fatal("SECURITY.md has no <!-- tested: TestNATSPermissions --> block")
	}
	_, rest, ok = strings.Cut(rest, "```conf\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("SECURITY.md: no ```conf block after the TestNATSPermissions marker")
	}
	return block
}

// The NATS permissions SECURITY.md recommends, on a real nats-server
// process: the daemon (as autoscaler), a scheduler and the example worker
// (as worker-linux) all do their work with them, and each is refused what
// its role must not do.
func TestNATSPermissions(t *testing.T) {
	t.Parallel()
	pw := map[string]string{"autoscaler": "perm-a-" + uuid.NewString(), "scheduler": "perm-s-" + uuid.NewString(), "worker-linux": "perm-w-" + uuid.NewString()}
	conf := writeSecret(t, "nats-server.conf", securityConf(t))
	n := startNATSEnv(t, []string{
		"HODEI_AUTOSCALER_PASSWORD=" + pw["autoscaler"],
		"HODEI_SCHEDULER_PASSWORD=" + pw["scheduler"],
		"HODEI_WORKER_LINUX_PASSWORD=" + pw["worker-linux"],
	}, "-c", conf)

	cfg := securedConfig(t, n.URL())
	cfg.Pools[0].Name = "linux"
	cfg.NATS.Auth = config.Auth{User: "autoscaler"}
	d := startDaemon(t, cfg, "AUTOSCALER_NATS_AUTH_PASSWORD="+pw["autoscaler"])
	bustest.Eventually(t, 30*time.Second, "daemon ready with the autoscaler permissions", d.ready)

	// The example worker, as a process, with the worker-linux role.
	bin := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(bin, dockertest.BuildGoBinary(t, "./examples/worker"), 0o755); err != nil {
		t.Fatal(err)
	}
	wlogs := newLogBuffer(t, "worker")
	w := exec.Command(bin)
	w.Env = append(os.Environ(), "HODEI_WORKER_POOL=linux", "HODEI_WORKER_ID="+uuid.NewString(),
		fmt.Sprintf("HODEI_NATS_URL=nats://worker-linux:%s@127.0.0.1:%d", pw["worker-linux"], n.port))
	w.Stdout, w.Stderr = wlogs, wlogs
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Kill(); _ = w.Wait() })

	// The scheduler queues a job; the worker runs it; the daemon sees it
	// all and publishes its decisions.
	_, sjs := connectJS(t, n.URL(), nats.UserInfo("scheduler", pw["scheduler"]))
	bustest.NewJobs(t, sjs).Queued("linux", "perm-1", map[string]string{"duration": "100ms"})
	bustest.Eventually(t, 30*time.Second, "the job queued, run and finished", func() bool {
		m := scrape(t, d.url("/metrics"))
		return m.get("hodei_autoscaler_events_total", "type", domain.TypeJobQueued, "result", "applied") == 1 &&
			m.get("hodei_autoscaler_events_total", "type", domain.TypeJobStarted) == 1 &&
			m.get("hodei_autoscaler_events_total", "type", domain.TypeJobFinished, "result", "applied") == 1
	})
	// The worker logs this only once its ack (a $JS.ACK subject) is confirmed.
	bustest.Eventually(t, 10*time.Second, "the worker's ack accepted", func() bool {
		return strings.Contains(wlogs.String(), "job perm-1 finished: succeeded")
	})
	m := scrape(t, d.url("/metrics"))
	if m.get("hodei_autoscaler_published_events_total", "result", "published") == 0 ||
		m.get("hodei_autoscaler_published_events_total", "result", "error")+m.get("hodei_autoscaler_published_events_total", "result", "dropped") != 0 {
		t.Errorf("the daemon could not publish with the autoscaler permissions")
	}

	// What each role must not do: the server must say "Permissions
	// Violation" for the subject each operation uses. Each connection
	// first does something its role allows, so a refusal is about the
	// permission, not the login.
	type refusal struct {
		subject string // the subject the server must refuse
		op      func(ctx context.Context, js jetstream.JetStream) error
	}
	pub := func(subject string) refusal {
		return refusal{subject, func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, subject, event("hodei.job.finished", `{"job_id":"perm-probe","outcome":"cancelled"}`))
			return err
		}}
	}
	streamInfo := refusal{"$JS.API.STREAM.INFO.HODEI_JOBS", func(ctx context.Context, js jetstream.JetStream) error {
		_, err := js.Stream(ctx, "HODEI_JOBS")
		return err
	}}
	try := func(user string, allowed refusal, refused map[string]refusal) {
		t.Helper()
		var mu sync.Mutex
		var violations []string
		_, js := bustest.Connect(t, n.URL(), nats.UserInfo(user, pw[user]), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := allowed.op(ctx, js); err != nil {
			t.Errorf("%s: an allowed operation (%s) failed: %v", user, allowed.subject, err)
		}
		var wg sync.WaitGroup
		for what, r := range refused {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if err := r.op(ctx, js); err == nil {
					t.Errorf("%s was allowed to %s", user, what)
				}
			}()
		}
		wg.Wait()
		for what, r := range refused {
			want := fmt.Sprintf("Permissions Violation for Publish to %q", r.subject)
			bustest.Eventually(t, 5*time.Second, user+" refused to "+what, func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, v := range violations {
					if strings.Contains(v, want) {
						return true
					}
				}
				return false
			})
		}
	}
	try("scheduler", pub("hodei.jobs.linux.finished"), map[string]refusal{
		"publish a lifecycle event": pub("hodei.workers.linux.ready"),
		"publish a decision":        pub("hodei.autoscaler.linux.decision"),
		"read the job stream":       streamInfo,
	})
	try("worker-linux", pub("hodei.jobs.linux.finished"), map[string]refusal{
		"queue a job":                  pub("hodei.jobs.linux.queued"),
		"report a job of another pool": pub("hodei.jobs.other.started"),
		"publish a lifecycle event":    pub("hodei.workers.linux.ready"),
		"widen its consumer's filter": {"$JS.API.CONSUMER.CREATE.HODEI_JOBS.hodei-workers-linux.hodei.jobs.>", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateOrUpdateConsumer(ctx, "HODEI_JOBS", jetstream.ConsumerConfig{Durable: "hodei-workers-linux", FilterSubject: "hodei.jobs.>"})
			return err
		}},
	})
	try("autoscaler", streamInfo, map[string]refusal{
		"queue a job":  pub("hodei.jobs.linux.queued"),
		"finish a job": pub("hodei.jobs.linux.finished"),
		"delete a stream": {"$JS.API.STREAM.DELETE.HODEI_JOBS", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, "HODEI_JOBS")
		}},
	})
}

// The HTTP listener and the embedded NATS server bind to loopback unless
// the configuration says otherwise, in the defaults and in the example
// configuration users start from.
func TestListenersOnLoopbackByDefault(t *testing.T) {
	root, err := dockertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := config.Load(filepath.Join(root, "config.example.yaml"), nil)
	if err != nil {
		t.Fatalf("loading config.example.yaml: %v", err)
	}
	for name, cfg := range map[string]config.Config{"defaults": config.Defaults(), "config.example.yaml": example} {
		host, _, err := net.SplitHostPort(cfg.HTTP.Listen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("%s: http.listen %q is not a loopback address", name, cfg.HTTP.Listen)
		}
		if ip := net.ParseIP(cfg.NATS.Embedded.Host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s: nats.embedded.host %q is not a loopback address", name, cfg.NATS.Embedded.Host)
		}
	}
}
