package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is what one run of one pool cost and how long its jobs waited.
type Result struct {
	Pool string `json:"pool"`
	// Run names the policy: the config's label, "oracle", or an anchor.
	Run string `json:"run"`
	// Knobs are an anchor's settings ("minRunners 2").
	Knobs string `json:"knobs,omitempty"`
	Jobs  int    `json:"jobs"`
	// Unfinished jobs never got a worker (their wait counts up to the end).
	Unfinished int `json:"unfinished,omitempty"`
	// Queue wait (queued to started), seconds.
	WaitP50 float64 `json:"wait_p50_s"`
	WaitP95 float64 `json:"wait_p95_s"`
	WaitP99 float64 `json:"wait_p99_s"`
	WaitMax float64 `json:"wait_max_s"`
	// WorkerSeconds are provisioned worker-seconds: from each create
	// request to its stop (booting and idle time included).
	WorkerSeconds float64 `json:"worker_seconds"`
	// BusySeconds are worker-seconds with at least one job running.
	BusySeconds float64 `json:"busy_seconds"`
	// Utilization is BusySeconds / WorkerSeconds.
	Utilization float64 `json:"utilization"`
	Started     int     `json:"workers_started"`
	Stopped     int     `json:"workers_stopped"`
	Peak        int     `json:"peak_workers"`
	// VsOracle is WorkerSeconds / the oracle's (0 when not compared).
	VsOracle float64 `json:"vs_oracle,omitempty"`
	// CappedAt is set on the oracle when it was computed under that
	// max_workers (its peak would exceed it).
	CappedAt int `json:"oracle_under_max_workers,omitempty"`
	// Bounds are the limits that held the run back, if any.
	Bounds []Bound `json:"bounds,omitempty"`
	// Elapsed is the real time the run took.
	Elapsed time.Duration `json:"-"`

	timeline *Timeline
	// waits are the run's queue waits at evenly spaced ranks, sorted (at
	// most waitPoints of them), for the plot's distribution.
	waits []float64
	// lives are the oracle's workers, for its timeline.
	lives []incarnation
	slots int
}

// waitPoints bounds the waits a result keeps for its distribution.
const waitPoints = 400

// Timeline is a run's pending and running jobs, desired and actual
// workers over a window of time, in fixed buckets holding each series'
// highest value within the bucket (short peaks stay visible).
type Timeline struct {
	// From is the window's start, as an offset from the trace's start.
	From    time.Duration `json:"from"`
	Step    time.Duration `json:"step"`
	Pending []int         `json:"pending"`
	Running []int         `json:"running"`
	Desired []int         `json:"desired"`
	Workers []int         `json:"workers"`
	buckets int
	last    [4]int
}

// newTimeline covers [from, to) in at most buckets buckets of at least a
// second.
func newTimeline(from, to time.Duration, buckets int) *Timeline {
	step := max((to-from)/time.Duration(buckets), time.Second)
	return &Timeline{From: from, Step: step, buckets: int((to-from)/step) + 1}
}

func (t *Timeline) record(at time.Duration, pending, running, desired, workers int) {
	cur := [4]int{pending, running, desired, workers}
	if at < t.From {
		t.last = cur
		return
	}
	i := int((at - t.From) / t.Step)
	if i >= t.buckets {
		return
	}
	for len(t.Pending) <= i { // buckets without samples carry the last values
		t.Pending = append(t.Pending, t.last[0])
		t.Running = append(t.Running, t.last[1])
		t.Desired = append(t.Desired, t.last[2])
		t.Workers = append(t.Workers, t.last[3])
	}
	t.Pending[i] = max(t.Pending[i], pending)
	t.Running[i] = max(t.Running[i], running)
	t.Desired[i] = max(t.Desired[i], desired)
	t.Workers[i] = max(t.Workers[i], workers)
	t.last = cur
}

// finish carries the last values to the window's end.
func (t *Timeline) finish() {
	if t == nil {
		return
	}
	for len(t.Pending) < t.buckets {
		t.Pending = append(t.Pending, t.last[0])
		t.Running = append(t.Running, t.last[1])
		t.Desired = append(t.Desired, t.last[2])
		t.Workers = append(t.Workers, t.last[3])
	}
}

// keepWaits samples sorted waits at evenly spaced ranks.
func keepWaits(sorted []float64) []float64 {
	if len(sorted) <= waitPoints {
		return slices.Clone(sorted)
	}
	out := make([]float64, waitPoints)
	for i := range out {
		out[i] = sorted[(i*(len(sorted)-1))/(waitPoints-1)]
	}
	return out
}

// Timeline returns the run's timeline, if it was recorded.
func (r *Result) Timeline() *Timeline { return r.timeline }

// measure fills a result from a finished world.
func measure(w *world, end time.Duration) Result {
	r := Result{Jobs: len(w.jobs), Peak: w.peak, Started: len(w.workers)}
	waits := make([]float64, len(w.jobs))
	for i, s := range w.startedAt {
		if s < 0 {
			r.Unfinished++
			s = end
		}
		waits[i] = (s - w.jobs[i].Queued).Seconds()
	}
	r.WaitP50, r.WaitP95, r.WaitP99, r.WaitMax = percentiles(waits)
	r.waits = keepWaits(waits)
	for _, wk := range w.workers {
		stop := wk.stopped
		if wk.state != wStopped {
			stop = end
			if wk.running > 0 {
				wk.busy += end - wk.busySince
			}
		} else {
			r.Stopped++
		}
		r.WorkerSeconds += (stop - wk.created).Seconds()
		r.BusySeconds += wk.busy.Seconds()
	}
	if r.WorkerSeconds > 0 {
		r.Utilization = r.BusySeconds / r.WorkerSeconds
	}
	return r
}

// percentiles returns the nearest-rank p50, p95, p99 and the maximum.
func percentiles(v []float64) (p50, p95, p99, maxV float64) {
	if len(v) == 0 {
		return
	}
	slices.Sort(v)
	rank := func(p float64) float64 { return v[max(int(math.Ceil(p*float64(len(v))))-1, 0)] }
	return rank(0.50), rank(0.95), rank(0.99), v[len(v)-1]
}

// Report is the outcome of a simulation: per pool, one result per run.
type Report struct {
	Trace        string       `json:"trace"`
	Provisioning string       `json:"provisioning"`
	Pools        []PoolReport `json:"pools"`
	// Notes are what the reader should know (ignored pools, skipped jobs).
	Notes []string `json:"notes,omitempty"`
	// Routing is how the config's routing rules routed the trace (nil:
	// the trace was not routed).
	Routing *RouteSummary `json:"routing,omitempty"`
}

// PoolReport holds a pool's runs: the configuration first, then the
// oracle and the anchors when compared.
type PoolReport struct {
	Pool       string   `json:"pool"`
	MaxWorkers int      `json:"max_workers"`
	Runs       []Result `json:"runs"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes one table per pool.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Trace: %s. Provisioning: %s.\n", r.Trace, r.Provisioning)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	for _, p := range r.Pools {
		fmt.Fprintf(&b, "\n### Pool %s\n\n", p.Pool)
		b.WriteString(TableHeader)
		for i, x := range p.Runs {
			b.WriteString(x.Row(p.note(i)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TableHeader is the Markdown table header of Row.
const TableHeader = "| run | jobs | wait p50 | wait p95 | wait p99 | wait max | worker-s | vs oracle | utilization | started | stopped | peak | notes |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"

// note is what the notes column says of the pool's i-th run: the limits
// that bound the configuration's run, the cap the oracle was computed
// under, an anchor's knobs and whether it is better than the
// configuration on both wait and cost (ties count against the
// configuration).
func (p PoolReport) note(i int) string {
	x := p.Runs[i]
	var parts []string
	if x.Knobs != "" {
		parts = append(parts, x.Knobs)
	}
	if x.CappedAt > 0 {
		parts = append(parts, fmt.Sprintf("under max_workers %d: jobs queue for a slot", x.CappedAt))
	}
	for _, b := range x.Bounds {
		parts = append(parts, "bound by "+b.String())
	}
	if i > 0 && x.Run != "oracle" && len(p.Runs) > 0 {
		if Covers(x, p.Runs[0]) {
			parts = append(parts, "better than "+p.Runs[0].Run+" on both wait and cost")
		} else {
			parts = append(parts, "not better than "+p.Runs[0].Run+" on both")
		}
	}
	return strings.Join(parts, "; ")
}

// Row is the result as a Markdown table row, with a note.
func (x Result) Row(note string) string {
	vs := "-"
	if x.VsOracle > 0 {
		vs = fmt.Sprintf("%.2f×", x.VsOracle)
	}
	jobs := fmt.Sprint(x.Jobs)
	if x.Unfinished > 0 {
		jobs += fmt.Sprintf(" (%d never ran)", x.Unfinished)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %.0f | %s | %.0f%% | %d | %d | %d | %s |\n",
		x.Run, jobs, secs(x.WaitP50), secs(x.WaitP95), secs(x.WaitP99), secs(x.WaitMax),
		x.WorkerSeconds, vs, 100*x.Utilization, x.Started, x.Stopped, x.Peak, note)
}

func secs(s float64) string {
	switch {
	case s == 0:
		return "0 s"
	case s < 10:
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%.0f s", s)
}
