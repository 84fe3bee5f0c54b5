package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and reads the answer within d.
func roundTrip(c net.Conn, line string, d time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return readLine(c, d)
}

func readLine(c net.Conn, d time.Duration) (string, error) {
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func mustEcho(t *testing.T, c net.Conn, line string) {
	t.Helper()
	got, err := roundTrip(c, line, 2*time.Second)
	if err != nil || got != line {
		t.Fatalf("round trip %q: got %q, %v", line, got, err)
	}
}

// isTimeout says whether err is a deadline expiry (the path is silent),
// as opposed to a reset or an end of stream (the path is broken).
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func TestPassForwardsBothWays(t *testing.T) {
	p := Start(t, echoServer(t))
	c := dial(t, p.Addr())
	for _, line := range []string{"one", "two", strings.Repeat("x", 100_000)} {
		mustEcho(t, c, line)
	}
	if acc, reset := p.Counts(); acc != 1 || reset != 0 {
		t.Errorf("counts = %d accepted, %d reset; want 1, 0", acc, reset)
	}
}

func TestRefuseResetsExistingAndNewConnections(t *testing.T) {
	p := Start(t, echoServer(t))
	old := dial(t, p.Addr())
	mustEcho(t, old, "before")

	p.Cut(Refuse)
	if _, err := readLine(old, 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("existing connection after Refuse: read err = %v, want a reset", err)
	}
	// The kernel completes the handshake and the proxy resets the
	// connection at once: the dial itself or the first round trip fails.
	if fresh, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); err == nil {
		defer fresh.Close()
		if _, err := roundTrip(fresh, "during", 2*time.Second); err == nil || isTimeout(err) {
			t.Fatalf("new connection during Refuse: err = %v, want a reset", err)
		}
	}

	p.Restore()
	mustEcho(t, dial(t, p.Addr()), "after")
	if _, reset := p.Counts(); reset != 2 {
		t.Errorf("reset %d connections, want 2", reset)
	}
}

func TestBlackholeHoldsDataUntilRestore(t *testing.T) {
	p := Start(t, echoServer(t))
	c := dial(t, p.Addr())
	mustEcho(t, c, "before")

	p.Cut(Blackhole)
	if _, err := roundTrip(c, "held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("during Blackhole: err = %v, want a read timeout (silence, not a reset)", err)
	}
	late := dial(t, p.Addr()) // a new connection is held silently too
	if _, err := roundTrip(late, "late", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during Blackhole: err = %v, want a read timeout", err)
	}

	p.Restore()
	// What was sent during the cut arrives, as after a healed partition.
	for _, tc := range []struct {
		conn net.Conn
		want string
	}{{c, "held"}, {late, "late"}} {
		got, err := readLine(tc.conn, 2*time.Second)
		if err != nil || got != tc.want {
			t.Fatalf("after Restore: got %q, %v; want %q", got, err, tc.want)
		}
	}
	mustEcho(t, c, "after")
}

func TestSeverResetsOnlyExistingConnections(t *testing.T) {
	p := Start(t, echoServer(t))
	old := dial(t, p.Addr())
	mustEcho(t, old, "before")
	p.Sever()
	if _, err := readLine(old, 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after Sever: read err = %v, want a reset", err)
	}
	mustEcho(t, dial(t, p.Addr()), "new")
	if p.Mode() != Pass {
		t.Errorf("mode after Sever = %v, want pass", p.Mode())
	}
}

func TestCloseEndsBlackholedConnections(t *testing.T) {
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	mustEcho(t, c, "before")
	p.Cut(Blackhole)
	if _, err := io.WriteString(c, "stuck\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a connection was blackholed")
	}
	if _, err := readLine(c, 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after Close: read err = %v, want the connection closed", err)
	}
}
