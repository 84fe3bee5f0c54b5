package lease

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// The test binary doubles as a lease holder process, so that the cluster
// tests can kill -9 a real process that holds leases.

const helperEnv = "HODEI_LEASE_HELPER"

// helperSpec is what a helper process is told (as JSON in helperEnv).
type helperSpec struct {
	URL     string `json:"url"`
	Replica string `json:"replica"`
	Pools   int    `json:"pools"`
	TTL     string `json:"ttl"`
	Renew   string `json:"renew"`
	Op      string `json:"op"`
}

// helperEvent is one line a helper prints.
type helperEvent struct {
	Event  string          `json:"event"` // open, change, error
	Pool   domain.PoolName `json:"pool,omitempty"`
	Held   bool            `json:"held,omitempty"`
	Reason string          `json:"reason,omitempty"`
	At     time.Time       `json:"at"`
	Error  string          `json:"error,omitempty"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperMain(spec))
	}
	os.Exit(m.Run())
}

func helperMain(specJSON string) int {
	var spec helperSpec
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	emit := func(e helperEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = out.Encode(e)
	}
	fail := func(err error) int {
		emit(helperEvent{Event: "error", Error: err.Error(), At: time.Now()})
		return 1
	}
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fail(err)
	}
	var tm Timing
	var err error
	tm.Drift, tm.Slack = 0.005, 100*time.Millisecond
	for _, d := range []struct {
		s string
		v *time.Duration
	}{{spec.TTL, &tm.TTL}, {spec.Renew, &tm.RenewEvery}, {spec.Op, &tm.OpTimeout}} {
		if *d.v, err = time.ParseDuration(d.s); err != nil {
			return fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	nc, err := nats.Connect(spec.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(time.Second))
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := OpenBucket(octx, js, DefaultBucket, 3)
	if err != nil {
		return fail(err)
	}
	m, err := Open(octx, Options{KV: kv, Name: "hodei", Replica: spec.Replica, Pools: poolNames(spec.Pools), Timing: tm,
		Log: zerolog.New(os.Stderr).With().Timestamp().Str("replica", spec.Replica).Logger(),
		OnChange: func(c Change) {
			emit(helperEvent{Event: "change", Pool: c.Pool, Held: c.Held, Reason: c.Reason, At: c.At})
		}})
	if err != nil {
		return fail(err)
	}
	emit(helperEvent{Event: "open", At: time.Now()})
	m.SetReady(true)
	if err := m.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// holderProcess is a helper process seen from the test.
type holderProcess struct {
	id  string
	cmd *exec.Cmd

	mu     sync.Mutex
	events []helperEvent
	exited chan struct{}
}

// startHolder runs a helper process; it is killed at test end.
func startHolder(t *testing.T, spec helperSpec) *holderProcess {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(t.TempDir() + "/" + spec.Replica + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holderProcess{id: spec.Replica, cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e helperEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				h.mu.Lock()
				h.events = append(h.events, e)
				h.mu.Unlock()
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			if data, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("%s's log:\n%s", h.id, tail(string(data), 30))
			}
		}
	})
	eventually(t, 60*time.Second, spec.Replica+" open", func() bool {
		for _, e := range h.Events() {
			if e.Event == "error" {
				t.Fatalf("%s: %s", spec.Replica, e.Error)
			}
			if e.Event == "open" {
				return true
			}
		}
		select {
		case <-h.exited:
			t.Fatalf("%s exited before opening", spec.Replica)
		default:
		}
		return false
	})
	return h
}

func tail(s string, lines int) string {
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n++
			if n > lines {
				return s[i+1:]
			}
		}
	}
	return s
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *holderProcess) kill() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
}

func (h *holderProcess) Events() []helperEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]helperEvent(nil), h.events...)
}

// holds is the set of pools the process holds by its own reports.
func (h *holderProcess) holds() map[domain.PoolName]time.Time {
	out := map[domain.PoolName]time.Time{}
	for _, e := range h.Events() {
		if e.Event != "change" {
			continue
		}
		if e.Held {
			out[e.Pool] = e.At
		} else {
			delete(out, e.Pool)
		}
	}
	return out
}

func (h *holderProcess) String() string { return fmt.Sprintf("%s (pid %d)", h.id, h.cmd.Process.Pid) }
