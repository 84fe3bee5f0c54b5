package hodeijobs_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
)

var fuzzReasons = map[string]bool{
	domain.ReasonTooLarge: true, domain.ReasonNotJSON: true, domain.ReasonBadEnvelope: true,
	domain.ReasonBadPayload: true, domain.ReasonUnknownVariant: true, domain.ReasonUnknownState: true,
	domain.ReasonMissingJobID: true, domain.ReasonBadWorkerID: true, domain.ReasonBadResources: true,
	domain.ReasonNoRoute: true, domain.ReasonInvalidUTF8: true,
}

// FuzzDecodeHodei: the decoder never panics; each message gives an
// *domain.InvalidError with a known reason and a bounded detail, an
// ignored result, or an event that keeps the contract (a job id, a routed
// pool, a canonical worker where one is named, an outcome exactly on a
// finished event). The decoder keeps its state across the inputs of one
// run, as it does over a stream. Seeds: the fixtures and
// testdata/fuzz/FuzzDecodeHodei.
func FuzzDecodeHodei(f *testing.F) {
	paths, _ := filepath.Glob("testdata/fixtures/*.json")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	d := hodeijobs.New(fixtureRouter, 4096)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := d.Decode(body)
		switch {
		case r.Err != nil:
			var ie *domain.InvalidError
			if !errors.As(r.Err, &ie) || !fuzzReasons[ie.Reason] {
				t.Fatalf("error %T %v: want a known reason", r.Err, r.Err)
			}
			if ie.Detail == "" || len(ie.Detail) > 600 || r.Ignored || r.Event.JobID != "" {
				t.Fatalf("result %+v", r)
			}
		case r.Ignored:
			if r.Event.JobID != "" || r.Heartbeat != nil {
				t.Fatalf("ignored with an event %+v", r)
			}
		case r.Heartbeat != nil:
			hb := r.Heartbeat
			if r.Event.JobID != "" || (hb.Pool != "rust" && hb.Pool != "small") || len(hb.Jobs) > 1 {
				t.Fatalf("heartbeat %+v", hb)
			}
			if _, err := domain.ParseWorkerID(string(hb.Worker)); err != nil {
				t.Fatalf("heartbeat worker %q: %v", hb.Worker, err)
			}
			for _, j := range hb.Jobs {
				if err := domain.ValidateJobID(string(j)); err != nil {
					t.Fatalf("heartbeat job %q: %v", j, err)
				}
			}
		default:
			ev := r.Event
			if ev.JobID == "" || len(ev.JobID) > 256 || (ev.Pool != "rust" && ev.Pool != "small") || ev.Kind == 0 {
				t.Fatalf("event %+v", ev)
			}
			if ev.WorkerID != "" {
				if _, err := domain.ParseWorkerID(string(ev.WorkerID)); err != nil {
					t.Fatalf("worker %q: %v", ev.WorkerID, err)
				}
			}
			if (ev.Kind == domain.JobFinished) != (ev.Outcome != "") || ev.Resources.CPUMillis < 0 || ev.Resources.MemoryMB < 0 {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}
