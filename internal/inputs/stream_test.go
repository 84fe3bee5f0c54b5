package inputs_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/inputs"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
)

// The daemon's stream sources HODEI_EVENTS through subject transforms: only
// the input's subjects (by default the job events and the workers'
// heartbeats) arrive, renamed under <prefix>.in.<input>., and
// they stay after Hodei's consumers acknowledged them. Made before
// HODEI_EVENTS exists, it picks the stream up once Hodei creates it.
func TestOwnStreamSourcesHodeiEvents(t *testing.T) {
	srv := bustest.StartServer(t)
	_, js := bustest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.Defaults()
	cfg.Inputs = []config.Input{{Format: config.FormatHodeiJobs, Name: "hodei", DefaultPool: "p"}}
	if err := inputs.EnsureStreams(ctx, js, cfg, zerolog.New(io.Discard)); err != nil {
		t.Fatalf("EnsureStreams before HODEI_EVENTS exists: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HODEI_EVENTS", Subjects: []string{"hodei.events.>"}, Retention: jetstream.InterestPolicy}); err != nil {
		t.Fatal(err)
	}
	// Again, now that it exists (a restart): the same stream, updated.
	if err := inputs.EnsureStreams(ctx, js, cfg, zerolog.New(io.Discard)); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 20*time.Second, "the source attached", func() bool {
		st, err := js.Stream(ctx, inputs.OwnStream(cfg.InputList()[0]))
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || len(info.Sources) != 1 {
			return false
		}
		// Active is -1 until the server has attached the source.
		return info.Sources[0].Error == nil && info.Sources[0].Active >= 0
	})
	for _, s := range []string{"hodei.events.jobs.jobqueued", "hodei.events.workers.workerregistered", "hodei.events.workers.workerheartbeat", "hodei.events.jobs.jobstatuschanged"} {
		if _, err := js.Publish(ctx, s, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	own := inputs.OwnStream(cfg.InputList()[0])
	var subjects map[string]uint64
	bustest.Eventually(t, 20*time.Second, "two job events and a heartbeat sourced", func() bool {
		st, err := js.Stream(ctx, own)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			return false
		}
		subjects = info.State.Subjects
		return info.State.Msgs == 3
	})
	for _, want := range []string{"hodei.in.hodei.hodei.events.jobs.jobqueued", "hodei.in.hodei.hodei.events.workers.workerheartbeat", "hodei.in.hodei.hodei.events.jobs.jobstatuschanged"} {
		if subjects[want] != 1 {
			t.Errorf("subjects %v lack %s", subjects, want)
		}
	}
	st, err := js.Stream(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.Retention != jetstream.LimitsPolicy || len(c.Sources) != 1 || c.Sources[0].Name != "HODEI_EVENTS" {
		t.Errorf("own stream config %+v", c)
	}
}
