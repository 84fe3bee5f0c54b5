// Package benchkit holds what the benchmark programs under bench/ share:
// the result format read by bench/report, an in-process NATS server, job
// event generation, percentiles, and process memory readings.
//
// Every figure a program reports is measured against a reference taken in
// the same run (machines here are shared and noisy), and no program fails
// on a number: a missed target is a result, not an error.
package benchkit

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Row is one line of the results table.
type Row struct {
	ID        string `json:"id"`        // "1", "2a", ...
	What      string `json:"what"`      // what is measured
	Reference string `json:"reference"` // the reference and its figure
	Ours      string `json:"ours"`      // the daemon's figure
	Ratio     string `json:"ratio"`     // ours / reference, as the row defines it
	Target    string `json:"target"`
	Met       string `json:"met"`  // "yes", "no", "n/a", "not run"
	Note      string `json:"note"` // why / what would close the gap / provider used
}

// Result is what one benchmark program writes: its rows, free-form detail
// lines for results.md, and the load of the machine around the run.
type Result struct {
	Program   string    `json:"program"`
	Started   time.Time `json:"started"`
	Took      string    `json:"took"`
	LoadStart string    `json:"load_start"`
	LoadEnd   string    `json:"load_end"`
	Rows      []Row     `json:"rows"`
	Details   []string  `json:"details"`
	Raw       any       `json:"raw,omitempty"`
}

// NewResult starts a result for program, recording the machine's load.
func NewResult(program string) *Result {
	return &Result{Program: program, Started: time.Now(), LoadStart: LoadAvg()}
}

// Detail adds a line to the result's details (Markdown).
func (r *Result) Detail(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.Details = append(r.Details, line)
	fmt.Fprintln(os.Stderr, line)
}

// Write finishes the result and writes it as JSON to path.
func (r *Result) Write(path string) error {
	r.LoadEnd = LoadAvg()
	r.Took = time.Since(r.Started).Round(time.Second).String()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// NotRun is a row for a benchmark that could not run, saying why.
func NotRun(id, what, why string) Row {
	return Row{ID: id, What: what, Reference: "-", Ours: "-", Ratio: "-", Target: "-", Met: "not run", Note: why}
}

// LoadAvg is /proc/loadavg's first three fields, or "?".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Percentile returns the p-th percentile (0..100) of sorted durations,
// nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Dist summarises a latency distribution.
type Dist struct {
	N                       int
	Min, P50, P95, P99, Max time.Duration
}

// Summarise sorts ds in place and returns its distribution.
func Summarise(ds []time.Duration) Dist {
	slices.Sort(ds)
	d := Dist{N: len(ds)}
	if len(ds) == 0 {
		return d
	}
	d.P50, d.P95, d.P99 = Percentile(ds, 50), Percentile(ds, 95), Percentile(ds, 99)
	d.Min, d.Max = ds[0], ds[len(ds)-1]
	return d
}

func (d Dist) String() string {
	return fmt.Sprintf("p50 %s / p95 %s / p99 %s (max %s, n=%d)", Dur(d.P50), Dur(d.P95), Dur(d.P99), Dur(d.Max), d.N)
}

// Dur formats a duration with three significant digits in a fitting unit.
func Dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g s", d.Seconds())
	}
}

// Rate formats a per-second rate.
func Rate(perSec float64) string {
	switch {
	case perSec >= 1e6:
		return fmt.Sprintf("%.2fM/s", perSec/1e6)
	case perSec >= 1e3:
		return fmt.Sprintf("%.0fk/s", perSec/1e3)
	default:
		return fmt.Sprintf("%.0f/s", perSec)
	}
}

// Ratio formats a ratio with two decimals and an "x".
func Ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

// YesNo renders a target check.
func YesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// Median returns the median of xs (a copy is sorted).
func Median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
