package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/natscluster"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

// On a three-node cluster of real nats-server processes, kill -9 the
// server that hosts the consumer's (R1, ephemeral) ordered consumer: the
// Consumer sees the stall itself (messages pending, none delivered, the
// consumer not answering), opens a new one at the next sequence and goes
// on, every message delivered once, in order. (Left to nats.go's own
// recreation, which notices only after two missed 5 s heartbeats and then
// backs off from 1 s to 10 s between tries of 10 s each, the daemon's job
// stream stalled for 10 to over 60 s after a server kill in
// internal/hae2e; here, with an idle cluster, it takes 10 s.)
func TestConsumerSurvivesTheKillOfItsServer(t *testing.T) {
	c := natscluster.Start(t, 3)
	nc, js := bustest.Connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seqs []uint64
	got := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]uint64(nil), seqs...)
	}
	var logs syncbuf.Buffer
	cons := &events.Consumer{JS: js, Stream: "T", Filters: []string{"t.>"}, Log: zerolog.New(&logs),
		DecodeMsg: func(string, nats.Header, []byte) domain.Delivery { return domain.Delivery{Ignored: true} }}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(rctx, func(d domain.Delivery) {
			if d.Seq == 0 {
				return // the empty stream's marker
			}
			mu.Lock()
			seqs = append(seqs, d.Seq)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { stop(); <-done })

	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			for {
				pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := js.Publish(pctx, "t.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("m", i)))
				cancel()
				if err == nil {
					break
				}
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
					t.Fatalf("publishing: %v", err)
				}
			}
		}
	}
	publish(0, 50)
	bustest.Eventually(t, 30*time.Second, "the first 50 delivered", func() bool { return len(got()) == 50 })

	host := consumerHost(t, js)
	// A client connected to the killed server reconnects, and nats.go
	// recreates the consumer on the reconnect by itself: then there is no
	// stall to see. The stall is that of a client on another server.
	sameServer := nc.ConnectedServerName() == host
	if err := c.NodeNamed(host).Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	publish(50, 50)
	bustest.Eventually(t, 30*time.Second, "all 100 delivered after the kill of the consumer's server", func() bool { return len(got()) >= 100 })
	t.Logf("killed %s (the consumer's server; the client's own: %v); all delivered %v later", host, sameServer, time.Since(killed).Round(time.Millisecond))
	if e := logs.Entry("job stream consumer stalled; opening it again at the next sequence"); !sameServer && (e == nil || e["next_seq"] != float64(51)) {
		t.Errorf("the consumer did not reopen itself at sequence 51 (log entry %v); its log:\n%s", e, logs.String())
	}
	for i, s := range got() {
		if s != uint64(i+1) {
			t.Fatalf("delivery %d is stream sequence %d: want each once, in order (%v)", i, s, got())
		}
	}
}

// consumerHost names the server that hosts stream T's one consumer.
func consumerHost(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Cluster != nil && ci.Cluster.Leader != "" {
			return ci.Cluster.Leader
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatal("stream T has no consumer with a leader")
	return ""
}
