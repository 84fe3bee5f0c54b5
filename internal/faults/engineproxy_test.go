package faults

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxyMode is how the engine proxy treats connections.
type proxyMode int

const (
	// forward passes every request to the real engine.
	forward proxyMode = iota
	// refuse stops listening: connecting fails with ECONNREFUSED (the
	// socket file stays, as when an engine has died).
	refuse
	// hang accepts connections and reads requests but never answers.
	hang
)

func (m proxyMode) String() string {
	return [...]string{"forward", "refuse", "hang"}[m]
}

// proxyReq is one request the proxy received.
type proxyReq struct {
	Method, Path string
	Mode         proxyMode
	Start, End   time.Time // End: answered, or the client gave up
}

// engineProxy is a Docker Engine API endpoint on a unix socket that the
// test controls: it forwards to the real engine, refuses connections, or
// hangs; it can also delay or hang container creation only. A pool's
// docker.host points at it, so the engine "fails" for that daemon alone.
type engineProxy struct {
	t      *testing.T
	path   string
	target *url.URL
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	closed chan struct{}

	mu          sync.Mutex
	mode        proxyMode
	ln          *net.UnixListener
	conns       map[net.Conn]struct{}
	reqs        []*proxyReq
	createDelay time.Duration // forward creates at once, answer after this
	createHang  bool          // creates hang (never forwarded)
}

// newEngineProxy listens on a fresh unix socket and forwards to the engine
// DOCKER_HOST names (default /var/run/docker.sock).
func newEngineProxy(t *testing.T) *engineProxy {
	t.Helper()
	target := os.Getenv("DOCKER_HOST")
	if target == "" {
		target = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") {
		t.Fatalf("engine proxy: DOCKER_HOST %q is not unix:// or tcp://", target)
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "hodei-px-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &engineProxy{
		t: t, path: filepath.Join(dir, "docker.sock"), target: u,
		closed: make(chan struct{}), conns: map[net.Conn]struct{}{},
	}
	p.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			if u.Scheme == "unix" {
				return d.DialContext(ctx, "unix", u.Path)
			}
			return d.DialContext(ctx, "tcp", u.Host)
		},
		MaxIdleConnsPerHost: 32,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport:     p.tr,
		FlushInterval: -1, // the events endpoint streams
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler: p,
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				p.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(p.conns, c)
			}
		},
	}
	p.mu.Lock()
	p.listen()
	p.mu.Unlock()
	t.Cleanup(p.close)
	return p
}

// Host is the docker.host value that reaches the proxy.
func (p *engineProxy) Host() string { return "unix://" + p.path }

// listen starts serving on a fresh socket; p.mu is held.
func (p *engineProxy) listen() {
	_ = os.Remove(p.path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.path, Net: "unix"})
	if err != nil {
		p.t.Fatalf("engine proxy: %v", err)
	}
	ln.SetUnlinkOnClose(false)
	p.ln = ln
	go func() { _ = p.srv.Serve(ln) }()
}

// cutConns closes every client connection (event streams included); p.mu
// is held.
func (p *engineProxy) cutConns() {
	for c := range p.conns {
		_ = c.Close()
	}
}

// setMode switches the proxy. Leaving refuse listens again; entering
// refuse or hang cuts every open connection, as a dead engine would.
func (p *engineProxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	old := p.mode
	p.mode = m
	switch {
	case m == refuse:
		_ = p.ln.Close()
		p.ln = nil
		p.cutConns()
	case old == refuse:
		p.listen()
	case m == hang:
		p.cutConns()
	}
	p.t.Logf("engine proxy: %s -> %s", old, m)
}

// delayCreates makes POST /containers/create reach the engine at once but
// answer only after d (0: no delay).
func (p *engineProxy) delayCreates(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.createDelay = d
}

// hangCreates makes POST /containers/create hang without reaching the
// engine, until the client gives up.
func (p *engineProxy) hangCreates(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.createHang = on
}

func (p *engineProxy) close() {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return
	default:
	}
	close(p.closed)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// requests returns a copy of the requests received so far that match
// (nil: all).
func (p *engineProxy) requests(match func(proxyReq) bool) []proxyReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxyReq
	for _, r := range p.reqs {
		if match == nil || match(*r) {
			out = append(out, *r)
		}
	}
	return out
}

// inFlight counts requests received and not yet answered that match.
func (p *engineProxy) inFlight(match func(proxyReq) bool) int {
	n := 0
	for _, r := range p.requests(match) {
		if r.End.IsZero() {
			n++
		}
	}
	return n
}

func isCreate(r proxyReq) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/containers/create")
}

func isPing(r proxyReq) bool { return strings.HasSuffix(r.Path, "/_ping") }

func (p *engineProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	rec := &proxyReq{Method: r.Method, Path: r.URL.Path, Mode: p.mode, Start: time.Now()}
	p.reqs = append(p.reqs, rec)
	mode, delay, hangCreate := p.mode, p.createDelay, p.createHang
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		rec.End = time.Now()
		p.mu.Unlock()
	}()

	create := isCreate(*rec)
	switch {
	case mode == hang || (create && hangCreate):
		// Never answer: wait for the client to give up (or the test to
		// end). The body is read first: only then does the server notice
		// a client that goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	case mode == refuse:
		// A connection accepted just before the switch: cut it.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
			}
		}
		return
	}
	if create && delay > 0 {
		p.delayedCreate(w, r, delay)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// delayedCreate sends the create to the engine at once (it completes even
// if the client dies meanwhile) and answers the client after delay.
func (p *engineProxy) delayedCreate(w http.ResponseWriter, r *http.Request, delay time.Duration) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, "http://docker"+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	case <-p.closed:
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// stubEngine serves just enough of the Engine API on a unix socket for a
// daemon whose pools are dry_run (no container is ever created): the ping,
// an empty container listing and an event stream with no events. Tests
// about the bus use it so that they need no Docker engine.
func stubEngine(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hodei-stub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "[]")
		case strings.HasSuffix(r.URL.Path, "/events"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			select {
			case <-r.Context().Done():
			case <-done:
			}
		default:
			http.Error(w, `{"message":"not served by the stub engine"}`, http.StatusNotImplemented)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(done); _ = srv.Close() })
	return "unix://" + path
}
