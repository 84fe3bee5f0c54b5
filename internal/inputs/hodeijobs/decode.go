// Package hodeijobs decodes the Hodei job scheduler's own events (the
// public repository Rubentxu/hodei-jobs, v0.69.1, commit a86d5c4) into
// the daemon's job events: a NatsMessageEnvelope (crates/server/
// infrastructure/src/messaging/nats.rs) whose payload is the DomainEvent
// (crates/server/domain/src/events.rs) serialized as a JSON string in
// serde's externally tagged form, {"JobQueued":{...}}.
//
// Hodei's events name no pool: the input's routing rules choose one from
// the job's spec when it is queued (or created), and the decoder
// remembers it, and the job's worker, for the job's later events, which
// carry only its id. The decoder is therefore stateful: one per read of
// the stream, used from one goroutine.
package hodeijobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// TypePrefix prefixes the variant name in the events_total type label.
const TypePrefix = "hodei-jobs."

// maxTracked bounds the jobs the decoder remembers (pool and worker); the
// oldest are forgotten first.
const maxTracked = 1 << 20

const maxDetail = 512

// Result is one decoded message. Exactly one of an event (Err nil and
// Ignored false), Ignored and Err is meaningful.
type Result struct {
	Event   domain.JobEvent
	Type    string // TypePrefix + the variant, or "unknown"
	Ignored bool   // a variant that says nothing about demand or supply
	Err     error  // an *domain.InvalidError
	// Heartbeat is set, with no Event, for a WorkerHeartbeat: the
	// worker's own word on the job it runs (current_job_id).
	Heartbeat *domain.WorkerReport
}

// Decoder decodes one input's messages.
type Decoder struct {
	Router   routing.Router
	MaxBytes int

	// jobs are the jobs seen and not finished; order holds them oldest
	// first, for forgetting beyond maxTracked (an entry is live while its
	// gen is the job's).
	jobs  map[string]tracked
	order []entry
	gen   uint64
	// workers are the pools of the workers jobs were assigned to, for the
	// heartbeats of a worker between jobs (bounded like jobs).
	workers map[domain.WorkerID]domain.PoolName

	// scratch is the scanner's: the unescaped payload and what the fields
	// it fills point to, reused from message to message.
	scratch scratch
}

type tracked struct {
	pool   domain.PoolName // "" when the job had no route
	worker domain.WorkerID
	gen    uint64
}

type entry struct {
	job string
	gen uint64
}

// New makes a decoder with the input's routing rules.
func New(r routing.Router, maxBytes int) *Decoder {
	return &Decoder{Router: r, MaxBytes: maxBytes, jobs: map[string]tracked{}, workers: map[domain.WorkerID]domain.PoolName{}}
}

// envelope is NatsMessageEnvelope.
type envelope struct {
	Payload       *string   `json:"payload"`
	EventType     string    `json:"event_type"`
	CorrelationID *string   `json:"correlation_id"`
	CreatedAt     time.Time `json:"created_at"`
}

// unmarshal decodes data into v with goccy/go-json, several times faster
// than encoding/json on Hodei's envelopes and job specs (BENCHMARKS.md row
// 1h). When it reports an error, encoding/json decodes again into a zero
// value and decides, so the refusals and their messages stay the standard
// library's, as in internal/events (unmarshalEnvelope). FuzzFastAgrees
// checks that what goccy/go-json accepts, encoding/json accepts and
// decodes the same, for each of the decoder's types.
func unmarshal[T any](data []byte, v *T) error {
	if gojson.Unmarshal(data, v) == nil {
		return nil
	}
	var std T
	err := json.Unmarshal(data, &std)
	*v = std
	return err
}

func invalid(reason, format string, args ...any) error {
	return domain.Invalidf(maxDetail, reason, format, args...)
}

func fail(typ string, err error) Result { return Result{Type: typ, Err: err} }

// Decode decodes one message body. It never panics on any input.
func (d *Decoder) Decode(data []byte) Result { return d.decode(data, true) }

// parsed is what the decoder reads of a message, from the scanner
// (scanMessage) or from the full decoder (parse): the envelope's time and
// correlation id, the variant, and its fields (job for the job variants,
// hb for WorkerHeartbeat; the others' are not read).
type parsed struct {
	createdAt     time.Time
	correlationID *string
	variant       string
	job           jobFields
	hb            heartbeatFields
}

// decode is Decode, with the fast path (scanMessage) or, for the tests
// that compare the two, without it. The full decoder (parse) owns every
// refusal: the scanner declines anything unusual, and then parse decides.
func (d *Decoder) decode(data []byte, fast bool) Result {
	if d.MaxBytes > 0 && len(data) > d.MaxBytes {
		return fail("unknown", invalid(domain.ReasonTooLarge, "message of %d bytes exceeds nats.max_event_bytes %d", len(data), d.MaxBytes))
	}
	var m *parsed
	if fast && d.scanMessage(data) {
		m = &d.scratch.m
	} else {
		var p parsed
		if r, ok := d.parse(data, &p); !ok {
			return r
		}
		m = &p
	}
	return d.apply(m)
}

// parse is the full decoder: the envelope, the payload string and the
// variant's fields, each with goccy/go-json (unmarshal), every refusal
// named. It reports false with the failing result.
func (d *Decoder) parse(data []byte, m *parsed) (Result, bool) {
	// The daemon's one text rule (domain): invalid UTF-8 is refused, never
	// rewritten, in the envelope and in the payload string it carries.
	if err := domain.CheckJSONText(data); err != nil {
		return fail("unknown", err), false
	}
	var env envelope
	if err := unmarshal(data, &env); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return fail("unknown", invalid(domain.ReasonBadEnvelope, "envelope field %q has the wrong type: %v", ute.Field, err)), false
		}
		return fail("unknown", invalid(domain.ReasonNotJSON, "envelope is not JSON: %v", err)), false
	}
	if env.Payload == nil {
		return fail("unknown", invalid(domain.ReasonBadEnvelope, "envelope has no payload (want a NatsMessageEnvelope: payload, event_type, correlation_id, created_at)")), false
	}
	var tagged map[string]json.RawMessage
	payload := []byte(*env.Payload)
	if err := domain.CheckJSONText(payload); err != nil {
		return fail("unknown", err), false
	}
	if err := unmarshal(payload, &tagged); err != nil {
		var s string
		if json.Unmarshal(payload, &s) == nil {
			return fail("unknown", invalid(domain.ReasonUnknownVariant, "payload is the unit variant %q: DomainEvent has none", s)), false
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return fail("unknown", invalid(domain.ReasonBadPayload, "payload is JSON but not an externally tagged DomainEvent: %v", err)), false
		}
		return fail("unknown", invalid(domain.ReasonBadPayload, "payload string is not JSON: %v", err)), false
	}
	if len(tagged) != 1 {
		return fail("unknown", invalid(domain.ReasonBadPayload, "payload has %d keys: an externally tagged DomainEvent has exactly one, its variant", len(tagged))), false
	}
	var variant string
	var body json.RawMessage
	for k, v := range tagged {
		variant, body = k, v
	}
	typ, known := variantTypes[variant]
	if !known {
		return fail("unknown", invalid(domain.ReasonUnknownVariant, "variant %q is not a DomainEvent of hodei-jobs v0.69", variant)), false
	}
	m.createdAt, m.correlationID, m.variant = env.CreatedAt, env.CorrelationID, variant
	switch variantKind(variant) {
	case kindJob:
		if err := unmarshal(body, &m.job); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return fail(typ, invalid(domain.ReasonBadPayload, "%s.%s has the wrong type: %v", variant, ute.Field, err)), false
			}
			return fail(typ, invalid(domain.ReasonBadPayload, "%s: %v", variant, err)), false
		}
	case kindHeartbeat:
		if err := unmarshal(body, &m.hb); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return fail(typ, invalid(domain.ReasonBadPayload, "WorkerHeartbeat.%s has the wrong type: %v", ute.Field, err)), false
			}
			return fail(typ, invalid(domain.ReasonBadPayload, "WorkerHeartbeat: %v", err)), false
		}
	}
	return Result{}, true
}

// The variants the decoder reads.
const (
	kindIgnored = iota
	kindJob
	kindHeartbeat
)

func variantKind(variant string) int {
	switch variant {
	case "JobCreated", "JobQueued", "JobStatusChanged", "JobCancelled", "JobAssigned", "JobAccepted":
		return kindJob
	case "WorkerHeartbeat":
		return kindHeartbeat
	}
	return kindIgnored
}

// apply maps a parsed message onto the daemon's events, with the
// decoder's routing and memory of jobs and workers.
func (d *Decoder) apply(m *parsed) Result {
	variant := m.variant
	var r Result
	switch variantKind(variant) {
	case kindJob:
		r = d.job(variant, &m.job)
	case kindHeartbeat:
		r = d.heartbeat(&m.hb)
	default:
		r = Result{Ignored: true}
	}
	r.Type = variantTypes[variant]
	if hb := r.Heartbeat; hb != nil {
		if hb.Time.IsZero() {
			hb.Time = m.createdAt
		}
		return r
	}
	if r.Err == nil && !r.Ignored {
		if r.Event.Time.IsZero() {
			r.Event.Time = m.createdAt
		}
		r.Event.ID = variant + "/" + string(r.Event.JobID)
		if c := m.correlationID; c != nil && *c != "" {
			r.Event.Extensions = map[string]string{"correlationid": bounded(*c)}
		}
	}
	return r
}

// jobSpec is the part of JobSpec (crates/server/domain/src/jobs/
// aggregate.rs) that routing reads.
type jobSpec struct {
	Resources struct {
		CPUCores    float64 `json:"cpu_cores"`
		MemoryMB    int64   `json:"memory_mb"`
		GPURequired bool    `json:"gpu_required"`
	} `json:"resources"`
	Image       *string `json:"image"`
	Preferences struct {
		PreferredProvider *string           `json:"preferred_provider"`
		RequiredLabels    map[string]string `json:"required_labels"`
	} `json:"preferences"`
}

type jobFields struct {
	JobID          *string    `json:"job_id"`
	WorkerID       *string    `json:"worker_id"`
	OldState       *string    `json:"old_state"`
	NewState       *string    `json:"new_state"`
	OccurredAt     *time.Time `json:"occurred_at"`
	QueuedAt       *time.Time `json:"queued_at"`
	Spec           *jobSpec   `json:"spec"`             // JobCreated
	Requirements   *jobSpec   `json:"job_requirements"` // JobQueued
	PreferredProvi *string    `json:"preferred_provider"`
}

// JobState (crates/shared/src/states.rs).
var jobStates = map[string]bool{
	"Pending": true, "Assigned": true, "Scheduled": true, "Running": true, "Succeeded": true,
	"Failed": true, "Cancelled": true, "Timeout": true, "ManualInterventionRequired": true,
}

// job maps a job variant's fields.
func (d *Decoder) job(variant string, f *jobFields) Result {
	if f.JobID == nil || *f.JobID == "" {
		return Result{Err: invalid(domain.ReasonMissingJobID, "%s has no job_id", variant)}
	}
	job := *f.JobID
	if err := domain.ValidateJobID(job); err != nil {
		return Result{Err: fmt.Errorf("%s: %w", variant, err)}
	}
	at := f.OccurredAt
	if at == nil {
		at = f.QueuedAt
	}
	ev := domain.JobEvent{JobID: domain.JobID(job)}
	if at != nil {
		ev.Time = *at
	}
	switch variant {
	case "JobCreated":
		return d.queued(ev, f.Spec, nil)
	case "JobQueued":
		return d.queued(ev, f.Requirements, f.PreferredProvi)
	case "JobCancelled":
		ev.Outcome = domain.OutcomeCancelled
		return d.finished(ev)
	case "JobAssigned", "JobAccepted":
		if f.WorkerID == nil || *f.WorkerID == "" {
			return Result{Err: invalid(domain.ReasonBadWorkerID, "%s has no worker_id", variant)}
		}
		w, err := domain.ParseWorkerID(*f.WorkerID)
		if err != nil {
			return Result{Err: invalid(domain.ReasonBadWorkerID, "%s.worker_id: %v", variant, err)}
		}
		ev.WorkerID = w
		return d.started(ev)
	}
	// JobStatusChanged
	if f.NewState == nil {
		return Result{Err: invalid(domain.ReasonUnknownState, "JobStatusChanged has no new_state")}
	}
	if !jobStates[*f.NewState] {
		return Result{Err: invalid(domain.ReasonUnknownState, "JobStatusChanged.new_state %q is not a JobState", *f.NewState)}
	}
	if f.OldState != nil && !jobStates[*f.OldState] {
		return Result{Err: invalid(domain.ReasonUnknownState, "JobStatusChanged.old_state %q is not a JobState", *f.OldState)}
	}
	switch *f.NewState {
	case "Pending":
		// Demand, where a JobQueued may be missing (the ledger makes a
		// second queued of the same job a duplicate).
		return d.queued(ev, nil, nil)
	case "Running":
		return d.started(ev)
	case "Succeeded":
		ev.Outcome = domain.OutcomeSucceeded
		return d.finished(ev)
	case "Failed", "Timeout":
		ev.Outcome = domain.OutcomeFailed
		return d.finished(ev)
	case "Cancelled":
		ev.Outcome = domain.OutcomeCancelled
		return d.finished(ev)
	}
	// Assigned, Scheduled (the worker comes with JobAssigned) and
	// ManualInterventionRequired change neither demand nor supply.
	return Result{Ignored: true}
}

// queued routes a new job (or finds the pool it was routed to).
func (d *Decoder) queued(ev domain.JobEvent, spec *jobSpec, provider *string) Result {
	ev.Kind = domain.JobQueued
	t, known := d.jobs[string(ev.JobID)]
	if known {
		if t.pool == "" {
			return Result{Ignored: true} // counted when it found no route
		}
		ev.Pool = t.pool
		if spec != nil {
			ev.Resources, ev.Labels = resources(spec), spec.Preferences.RequiredLabels
		}
		return Result{Event: ev}
	}
	a := routing.Attrs{}
	if spec != nil {
		if spec.Resources.CPUCores < 0 || spec.Resources.MemoryMB < 0 || math.IsNaN(spec.Resources.CPUCores) {
			return Result{Err: invalid(domain.ReasonBadResources, "resources must not be negative")}
		}
		ev.Resources, ev.Labels = resources(spec), spec.Preferences.RequiredLabels
		a.CPUMillis, a.MemoryMB, a.GPU = ev.Resources.CPUMillis, ev.Resources.MemoryMB, spec.Resources.GPURequired
		a.Labels = spec.Preferences.RequiredLabels
		if spec.Image != nil {
			a.Image = *spec.Image
		}
		if p := spec.Preferences.PreferredProvider; p != nil {
			a.Provider = *p
		}
	}
	if provider != nil && *provider != "" && a.Provider == "" {
		a.Provider = *provider // JobQueued's ProviderId, when the spec names none
	}
	pool, err := d.Router.Route(a)
	if err != nil {
		d.track(string(ev.JobID), tracked{})
		return Result{Err: invalid(domain.ReasonNoRoute, "job %s: %v", ev.JobID, err)}
	}
	ev.Pool = domain.PoolName(pool)
	d.track(string(ev.JobID), tracked{pool: ev.Pool})
	return Result{Event: ev}
}

func resources(s *jobSpec) domain.Resources {
	cpu := math.Round(s.Resources.CPUCores * 1000)
	if cpu > math.MaxInt32 {
		cpu = math.MaxInt32
	}
	return domain.Resources{CPUMillis: int64(cpu), MemoryMB: s.Resources.MemoryMB}
}

// pool is the pool of a job's later event: where it was routed, or, for a
// job queued before what the stream retains, the rules' answer for a job
// that says nothing (the default pool).
func (d *Decoder) pool(job domain.JobID) (tracked, bool) {
	if t, ok := d.jobs[string(job)]; ok {
		return t, t.pool != ""
	}
	p, err := d.Router.Route(routing.Attrs{})
	if err != nil {
		return tracked{}, false
	}
	d.track(string(job), tracked{pool: domain.PoolName(p)})
	return d.jobs[string(job)], true
}

func (d *Decoder) started(ev domain.JobEvent) Result {
	ev.Kind = domain.JobStarted
	t, ok := d.pool(ev.JobID)
	if !ok {
		return Result{Ignored: true}
	}
	ev.Pool = t.pool
	if ev.WorkerID == "" {
		ev.WorkerID = t.worker // Running names no worker: the one it was assigned to
	} else {
		t.worker = ev.WorkerID
		d.jobs[string(ev.JobID)] = t
		d.worker(ev.WorkerID, t.pool)
	}
	return Result{Event: ev}
}

// worker remembers the pool of a worker a job was assigned to.
func (d *Decoder) worker(w domain.WorkerID, pool domain.PoolName) {
	if _, ok := d.workers[w]; !ok && len(d.workers) >= maxTracked {
		clear(d.workers) // bounded; a forgotten worker is learnt again from its next job
	}
	d.workers[w] = pool
}

// heartbeatFields is DomainEvent::WorkerHeartbeat (events.rs at a86d5c4):
// worker_id, state, load_average, memory_usage_mb, current_job_id,
// occurred_at; the daemon reads the worker and its current job.
type heartbeatFields struct {
	WorkerID     *string    `json:"worker_id"`
	CurrentJobID *string    `json:"current_job_id"`
	OccurredAt   *time.Time `json:"occurred_at"`
}

// heartbeat maps Hodei's WorkerHeartbeat onto the daemon's worker
// heartbeat: the worker runs current_job_id (one job), or none when it is
// null. Its pool is the job's, or else the pool of the worker's last
// assigned job; a worker the decoder has never seen assigned a job is
// ignored (no pool to put it in).
func (d *Decoder) heartbeat(f *heartbeatFields) Result {
	if f.WorkerID == nil || *f.WorkerID == "" {
		return Result{Err: invalid(domain.ReasonBadWorkerID, "WorkerHeartbeat has no worker_id")}
	}
	w, err := domain.ParseWorkerID(*f.WorkerID)
	if err != nil {
		return Result{Err: invalid(domain.ReasonBadWorkerID, "WorkerHeartbeat.worker_id: %v", err)}
	}
	hb := &domain.WorkerReport{Worker: w}
	if f.OccurredAt != nil {
		hb.Time = *f.OccurredAt
	}
	pool, known := d.workers[w]
	if f.CurrentJobID != nil && *f.CurrentJobID != "" {
		job := *f.CurrentJobID
		if err := domain.ValidateJobID(job); err != nil {
			return Result{Err: fmt.Errorf("WorkerHeartbeat.current_job_id: %w", err)}
		}
		hb.Jobs = []domain.JobID{domain.JobID(job)}
		if t, ok := d.jobs[job]; ok && t.pool != "" {
			pool, known = t.pool, true
		}
	}
	if !known {
		return Result{Ignored: true}
	}
	hb.Pool = pool
	return Result{Heartbeat: hb}
}

func (d *Decoder) finished(ev domain.JobEvent) Result {
	ev.Kind = domain.JobFinished
	t, ok := d.pool(ev.JobID)
	if !ok {
		return Result{Ignored: true}
	}
	ev.Pool, ev.WorkerID = t.pool, t.worker
	delete(d.jobs, string(ev.JobID))
	return Result{Event: ev}
}

func (d *Decoder) track(job string, t tracked) {
	if old, ok := d.jobs[job]; ok {
		t.gen = old.gen
		d.jobs[job] = t
		return
	}
	d.gen++
	t.gen = d.gen
	d.jobs[job] = t
	d.order = append(d.order, entry{job, t.gen})
	for len(d.jobs) > maxTracked && len(d.order) > 0 {
		if e := d.order[0]; d.jobs[e.job].gen == e.gen {
			delete(d.jobs, e.job)
		}
		d.order = d.order[1:]
	}
	if len(d.order) > 1024 && len(d.order) > 2*len(d.jobs) {
		live := d.order[:0]
		for _, e := range d.order {
			if t, ok := d.jobs[e.job]; ok && t.gen == e.gen {
				live = append(live, e)
			}
		}
		d.order = live
	}
}

func bounded(v string) string {
	if len(v) <= 256 {
		return v
	}
	cut := 256
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// Subject is the Hodei subject of a variant (event_to_subject in nats.rs):
// hodei.events.<entity>.<variant in lower case>. Tests publish with it.
func Subject(entity, variant string) string {
	return "hodei.events." + entity + "." + strings.ToLower(variant)
}

// variantTypes are DomainEvent's variants at a86d5c4, each with its
// Result.Type (TypePrefix + the variant).
var variantTypes = map[string]string{}

var variantList = strings.Fields(`JobCreated JobStatusChanged WorkerRegistered WorkerStatusChanged
	ProviderRegistered ProviderUpdated JobQueueDepthChanged AutoScalingTriggered JobCancelled
	WorkerTerminated WorkerDisconnected WorkerProvisioned JobRetried JobAssigned JobAccepted
	JobDispatchAcknowledged RunJobReceived ProviderHealthChanged WorkerReconnected
	WorkerRecoveryFailed ProviderRecovered WorkerEphemeralCreated WorkerEphemeralReady WorkerReady
	WorkerStateUpdated WorkerEphemeralTerminating WorkerEphemeralTerminated WorkerEphemeralCleanedUp
	OrphanWorkerDetected GarbageCollectionCompleted WorkerEphemeralIdle JobExecutionError
	JobDispatchFailed WorkerProvisioningError SchedulingDecisionFailed ProviderExecutionError
	JobQueued WorkerReadyForJob WorkerProvisioningRequested ProviderSelected WorkerHeartbeat
	WorkerSelfTerminated TemplateCreated TemplateUpdated TemplateDisabled TemplateRunCreated
	ExecutionRecorded ScheduledJobCreated ScheduledJobTriggered ScheduledJobMissed ScheduledJobError
	SagaCompleted SagaFailed SagaTimedOut`)

func init() {
	for _, v := range variantList {
		variantTypes[v] = TypePrefix + v
	}
}
