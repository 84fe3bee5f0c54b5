// Package engineproxy is a Docker Engine API endpoint on a unix socket
// that a test controls: it forwards to the real engine, refuses
// connections as a dead engine does, or hangs; it can also delay or hang
// container creation alone. A pool's docker.host points at it, so the
// engine "fails" for that daemon only, while the real engine serves every
// other client.
package engineproxy

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

// Mode is how the engine proxy treats connections.
type Mode int

const (
	// Forward passes every request to the real engine.
	Forward Mode = iota
	// Refuse stops listening: connecting fails with ECONNREFUSED (the
	// socket file stays, as when an engine has died).
	Refuse
	// Hang accepts connections and reads requests but never answers.
	Hang
)

func (m Mode) String() string {
	return [...]string{"forward", "refuse", "hang"}[m]
}

// Req is one request the proxy received.
type Req struct {
	Method, Path string
	Mode         Mode
	Start, End   time.Time // End: answered, or the client gave up
}

// Proxy is a Docker Engine API endpoint on a unix socket that the
// test controls: it forwards to the real engine, refuses connections, or
// hangs; it can also delay or hang container creation only. A pool's
// docker.host points at it, so the engine "fails" for that daemon alone.
type Proxy struct {
	t      testing.TB
	path   string
	target *url.URL
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	closed chan struct{}

	mu          sync.Mutex
	mode        Mode
	ln          *net.UnixListener
	conns       map[net.Conn]struct{}
	reqs        []*Req
	createDelay time.Duration // forward creates at once, answer after this
	createHang  bool          // creates hang (never forwarded)
}

// New listens on a fresh unix socket and forwards to the engine
// DOCKER_HOST names (default /var/run/docker.sock).
func New(t testing.TB) *Proxy {
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
	p := &Proxy{
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
	t.Cleanup(p.Close)
	return p
}

// Host is the docker.host value that reaches the proxy.
func (p *Proxy) Host() string { return "unix://" + p.path }

// listen starts serving on a fresh socket; p.mu is held.
func (p *Proxy) listen() {
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
func (p *Proxy) cutConns() {
	for c := range p.conns {
		_ = c.Close()
	}
}

// SetMode switches the proxy. Leaving Refuse listens again; entering
// Refuse or Hang cuts every open connection, as a dead engine would.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	old := p.mode
	p.mode = m
	switch {
	case m == Refuse:
		_ = p.ln.Close()
		p.ln = nil
		p.cutConns()
	case old == Refuse:
		p.listen()
	case m == Hang:
		p.cutConns()
	}
	p.t.Logf("engine proxy: %s -> %s", old, m)
}

// DelayCreates makes POST /containers/create reach the engine at once but
// answer only after d (0: no delay).
func (p *Proxy) DelayCreates(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.createDelay = d
}

// HangCreates makes POST /containers/create hang without reaching the
// engine, until the client gives up.
func (p *Proxy) HangCreates(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.createHang = on
}

func (p *Proxy) Close() {
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
func (p *Proxy) Requests(match func(Req) bool) []Req {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Req
	for _, r := range p.reqs {
		if match == nil || match(*r) {
			out = append(out, *r)
		}
	}
	return out
}

// inFlight counts requests received and not yet answered that match.
func (p *Proxy) InFlight(match func(Req) bool) int {
	n := 0
	for _, r := range p.Requests(match) {
		if r.End.IsZero() {
			n++
		}
	}
	return n
}

func IsCreate(r Req) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/containers/create")
}

func IsPing(r Req) bool { return strings.HasSuffix(r.Path, "/_ping") }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	rec := &Req{Method: r.Method, Path: r.URL.Path, Mode: p.mode, Start: time.Now()}
	p.reqs = append(p.reqs, rec)
	mode, delay, hangCreate := p.mode, p.createDelay, p.createHang
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		rec.End = time.Now()
		p.mu.Unlock()
	}()

	create := IsCreate(*rec)
	switch {
	case mode == Hang || (create && hangCreate):
		// Never answer: wait for the client to give up (or the test to
		// end). The body is read first: only then does the server notice
		// a client that goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	case mode == Refuse:
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
func (p *Proxy) delayedCreate(w http.ResponseWriter, r *http.Request, delay time.Duration) {
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
