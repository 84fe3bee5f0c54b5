package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/tcpproxy"
)

// TestPublisherOrderOnceThroughOutage: events enqueued in bursts (batched
// in flight) reach the stream in order and each once, also when the
// connection is cut in the middle and comes back.
func TestPublisherOrderOnceThroughOutage(t *testing.T) {
	srv := bustest.StartServer(t)
	_, admin := bustest.Connect(t, srv.ClientURL())
	subjects := events.Subjects{Prefix: "hodei"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamWorkers,
		Subjects: []string{subjects.AllWorkers(), subjects.AllDecisions()}, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, srv.Addr().String())
	_, js := bustest.Connect(t, "nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	results := map[string]int{}
	observe := func(_, result string) { results[result]++ } // called from Run only
	pub := events.NewPublisher(js, subjects, "test", 100_000, zerolog.New(zerolog.NewTestWriter(t)), observe)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- pub.Run(runCtx) }()
	collect := bustest.Collect(t, admin)

	const burst = 1500
	enqueue := func(from int) {
		for i := from; i < from+burst; i++ {
			pub.Worker(time.Now(), domain.LifecycleProvisioning, domain.WorkerEventData{WorkerID: fmt.Sprintf("w-%05d", i), Pool: "p"})
		}
	}
	enqueue(0)
	bustest.Eventually(t, 30*time.Second, "the first burst", func() bool { return len(collect.Events()) >= burst/2 })
	proxy.Cut(tcpproxy.Refuse)
	enqueue(burst)
	time.Sleep(300 * time.Millisecond)
	proxy.Restore()
	enqueue(2 * burst)
	bustest.Eventually(t, 45*time.Second, "every event stored", func() bool { return len(collect.Events()) >= 3*burst })
	pub.Close()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("Run did not return after Close")
	}
	stop()
	got := collect.Events()
	if len(got) != 3*burst {
		t.Fatalf("%d events stored, want %d (each once)", len(got), 3*burst)
	}
	for i, e := range got {
		if want := fmt.Sprintf("w-%05d", i); e.Worker.WorkerID != want {
			t.Fatalf("event %d is %s, want %s: order broken", i, e.Worker.WorkerID, want)
		}
	}
	if results["published"] < 3*burst || results["dropped"] != 0 {
		t.Errorf("observed %v, want %d published and none dropped", results, 3*burst)
	}
}
