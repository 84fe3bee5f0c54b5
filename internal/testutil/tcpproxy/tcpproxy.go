// Package tcpproxy is a loopback TCP proxy that tests put on a network
// path they want to break for real: a client connects to the proxy instead
// of the server, and the test cuts and restores the path while both ends
// keep running.
//
//	p := tcpproxy.Start(t, node.Addr())
//	nc, _ := nats.Connect("nats://" + p.Addr())
//	p.Cut(tcpproxy.Blackhole) // the client's connection goes silent
//	p.Restore()
//
// One proxy is one path; a client of a three-node cluster needs three.
package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards both ways.
	Pass Mode = iota
	// Refuse resets every existing connection and every new one as it
	// arrives, as a host that is down answers with RST.
	Refuse
	// Blackhole keeps connections open but lets no byte through either
	// way, and holds new connections silently, as a partition that drops
	// packets does: each side notices only through its own timeouts. On
	// Restore, data held back is delivered, as TCP's retransmission would.
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Refuse:
		return "refuse"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Proxy forwards connections from its loopback address to a target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	mode    Mode
	open    chan struct{} // closed while the mode lets bytes through
	links   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
	counted struct{ accepted, reset int }
}

// link is one client connection and its upstream connection.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

// Start listens on a free loopback port and forwards to target; the proxy
// is closed at test end.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatalf("tcpproxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// New listens on a free loopback port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	p := &Proxy{target: target, ln: ln, open: make(chan struct{}), links: map[*link]struct{}{}}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Mode is the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Cut breaks the path in the given way (Refuse or Blackhole).
func (p *Proxy) Cut(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == Refuse {
		for l := range p.links {
			p.counted.reset++
			l.reset()
		}
	}
	p.setMode(m)
}

// Sever resets every existing connection once and keeps passing new ones,
// as a brief link failure does.
func (p *Proxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		p.counted.reset++
		l.reset()
	}
}

// Restore lets traffic through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setMode(Pass)
}

// Counts are the connections accepted and reset so far.
func (p *Proxy) Counts() (accepted, reset int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counted.accepted, p.counted.reset
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for l := range p.links {
		l.close()
	}
	p.setMode(Pass) // release pumps waiting on a blackhole
	p.mu.Unlock()
	p.wg.Wait()
}

// setMode switches modes; p.mu is held.
func (p *Proxy) setMode(m Mode) {
	wasOpen := p.mode != Blackhole
	p.mode = m
	switch nowOpen := m != Blackhole; {
	case wasOpen && !nowOpen:
		p.open = make(chan struct{})
	case !wasOpen && nowOpen:
		close(p.open)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		p.counted.accepted++
		if p.closed || p.mode == Refuse {
			p.counted.reset++
			p.mu.Unlock()
			resetConn(c)
			continue
		}
		l := &link{client: c, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// serve dials the target once the path is open and pumps both ways.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.forget(l)
	if !p.wait(l) {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		l.reset()
		return
	}
	p.mu.Lock()
	l.server = server
	select {
	case <-l.done: // reset while dialing
		server.Close()
		p.mu.Unlock()
		return
	default:
	}
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, server, l.client) }()
	go func() { defer pumps.Done(); p.pump(l, l.client, server) }()
	pumps.Wait()
}

// pump copies src to dst, holding each chunk while the path is
// blackholed (so src is not read further: the sender's buffers fill as
// they would behind a partition).
func (p *Proxy) pump(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Half-close, so the other side sees the end too; the
				// other direction may still carry data.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
			l.close()
			return
		}
	}
}

// wait blocks while the path is blackholed; false means the link ended.
func (p *Proxy) wait(l *link) bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-l.done:
		return false
	case <-open:
		select {
		case <-l.done:
			return false
		default:
			return true
		}
	}
}

func (p *Proxy) forget(l *link) {
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// reset ends both connections with RST.
func (l *link) reset() {
	l.once.Do(func() {
		resetConn(l.client)
		if l.server != nil {
			resetConn(l.server)
		}
		close(l.done)
	})
}

// close ends both connections normally.
func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		if l.server != nil {
			l.server.Close()
		}
		close(l.done)
	})
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST
	}
	c.Close()
}
