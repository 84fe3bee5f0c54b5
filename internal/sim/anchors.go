package sim

import (
	"fmt"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// The anchors replay a trace under the published scaling formulas of other
// autoscalers, with the knobs of the pool's configuration mapped onto
// theirs, in the same world (provider, scheduler, accounting) as the
// engine. docs/simulator.md gives each formula with its source; each type
// below repeats it.

// Anchor names, as they appear in reports.
const (
	AnchorARC    = "ARC"
	AnchorKEDA   = "KEDA ScaledJob"
	AnchorGitLab = "GitLab runner"
	AnchorHPA    = "HPA"
)

// Anchors lists the anchors in report order.
var Anchors = []string{AnchorARC, AnchorKEDA, AnchorGitLab, AnchorHPA}

// Anchor is another autoscaler's formula with its main knobs set.
type Anchor struct {
	Name  string // AnchorARC, AnchorKEDA, AnchorGitLab or AnchorHPA
	Knobs string // the knob settings, named as the anchor's docs name them
	// make builds the controller for a pool; the pool's max_workers and
	// jobs_per_worker map onto the anchor's maximum and slots.
	make func(s policy.Settings) controller
	// ephemeral anchors run one job per worker whatever jobs_per_worker.
	ephemeral bool
}

// Label is the anchor's name with its knobs.
func (a Anchor) Label() string {
	if a.Knobs == "" {
		return a.Name
	}
	return a.Name + " (" + a.Knobs + ")"
}

// ARC is actions-runner-controller's scale set with minRunners warm
// runners (its default is 0).
func ARC(minRunners int) Anchor {
	return Anchor{Name: AnchorARC, Knobs: fmt.Sprintf("minRunners %d", minRunners), ephemeral: true,
		make: func(s policy.Settings) controller { return &arc{min: minRunners, max: s.MaxWorkers} }}
}

// KEDA is a KEDA ScaledJob polling its scaler every poll (default 30 s).
func KEDA(poll time.Duration) Anchor {
	return Anchor{Name: AnchorKEDA, Knobs: "pollingInterval " + poll.String(), ephemeral: true,
		make: func(s policy.Settings) controller { return &keda{max: s.MaxWorkers, target: 1, poll: poll} }}
}

// GitLab is GitLab Runner's autoscaler policy with idle_count free job
// slots and idle_time (both unset, 0, by default).
func GitLab(idleCount int, idleTime time.Duration) Anchor {
	return Anchor{Name: AnchorGitLab, Knobs: fmt.Sprintf("idle_count %d, idle_time %s", idleCount, idleTime),
		make: func(s policy.Settings) controller {
			return &gitlab{max: s.MaxWorkers, capacity: max(s.JobsPerWorker, 1), idleCount: idleCount, idleTime: idleTime, maxUse: s.MaxJobsPerWorker}
		}}
}

// HPA is a Kubernetes HPA with an AverageValue target of target jobs per
// worker slot and a scale-down stabilization window (default 300 s).
func HPA(target float64, window time.Duration) Anchor {
	return Anchor{Name: AnchorHPA, Knobs: fmt.Sprintf("target %.2g, stabilizationWindow %s", target, window),
		make: func(s policy.Settings) controller {
			return &hpa{min: max(s.MinWorkers, 1), max: s.MaxWorkers, target: target * float64(max(s.JobsPerWorker, 1)), window: window}
		}}
}

// DefaultAnchors are the anchors with their own defaults: ARC's
// minRunners is the pool's min_workers (0 by default, as ARC's), KEDA
// polls every 30 s, GitLab's idle_count and idle_time are unset, the HPA
// aims at one job per slot with a 300 s stabilization window.
func DefaultAnchors(s policy.Settings) []Anchor {
	return []Anchor{ARC(s.MinWorkers), KEDA(kedaPollingInterval), GitLab(0, 0), HPA(1, hpaDownscaleWindow)}
}

// AnchorSweeps is each anchor over its main knobs, defaults included: the
// points that draw its wait/cost front.
func AnchorSweeps() [][]Anchor {
	var arcs, kedas, gitlabs, hpas []Anchor
	for _, n := range []int{0, 1, 2, 3, 4, 6, 8} {
		arcs = append(arcs, ARC(n))
	}
	for _, p := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute} {
		kedas = append(kedas, KEDA(p))
	}
	for _, n := range []int{0, 1, 2, 3, 5} {
		for _, t := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 20 * time.Minute} {
			gitlabs = append(gitlabs, GitLab(n, t))
		}
	}
	for _, target := range []float64{0.5, 0.67, 0.8, 1} {
		for _, w := range []time.Duration{0, time.Minute, hpaDownscaleWindow} {
			hpas = append(hpas, HPA(target, w))
		}
	}
	return [][]Anchor{arcs, kedas, gitlabs, hpas}
}

// arc is actions-runner-controller in runner scale set mode (gha-runner-
// scale-set). Its listener computes, from the job messages GitHub pushes
// (long poll, no polling delay),
//
//	desired = min(maxRunners, minRunners + assigned jobs)
//
// (cmd/ghalistener/worker/worker.go, setDesiredWorkerState:
// targetRunnerCount := min(MinRunners+count, MaxRunners), count being the
// jobs assigned to the scale set: queued and running). The
// EphemeralRunnerSet creates runners up to it and deletes idle ones above
// it; every runner is ephemeral: it runs one job and is removed. The
// minRunners runners are the warm pool.
type arc struct {
	min, max int
	want     int
}

func (a *arc) queued(*world, int)           {}
func (a *arc) started(*world, int, *worker) {}
func (a *arc) ready(*world, *worker)        {}
func (a *arc) finished(w *world, _ int, wk *worker) {
	w.stop(wk) // ephemeral: one job per runner
}

func (a *arc) reconcile(w *world) time.Duration {
	a.want = min(a.max, a.min+w.pendingJobs()+w.running)
	current := w.provisioning + w.ready
	for ; current < a.want; current++ {
		w.create()
	}
	if current > a.want {
		excess := current - a.want
		w.idleOldestFirst(func(wk *worker) bool {
			w.stop(wk)
			excess--
			return excess > 0
		})
	}
	return -1
}

func (a *arc) desired() int { return a.want }

// kedaPollingInterval is ScaledJob's pollingInterval default.
const kedaPollingInterval = 30 * time.Second

// keda is a KEDA ScaledJob with the default scaling strategy. Every
// pollingInterval (30 s by default) it reads the queue length from its
// scaler and creates
//
//	maxScale = min(maxReplicaCount, ceil(queueLength / targetValue))
//	new jobs = max(0, maxScale - runningJobCount)
//
// (pkg/scaling/executor/scale_jobs.go: defaultScalingStrategy.
// GetEffectiveMaxScale returns maxScale - runningJobCount, runningJobCount
// being the Kubernetes Jobs not yet finished). The default strategy
// assumes the queue length includes the messages being processed, so it
// is pending + running here, with targetValue 1. Each Kubernetes Job runs
// one job and exits; KEDA never deletes one.
type keda struct {
	max, target int
	poll        time.Duration
	want        int
}

func (k *keda) queued(*world, int)           {}
func (k *keda) started(*world, int, *worker) {}
func (k *keda) ready(*world, *worker)        {}
func (k *keda) finished(w *world, _ int, wk *worker) {
	w.stop(wk)
}

func (k *keda) reconcile(w *world) time.Duration {
	if w.now%k.poll != 0 {
		return (w.now/k.poll + 1) * k.poll
	}
	queue := w.pendingJobs() + w.running
	k.want = min(k.max, policy.WorkersFor(queue, k.target))
	for range max(0, k.want-(w.provisioning+w.ready)) {
		w.create()
	}
	return w.now + k.poll
}

func (k *keda) desired() int { return k.want }

// gitlab is GitLab Runner's autoscaler (the docker-autoscaler and instance
// executors' taskscaler; the same rule as docker+machine's IdleCount and
// IdleTime): it keeps idle_count free job slots on top of the jobs it has
// taken, in instances of capacity_per_instance slots, up to max_instances,
//
//	instances = min(max_instances, ceil((pending + running + idle_count) / capacity_per_instance))
//
// and removes an instance that has been idle longer than idle_time when
// the others still hold idle_count free slots; an instance is removed
// after max_use_count jobs. Mapped from the pool: idle_count =
// idle_workers × jobs_per_worker, idle_time = idle_timeout, capacity =
// jobs_per_worker, max_use_count = max_jobs_per_worker. It reacts to every
// job at once. idle_count and idle_time are the anchor's knobs; GitLab
// leaves both unset (0) by default, and its docs' examples use
// idle_count 5 with idle_time 20m.
type gitlab struct {
	max, capacity, idleCount, maxUse int
	idleTime                         time.Duration
	want                             int
}

func (g *gitlab) queued(*world, int)           {}
func (g *gitlab) started(*world, int, *worker) {}
func (g *gitlab) ready(*world, *worker)        {}
func (g *gitlab) finished(w *world, _ int, wk *worker) {
	if g.maxUse > 0 && wk.jobsRun >= g.maxUse && wk.running == 0 {
		w.stop(wk)
	}
}

func (g *gitlab) reconcile(w *world) time.Duration {
	g.want = min(g.max, policy.WorkersFor(w.pendingJobs()+w.running+g.idleCount, g.capacity))
	current := w.provisioning + w.ready
	for ; current < g.want; current++ {
		w.create()
	}
	next := time.Duration(-1)
	w.idleOldestFirst(func(wk *worker) bool {
		due := wk.idleSince + g.idleTime
		if current <= g.want {
			return false
		}
		if due > w.now {
			next = due
			return false
		}
		w.stop(wk)
		current--
		return true
	})
	return next
}

func (g *gitlab) desired() int { return g.want }

// hpaSyncPeriod, hpaTolerance and hpaDownscaleWindow are the Kubernetes
// HPA's defaults (--horizontal-pod-autoscaler-sync-period,
// --horizontal-pod-autoscaler-tolerance, the scaleDown behavior's
// stabilizationWindowSeconds).
const (
	hpaSyncPeriod      = 15 * time.Second
	hpaTolerance       = 0.1
	hpaDownscaleWindow = 300 * time.Second
)

// hpa is a Kubernetes HorizontalPodAutoscaler on a Deployment of workers,
// scaled on an external metric: the pool's jobs (pending + running) with
// an AverageValue target of jobs_per_worker per pod. Every 15 s
// (pkg/controller/podautoscaler/horizontal.go and replica_calculator.go):
//
//	ratio   = (jobs / current) / target
//	desired = current                 if |ratio - 1| <= 0.1 (tolerance)
//	desired = ceil(ratio × current)   otherwise
//
// clamped to [minReplicas, maxReplicas], minReplicas at least 1 (the HPA
// does not scale from zero); a lower desired count is replaced by the
// highest recommendation of the stabilization window (scale-down
// stabilization, 300 s by default); the
// default scale-up behavior allows max(4 pods, 100%) per 15 s. Scale-down
// removes idle pods first (as a pod-deletion-cost annotation kept by the
// workers would make the ReplicaSet do); a busy pod chosen finishes its
// job first (a long terminationGracePeriodSeconds).
type hpa struct {
	min, max int
	target   float64
	window   time.Duration
	recs     []policy.Sample
	added    []policy.Step
	want     int
	booted   bool
}

func (h *hpa) queued(*world, int)            {}
func (h *hpa) started(*world, int, *worker)  {}
func (h *hpa) finished(*world, int, *worker) {}
func (h *hpa) ready(*world, *worker)         {}

func (h *hpa) reconcile(w *world) time.Duration {
	if !h.booted { // the Deployment exists with minReplicas
		h.booted = true
		for range h.min {
			w.create()
		}
	}
	if w.now%hpaSyncPeriod != 0 {
		return (w.now/hpaSyncPeriod + 1) * hpaSyncPeriod
	}
	current := w.provisioning + w.ready
	jobs := float64(w.pendingJobs() + w.running)
	rec := current
	if current > 0 {
		ratio := jobs / float64(current) / h.target
		if ratio > 1+hpaTolerance || ratio < 1-hpaTolerance {
			rec = int(ceilF(ratio * float64(current)))
		}
	}
	rec = min(max(rec, h.min), h.max)

	// Scale-down stabilization: the highest recommendation of the window.
	now := w.at()
	cutoff := now.Add(-h.window)
	kept := h.recs[:0]
	for _, s := range h.recs {
		if s.At.After(cutoff) {
			kept = append(kept, s)
		}
	}
	h.recs = append(kept, policy.Sample{At: now, Desired: rec})
	desired := rec
	if rec < current {
		top := rec
		for _, s := range h.recs {
			top = max(top, s.Desired)
		}
		desired = min(top, current)
	}
	// Default scale-up behavior: max(4 pods, 100%) per 15 s.
	if desired > current {
		addedRecently := 0
		keptSteps := h.added[:0]
		for _, s := range h.added {
			if s.At.After(now.Add(-hpaSyncPeriod)) {
				keptSteps = append(keptSteps, s)
				addedRecently += s.Workers
			}
		}
		h.added = keptSteps
		start := max(current-addedRecently, 0)
		desired = min(desired, max(start+4, 2*start))
	}
	h.want = desired
	switch {
	case desired > current:
		for range desired - current {
			w.create()
		}
		h.added = append(h.added, policy.Step{At: now, Workers: desired - current})
	case desired < current:
		excess := current - desired
		w.idleOldestFirst(func(wk *worker) bool {
			w.stop(wk)
			excess--
			return excess > 0
		})
		for i := len(w.workers) - 1; i >= 0 && excess > 0; i-- { // then busy pods, youngest first
			if wk := w.workers[i]; wk.state == wReady || wk.state == wProvisioning {
				w.stop(wk)
				excess--
			}
		}
	}
	return w.now + hpaSyncPeriod
}

func (h *hpa) desired() int { return h.want }

func ceilF(x float64) float64 {
	i := float64(int64(x))
	if x > i {
		return i + 1
	}
	return i
}
