package engine

import (
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// The extensions of the job event that made the pool decide ride on that
// decision, once; a later decision caused by a job without any carries
// none.
func TestEngineDecisionCarriesTheJobsExtensions(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	trace := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	for _, c := range []struct {
		name string
		ext  map[string]string
		want string
	}{
		{"with a traceparent", trace, trace["traceparent"]},
		{"without", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.seq++
			if res, _ := h.e.ApplyJob(domain.JobEvent{Kind: domain.JobQueued, ID: c.name, Pool: testPool, JobID: domain.JobID(c.name),
				Time: h.now, Stored: h.now, Extensions: c.ext}, h.now); res != Applied {
				t.Fatalf("result %v", res)
			}
			fx := h.reconcile()
			if len(fx.Decisions) != 1 || fx.Decisions[0].Data.Extensions["traceparent"] != c.want {
				t.Fatalf("decisions %+v, want one with traceparent %q", fx.Decisions, c.want)
			}
		})
	}
}
