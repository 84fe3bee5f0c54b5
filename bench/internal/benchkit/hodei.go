package benchkit

import (
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// HodeiInput is the daemon's only input in row 1h (and bench/decodefold
// -hodei): Hodei's events, routed to the mix's pools by a required label,
// as a Hodei user would.
func (m Mix) HodeiInput() config.Input {
	in := config.Input{Name: "hodei", Format: config.FormatHodeiJobs, Stream: "HODEI_EVENTS", Subjects: []string{"hodei.events.jobs.>"}}
	for _, p := range m.PoolNames() {
		in.Routes = append(in.Routes, routing.Rule{Pool: p, Match: routing.Match{Labels: map[string]string{"pool": p}}})
	}
	return in
}

// HodeiMessage renders one event of the mix as Hodei's server publishes
// it: JobQueued with a whole job spec (as fixture 02 of
// internal/inputs/hodeijobs), JobAssigned with the worker for a start,
// JobStatusChanged Running → Succeeded for a finish.
func HodeiMessage(ev Event, at time.Time) (subject string, body []byte, err error) {
	var variant string
	var fields map[string]any
	switch ev.Kind {
	case domain.JobQueued:
		variant = "JobQueued"
		fields = map[string]any{"job_id": ev.Job, "preferred_provider": nil, "queued_at": at, "correlation_id": nil, "actor": nil,
			"job_requirements": map[string]any{
				"command": map[string]any{"Shell": map[string]any{"cmd": "make", "args": []string{"test"}}},
				"env":     map[string]string{"CI": "true"}, "inputs": []any{}, "outputs": []any{}, "constraints": []any{},
				"resources":  map[string]any{"cpu_cores": 1.0, "memory_mb": 512, "storage_mb": 1024, "gpu_required": false, "architecture": "x86_64"},
				"timeout_ms": 600000, "image": "docker.io/library/rust:1.80", "working_dir": nil, "stdin": nil,
				"preferences": map[string]any{"preferred_provider": nil, "preferred_region": nil, "max_budget": nil, "priority": "Normal",
					"allow_retry": true, "required_labels": map[string]string{"pool": string(ev.Pool)}, "required_annotations": map[string]string{}},
			}}
	case domain.JobStarted:
		variant = "JobAssigned"
		fields = map[string]any{"job_id": ev.Job, "worker_id": string(ev.Worker), "occurred_at": at, "correlation_id": nil, "actor": nil}
	default:
		variant = "JobStatusChanged"
		fields = map[string]any{"job_id": ev.Job, "old_state": "Running", "new_state": "Succeeded", "occurred_at": at, "correlation_id": nil, "actor": nil}
	}
	body, err = hodeijobs.Encode(variant, fields, "corr-"+ev.Job, at)
	return "hodei.events.jobs." + map[string]string{"JobQueued": "jobqueued", "JobAssigned": "jobassigned", "JobStatusChanged": "jobstatuschanged"}[variant], body, err
}
