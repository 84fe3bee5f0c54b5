package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

// ceSender is the CloudEvents SDK's JetStream binding, the real client,
// sending binary-mode events (ce- headers, data as the body) on one subject.
func ceSender(t *testing.T, url, subject string) cloudevents.Client {
	t.Helper()
	s, err := cejs.NewSender(url, events.StreamJobs, subject, nil, nil)
	if err != nil {
		t.Fatalf("cloudevents sender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c, err := cloudevents.NewClient(s)
	if err != nil {
		t.Fatalf("cloudevents client: %v", err)
	}
	return c
}

func ceSend(t *testing.T, c cloudevents.Client, typ string, data domain.JobData, ext map[string]string) {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(fmt.Sprintf("bin-%s-%s", typ, data.JobID))
	ev.SetSource("sdk-go-scheduler")
	ev.SetType(typ)
	ev.SetTime(time.Now())
	for k, v := range ext {
		ev.SetExtension(k, v)
	}
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	if res := c.Send(context.Background(), ev); cloudevents.IsUndelivered(res) {
		t.Fatalf("sending %s: %v", typ, res)
	}
}

// Binary-mode CloudEvents sent with github.com/cloudevents/sdk-go's
// JetStream binding, mixed with structured ones, are each applied once;
// a binary event with ce- headers but a wrong specversion is refused with
// a reason that says so; and the traceparent of the job that made the
// pool scale is carried onto the decision event.
func TestBinaryCloudEventsFromTheSDK(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	fake := fakeprovider.New("p1")
	d := startApp(t, cfg, map[string]providers.Provider{"p1": fake}, zerolog.New(io.Discard))
	a := d.app
	bustest.Eventually(t, 10*time.Second, "readyz", a.Ready)
	nc, js := bustest.Connect(t, a.BusURL())
	jobs := bustest.NewJobs(t, js)
	decisions := rawDecisions(t, js)

	queued := ceSender(t, a.BusURL(), "hodei.jobs.p1.queued")
	started := ceSender(t, a.BusURL(), "hodei.jobs.p1.started")
	finished := ceSender(t, a.BusURL(), "hodei.jobs.p1.finished")
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ceSend(t, queued, domain.TypeJobQueued, domain.JobData{JobID: "b-0", Pool: "p1"}, map[string]string{"traceparent": trace})
	jobs.Queued("p1", "s-0", nil)
	ceSend(t, queued, domain.TypeJobQueued, domain.JobData{JobID: "b-1"}, nil)
	jobs.Queued("p1", "s-1", nil)
	// The same binary event again: the ledger's duplicate, not a new job.
	ceSend(t, queued, domain.TypeJobQueued, domain.JobData{JobID: "b-1"}, nil)
	// ce- headers with the wrong specversion: refused as such.
	bad := nats.NewMsg("hodei.jobs.p1.queued")
	bad.Header.Set("ce-specversion", "0.3")
	bad.Header.Set("ce-id", "x")
	bad.Header.Set("ce-source", "s")
	bad.Header.Set("ce-type", domain.TypeJobQueued)
	bad.Data = []byte(`{"job_id":"never"}`)
	if _, err := js.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	_ = nc

	bustest.Eventually(t, 10*time.Second, "4 workers", func() bool { return len(fake.Workers()) == 4 })
	ws := fake.Workers()
	ceSend(t, started, domain.TypeJobStarted, domain.JobData{JobID: "b-0", WorkerID: string(ws[0])}, nil)
	jobs.Started("p1", "s-0", ws[1])
	ceSend(t, finished, domain.TypeJobFinished, domain.JobData{JobID: "b-0", WorkerID: string(ws[0]), Outcome: "succeeded"}, nil)

	bustest.Eventually(t, 10*time.Second, "ledger 2 pending 1 running", func() bool {
		s := pool(t, a, "p1")
		return s.Pending == 2 && s.Running == 1
	})
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{"hodei.job.queued", "applied", 4},
		{"hodei.job.queued", "duplicate", 1},
		{"hodei.job.queued", "invalid", 1},
		{"hodei.job.started", "applied", 2},
		{"hodei.job.finished", "applied", 1},
	} {
		if got := testutil.ToFloat64(a.m.Events.WithLabelValues(c.typ, c.result)); got != c.want {
			t.Errorf("events_total{type=%s,result=%s} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(a.m.EventsDropped.WithLabelValues(domain.ReasonUnsupportedSpec)); got != 1 {
		t.Errorf("events_dropped_total{reason=unsupported_specversion} = %v, want 1", got)
	}
	bustest.Eventually(t, 10*time.Second, "a decision carrying the traceparent", func() bool {
		for _, ce := range decisions() {
			if ce["traceparent"] == trace {
				return true
			}
		}
		return false
	})
}

// rawDecisions follows the decision events as JSON objects (extension
// attributes included).
func rawDecisions(t *testing.T, js jetstream.JetStream) func() []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamWorkers, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"hodei.autoscaler.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan map[string]any, 1024)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var v map[string]any
		if json.Unmarshal(m.Data(), &v) == nil {
			ch <- v
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	var got []map[string]any
	return func() []map[string]any {
		for {
			select {
			case v := <-ch:
				got = append(got, v)
			default:
				return got
			}
		}
	}
}
