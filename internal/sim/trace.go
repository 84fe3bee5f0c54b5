// Package sim replays job traces in virtual time through the autoscaler's
// own engine (internal/engine.Engine, which calls internal/policy), with a
// simulated provider and a simulated scheduler, and measures what a
// configuration costs and how long jobs wait. It also computes the oracle
// (the physical limit) and replays the same trace under the published
// formulas of other autoscalers, so a configuration can be compared with
// them before it is deployed. See docs/simulator.md.
package sim

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// Job is one job of a trace: when it was queued and how long it runs once
// it has a worker.
type Job struct {
	ID       string
	Pool     string
	Queued   time.Duration // since Trace.Start
	Duration time.Duration
	// Attrs are what the job's event says that routing rules match on
	// (labels, provider, image, resources); its Pool is unused: Pool is
	// the event's own pool, empty when the event names none. RouteTrace
	// sets Pool from them.
	Attrs routing.Attrs
}

// Trace is a list of jobs in order of arrival.
type Trace struct {
	// Start is the wall-clock instant of offset 0 (schedules and the plot
	// use it).
	Start time.Time
	Jobs  []Job
	// Skipped counts jobs of the input whose duration could not be
	// derived (see FromEvents), or that no routing rule matched (see
	// RouteTrace), with the reasons.
	Skipped map[string]int
	// Routing says how RouteTrace routed the jobs (nil: not routed).
	Routing *RouteSummary
}

// DefaultStart is where a trace without absolute times begins: a Monday,
// 00:00 UTC.
var DefaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Pools returns the trace's pools in order of first appearance.
func (t *Trace) Pools() []string {
	var out []string
	seen := map[string]bool{}
	for _, j := range t.Jobs {
		if !seen[j.Pool] {
			seen[j.Pool] = true
			out = append(out, j.Pool)
		}
	}
	return out
}

// Span is the time from the start to the last arrival.
func (t *Trace) Span() time.Duration {
	if len(t.Jobs) == 0 {
		return 0
	}
	return t.Jobs[len(t.Jobs)-1].Queued
}

func (t *Trace) sort() {
	slices.SortStableFunc(t.Jobs, func(a, b Job) int { return cmp.Compare(a.Queued, b.Queued) })
}

func (t *Trace) skip(reason string) {
	if t.Skipped == nil {
		t.Skipped = map[string]int{}
	}
	t.Skipped[reason]++
}

// CSVHeader is the header of a CSV trace.
const CSVHeader = "job_id,pool,queued_at,duration"

// csvAttrColumns are the optional columns of a CSV trace that routing
// rules match on (routing.Attrs): labels as k=v pairs separated by ';',
// the preferred provider, the image, cpu_millis, memory_mb and gpu
// (true or false).
var csvAttrColumns = []string{"labels", "provider", "image", "cpu_millis", "memory_mb", "gpu"}

// ReadCSV reads a trace with the header job_id,pool,queued_at,duration:
// queued_at in seconds from the trace's start or an RFC 3339 time,
// duration in seconds of running time (or a Go duration such as 5m). With
// RFC 3339 times the trace starts at the earliest; otherwise at start.
// The optional columns labels, provider, image, cpu_millis, memory_mb and
// gpu are what routing rules match on (RouteTrace); with them the pool
// column may be left out or empty, for the rules to choose.
func ReadCSV(r io.Reader, start time.Time) (*Trace, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	hasAttrs := false
	for _, h := range csvAttrColumns {
		_, ok := col[h]
		hasAttrs = hasAttrs || ok
	}
	for _, h := range strings.Split(CSVHeader, ",") {
		if _, ok := col[h]; !ok && (h != "pool" || !hasAttrs) {
			return nil, fmt.Errorf("CSV header %q lacks column %q: want %s", strings.Join(head, ","), h, CSVHeader)
		}
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	type row struct {
		job   Job
		abs   time.Time
		isAbs bool
	}
	var rows []row
	anyAbs, anyRel := false, false
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		var x row
		x.job.ID, x.job.Pool = rec[col["job_id"]], field(rec, "pool")
		if x.job.ID == "" || (x.job.Pool == "" && !hasAttrs) {
			return nil, fmt.Errorf("CSV line %d: job_id and pool are required (pool may be empty only with columns for routing rules: %s)", line, strings.Join(csvAttrColumns, ", "))
		}
		if hasAttrs {
			if x.job.Attrs, err = csvAttrs(field, rec); err != nil {
				return nil, fmt.Errorf("CSV line %d: %w", line, err)
			}
		}
		q := strings.TrimSpace(rec[col["queued_at"]])
		if secs, err := strconv.ParseFloat(q, 64); err == nil && secs >= 0 {
			x.job.Queued = seconds(secs)
			anyRel = true
		} else if t, err := time.Parse(time.RFC3339Nano, q); err == nil {
			x.abs, x.isAbs, anyAbs = t, true, true
		} else {
			return nil, fmt.Errorf("CSV line %d: queued_at %q is neither seconds from the start nor an RFC 3339 time", line, q)
		}
		if x.job.Duration, err = parseSeconds(rec[col["duration"]]); err != nil {
			return nil, fmt.Errorf("CSV line %d: duration: %w", line, err)
		}
		rows = append(rows, x)
	}
	if anyAbs && anyRel {
		return nil, errors.New("CSV mixes queued_at in seconds and RFC 3339 times: use one form")
	}
	tr := &Trace{Start: start, Jobs: make([]Job, 0, len(rows))}
	if anyAbs {
		tr.Start = rows[0].abs
		for _, x := range rows {
			if x.abs.Before(tr.Start) {
				tr.Start = x.abs
			}
		}
	}
	for _, x := range rows {
		if x.isAbs {
			x.job.Queued = x.abs.Sub(tr.Start)
		}
		tr.Jobs = append(tr.Jobs, x.job)
	}
	tr.sort()
	return tr, nil
}

// csvAttrs reads a row's routing attributes.
func csvAttrs(field func([]string, string) string, rec []string) (routing.Attrs, error) {
	a := routing.Attrs{Provider: field(rec, "provider"), Image: field(rec, "image")}
	if l := field(rec, "labels"); l != "" {
		a.Labels = map[string]string{}
		for _, kv := range strings.Split(l, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || strings.TrimSpace(k) == "" {
				return a, fmt.Errorf("labels %q: want key=value pairs separated by ';'", l)
			}
			a.Labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for _, n := range []struct {
		name string
		to   *int64
	}{{"cpu_millis", &a.CPUMillis}, {"memory_mb", &a.MemoryMB}} {
		if v := field(rec, n.name); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < 0 {
				return a, fmt.Errorf("%s %q: want a whole number, not negative", n.name, v)
			}
			*n.to = x
		}
	}
	if v := field(rec, "gpu"); v != "" {
		g, err := strconv.ParseBool(v)
		if err != nil {
			return a, fmt.Errorf("gpu %q: want true or false", v)
		}
		a.GPU = g
	}
	return a, nil
}

// WriteCSV writes the trace in the CSV form ReadCSV reads, with queued_at
// in seconds from the start, and the routing columns when a job has
// routing attributes or no pool.
func WriteCSV(w io.Writer, t *Trace) error {
	bw := bufio.NewWriter(w)
	attrs := slices.ContainsFunc(t.Jobs, func(j Job) bool { return j.Pool == "" || !attrsEmpty(j.Attrs) })
	head := CSVHeader
	if attrs {
		head += "," + strings.Join(csvAttrColumns, ",")
	}
	fmt.Fprintf(bw, "# start %s\n%s\n", t.Start.UTC().Format(time.RFC3339), head)
	cw := csv.NewWriter(bw)
	for _, j := range t.Jobs {
		rec := []string{j.ID, j.Pool, fmtSeconds(j.Queued), fmtSeconds(j.Duration)}
		if attrs {
			a := j.Attrs
			keys := slices.Sorted(maps.Keys(a.Labels))
			kv := make([]string, len(keys))
			for i, k := range keys {
				kv[i] = k + "=" + a.Labels[k]
			}
			num := func(v int64) string {
				if v == 0 {
					return ""
				}
				return strconv.FormatInt(v, 10)
			}
			gpu := ""
			if a.GPU {
				gpu = "true"
			}
			rec = append(rec, strings.Join(kv, ";"), a.Provider, a.Image, num(a.CPUMillis), num(a.MemoryMB), gpu)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("writing the CSV trace: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing the CSV trace: %w", err)
	}
	return bw.Flush()
}

func attrsEmpty(a routing.Attrs) bool {
	return a.Provider == "" && a.Image == "" && len(a.Labels) == 0 && a.CPUMillis == 0 && a.MemoryMB == 0 && !a.GPU
}

func fmtSeconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// parseSeconds reads seconds (a number) or a Go duration ("5m").
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if v < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return seconds(v), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds or a duration such as 5m", s)
	}
	return d, nil
}

// Event is one job event of the contract, as a trace source sees it.
type Event struct {
	Kind  domain.JobKind
	Pool  string
	JobID string
	Time  time.Time
	// Duration is data.labels.duration of a queued event, if any.
	Duration time.Duration
	// Attrs are a queued event's labels and resources, for routing rules.
	Attrs routing.Attrs
}

// FromEvents folds job events (the HODEI_JOBS stream, or its NDJSON dump)
// into a trace. A job's queue time is its queued event's time (its started
// event's if the queued one is missing); its running time is taken, in
// order of preference, from
//  1. its started and finished events: finished - started;
//  2. the queued event's data.labels.duration (seconds or a Go duration),
//     for traces that hold only queued events;
//  3. its queued and finished events: finished - queued, which includes
//     the time the job waited, so it overstates the running time.
//
// Jobs with none of these are skipped and counted by reason.
func FromEvents(evs []Event) *Trace {
	type acc struct {
		pool                       string
		queued, started, finished  time.Time
		label                      time.Duration
		attrs                      routing.Attrs
		hasQ, hasS, hasF, hasLabel bool
		order                      int
	}
	jobs := map[string]*acc{}
	var order []string
	for _, e := range evs {
		a := jobs[e.Pool+"\x00"+e.JobID]
		if a == nil {
			a = &acc{pool: e.Pool, order: len(order)}
			jobs[e.Pool+"\x00"+e.JobID] = a
			order = append(order, e.JobID)
		}
		switch e.Kind {
		case domain.JobQueued:
			if !a.hasQ {
				a.queued, a.hasQ, a.attrs = e.Time, true, e.Attrs
			}
			if e.Duration > 0 {
				a.label, a.hasLabel = e.Duration, true
			}
		case domain.JobStarted:
			a.started, a.hasS = e.Time, true // the last start wins (a redelivery)
		case domain.JobFinished:
			if !a.hasF {
				a.finished, a.hasF = e.Time, true
			}
		}
	}
	tr := &Trace{}
	type found struct {
		job Job
		at  time.Time
	}
	var all []found
	keys := make([]string, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return jobs[a].order - jobs[b].order })
	for _, k := range keys {
		a := jobs[k]
		id := order[a.order]
		q := a.queued
		if !a.hasQ {
			if !a.hasS {
				tr.skip("no queued or started event")
				continue
			}
			q = a.started
		}
		var d time.Duration
		switch {
		case a.hasS && a.hasF && !a.finished.Before(a.started):
			d = a.finished.Sub(a.started)
		case a.hasLabel:
			d = a.label
		case a.hasQ && a.hasF && !a.finished.Before(a.queued):
			d = a.finished.Sub(a.queued)
		default:
			tr.skip("no finished event and no labels.duration")
			continue
		}
		all = append(all, found{Job{ID: id, Pool: a.pool, Duration: d, Attrs: a.attrs}, q})
	}
	if len(all) == 0 {
		tr.Start = DefaultStart
		return tr
	}
	tr.Start = all[0].at
	for _, f := range all {
		if f.at.Before(tr.Start) {
			tr.Start = f.at
		}
	}
	tr.Jobs = make([]Job, len(all))
	for i, f := range all {
		f.job.Queued = f.at.Sub(tr.Start)
		tr.Jobs[i] = f.job
	}
	tr.sort()
	return tr
}

// ndjsonEvent is a structured-mode CloudEvent with the job data; a
// "subject" member (as some stream dumps add) names the pool when the data
// does not.
type ndjsonEvent struct {
	Type    string         `json:"type"`
	Time    time.Time      `json:"time"`
	Subject string         `json:"subject"`
	Data    domain.JobData `json:"data"`
}

// ReadNDJSON reads one CloudEvent of the event contract per line (what
// HODEI_JOBS holds) and folds them with FromEvents. Lines of other types
// are ignored; lines that are not JSON are errors.
func ReadNDJSON(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var evs []Event
	for line := 1; sc.Scan(); line++ {
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		var ce ndjsonEvent
		if err := json.Unmarshal([]byte(b), &ce); err != nil {
			return nil, fmt.Errorf("NDJSON line %d: %w", line, err)
		}
		var kind domain.JobKind
		switch ce.Type {
		case domain.TypeJobQueued:
			kind = domain.JobQueued
		case domain.TypeJobStarted:
			kind = domain.JobStarted
		case domain.TypeJobFinished:
			kind = domain.JobFinished
		default:
			continue
		}
		pool := ce.Data.Pool
		if pool == "" && ce.Subject != "" {
			if parts := strings.Split(ce.Subject, "."); len(parts) >= 4 {
				pool = parts[len(parts)-2]
			}
		}
		if ce.Data.JobID == "" || pool == "" || ce.Time.IsZero() {
			return nil, fmt.Errorf("NDJSON line %d: a job event needs time, data.job_id and data.pool", line)
		}
		evs = append(evs, Event{Kind: kind, Pool: pool, JobID: ce.Data.JobID, Time: ce.Time, Duration: labelDuration(ce.Data.Labels),
			Attrs: eventAttrs(ce.Data.Labels, ce.Data.Resources)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading NDJSON: %w", err)
	}
	return FromEvents(evs), nil
}

// eventAttrs are what a job event of the contract says that routing
// rules match on.
func eventAttrs(labels map[string]string, res *domain.Resources) routing.Attrs {
	a := routing.Attrs{Labels: labels}
	if res != nil {
		a.CPUMillis, a.MemoryMB = res.CPUMillis, res.MemoryMB
	}
	return a
}

func labelDuration(labels map[string]string) time.Duration {
	v, ok := labels["duration"]
	if !ok {
		return 0
	}
	d, err := parseSeconds(v)
	if err != nil {
		return 0
	}
	return d
}

// ReadTrace reads a CSV or NDJSON trace, by its extension (.csv; .ndjson,
// .jsonl, .json) or, failing that, by its first character ('{' is
// NDJSON). start is where a CSV with relative times begins.
func ReadTrace(r io.Reader, name string, start time.Time) (*Trace, error) {
	br := bufio.NewReader(r)
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return ReadCSV(br, start)
	case strings.HasSuffix(lower, ".ndjson"), strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".json"):
		return ReadNDJSON(br)
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return nil, fmt.Errorf("reading trace %s: empty", name)
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			continue
		case '{':
			return ReadNDJSON(br)
		}
		return ReadCSV(br, start)
	}
}
