package events_test

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestPublisherOrderOnceWhenAMessageFails: a window of events in flight
// where one message in the middle does not make it, while the ones after
// it reach the server, still ends up in the stream in order and each
// once. The faults are injected in front of a real server (faultyJS), so
// it is the server's own de-duplication and expected-last-message check
// that the publisher's order rests on here.
func TestPublisherOrderOnceWhenAMessageFails(t *testing.T) {
	const total, victim = 300, "w-00100" // one window of 256 and the rest
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, js jetstream.JetStream, msg *nats.Msg) (jetstream.PubAckFuture, bool)
		other int // events another writer stored
	}{
		{
			// The message was written to a connection that then died (or
			// sat in a buffer that was dropped): it never reaches the
			// server and its future reports the disconnection, while the
			// messages published after it go out on the new connection.
			name: "lost with its connection, the later ones delivered",
			fault: func(*testing.T, jetstream.JetStream, *nats.Msg) (jetstream.PubAckFuture, bool) {
				return failedFuture(nats.ErrDisconnected), true
			},
		},
		{
			// Another replica stores an event just before this one
			// arrives (HA: every replica writes HODEI_WORKERS).
			name: "another writer's event stored in between",
			fault: func(t *testing.T, js jetstream.JetStream, _ *nats.Msg) (jetstream.PubAckFuture, bool) {
				payload, err := events.Encode("other-1", "other", domain.TypeWorkerPrefix+string(domain.LifecycleReady), time.Now(),
					domain.WorkerEventData{WorkerID: "o-1", Pool: "q"})
				if err != nil {
					t.Error(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := js.Publish(ctx, "hodei.workers.q.ready", payload, jetstream.WithMsgID("other-1")); err != nil {
					t.Error(err)
				}
				return nil, false
			},
			other: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := bustest.StartServer(t)
			_, js := bustest.Connect(t, srv.ClientURL())
			subjects := events.Subjects{Prefix: "hodei"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamWorkers,
				Subjects: []string{subjects.AllWorkers(), subjects.AllDecisions()}, Duplicates: 2 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			faulty := &faultyJS{JetStream: js, victim: victim, fault: func(msg *nats.Msg) (jetstream.PubAckFuture, bool) {
				return tc.fault(t, js, msg)
			}}
			results := map[string]int{}
			observe := func(_, result string) { results[result]++ } // called from Run only
			pub := events.NewPublisher(faulty, subjects, "test", 100_000, zerolog.New(zerolog.NewTestWriter(t)), observe)
			for i := range total { // all queued before Run: the first window is full
				pub.Worker(time.Now(), domain.LifecycleProvisioning, domain.WorkerEventData{WorkerID: fmt.Sprintf("w-%05d", i), Pool: "p"})
			}
			pub.Close()
			if err := pub.Run(ctx); err != nil { // returns once every event is stored
				t.Fatalf("Run: %v", err)
			}
			if !faulty.struck {
				t.Fatalf("the fault never struck %s", victim)
			}
			info, err := stream.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ours []string
			others := 0
			for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
				m, err := stream.GetMsg(ctx, seq)
				if err != nil {
					t.Fatalf("message %d: %v", seq, err)
				}
				var ce domain.CloudEvent
				var w domain.WorkerEventData
				if err := json.Unmarshal(m.Data, &ce); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(ce.Data, &w); err != nil {
					t.Fatal(err)
				}
				if ce.Source != "test" {
					others++
					continue
				}
				ours = append(ours, w.WorkerID)
			}
			if len(ours) != total || others != tc.other {
				t.Fatalf("%d of our events stored and %d others, want %d (each once) and %d", len(ours), others, total, tc.other)
			}
			for i, id := range ours {
				if want := fmt.Sprintf("w-%05d", i); id != want {
					t.Fatalf("event %d is %s, want %s: order broken", i, id, want)
				}
			}
			if results["published"] < total || results["dropped"] != 0 || results["error"] != 0 {
				t.Errorf("observed %v, want %d published and none dropped", results, total)
			}
		})
	}
}

// faultyJS passes every publish to the real JetStream, except the first
// asynchronous publish of the victim's event: fault sees it first and
// either answers for it (true: the message is not sent) or lets it go on.
type faultyJS struct {
	jetstream.JetStream
	victim string // a worker id
	fault  func(*nats.Msg) (jetstream.PubAckFuture, bool)
	struck bool // only Run's goroutine publishes
}

func (f *faultyJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if !f.struck && bytes.Contains(msg.Data, []byte(`"`+f.victim+`"`)) {
		f.struck = true
		if fut, done := f.fault(msg); done {
			return fut, nil
		}
	}
	return f.JetStream.PublishMsgAsync(msg, opts...)
}

// failedFuture is a publish whose answer is err.
func failedFuture(err error) jetstream.PubAckFuture {
	errs := make(chan error, 1)
	errs <- err
	return &future{errs: errs}
}

type future struct{ errs chan error }

func (f *future) Ok() <-chan *jetstream.PubAck { return nil }
func (f *future) Err() <-chan error            { return f.errs }
func (f *future) Msg() *nats.Msg               { return nil }
