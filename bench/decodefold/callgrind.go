package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
)

// counts are one callgrind run's instructions inside foldAll, and the
// inclusive counts of its two parts.
type counts struct {
	Total, Decode, Apply uint64
}

// parts are the functions whose inclusive counts are reported.
var parts = []struct {
	name   string
	symbol string
	field  func(*counts) *uint64
}{
	// Decode is a wrapper the compiler inlines into foldAll: its body is decode.
	{"decode", "internal/events.Decoder.decode [", func(c *counts) *uint64 { return &c.Decode }},
	// hodeijobs' Decode, or its body decode where Decode is inlined.
	{"decode", "internal/inputs/hodeijobs.(*Decoder).Decode [", func(c *counts) *uint64 { return &c.Decode }},
	{"decode", "internal/inputs/hodeijobs.(*Decoder).decode [", func(c *counts) *uint64 { return &c.Decode }},
	{"apply", "internal/engine.(*Engine).ApplyJob [", func(c *counts) *uint64 { return &c.Apply }},
}

// callgrindOnce runs this program under callgrind for n events and reads
// the counts with callgrind_annotate.
func callgrindOnce(n int, dir string, rep int, hodei bool) (counts, error) {
	var c counts
	self, err := os.Executable()
	if err != nil {
		return c, err
	}
	out := filepath.Join(dir, fmt.Sprintf("callgrind.%d.out", rep))
	fold, args := "main.foldAll", []string{"-events", strconv.Itoa(n)}
	if hodei {
		fold, args = "main.foldHodei", append(args, "-hodei")
	}
	cmd := exec.Command("valgrind", append([]string{"--tool=callgrind", "--toggle-collect=" + fold, "--callgrind-out-file=" + out, self}, args...)...)
	// Async preemption signals can trip callgrind's signal bookkeeping
	// (threads.c: vgCallgrind_post_signal); nothing else runs here anyway.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off", "GODEBUG=asyncpreemptoff=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return c, fmt.Errorf("valgrind: %w: %s", err, lastLines(b, 5))
	}
	ann, err := exec.Command("callgrind_annotate", "--inclusive=yes", out).Output()
	if err != nil {
		return c, fmt.Errorf("callgrind_annotate: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(ann))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(strings.ReplaceAll(f[0], ",", ""), 10, 64)
		if err != nil {
			continue
		}
		if strings.Contains(line, "PROGRAM TOTALS") {
			c.Total = v
		}
		for _, p := range parts {
			if strings.Contains(line, p.symbol) && *p.field(&c) == 0 {
				*p.field(&c) = v
			}
		}
	}
	if c.Total == 0 {
		return c, fmt.Errorf("no totals in callgrind_annotate's output")
	}
	return c, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// measure runs reps callgrind runs and writes row 0b (0bh with hodei)
// to out.
func measure(n, reps int, out string, hodei bool) error {
	row := ownRow
	if hodei {
		row = hodeiRow
	}
	res := benchkit.NewResult("decodefold")
	if _, err := exec.LookPath("valgrind"); err != nil {
		res.Rows = append(res.Rows, benchkit.NotRun(row.id, row.what, "valgrind is not installed (apt-get install valgrind)"))
		return res.Write(out)
	}
	dir, err := os.MkdirTemp("", "hodei-bench-callgrind-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	runs, err := callgrindRuns(n, reps, dir, hodei)
	if err != nil {
		res.Rows = append(res.Rows, benchkit.NotRun(row.id, row.what, "error: "+err.Error()))
		return errors.Join(err, res.Write(out))
	}
	p := perEvent(runs, n)
	res.Detail("- callgrind, %s, %d events, %d runs: per event %.0f instructions (min %.0f, max %.0f): decode %.0f, engine ApplyJob %.0f, the rest (%s) %.0f",
		row.input, n, reps, p.med, p.min, p.max, p.decode, p.apply, row.rest, p.med-p.decode-p.apply)
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        row.id,
		What:      row.what + " (callgrind, load-independent): " + row.measured,
		Reference: row.reference,
		Ours:      fmt.Sprintf("%.0f per event (min %.0f, max %.0f over %d runs): decode %.0f, ApplyJob %.0f, rest %.0f", p.med, p.min, p.max, reps, p.decode, p.apply, p.med-p.decode-p.apply),
		Ratio:     row.ratio(p.med),
		Target:    "issue 16: counted before and after each optimisation (no numeric target)",
		Met:       "n/a",
		Note:      fmt.Sprintf(row.note, n),
	})
	return res.Write(out)
}

// instructionRow is what rows 0b and 0bh say about their input.
type instructionRow struct {
	id, what, measured, reference string
	input, rest                   string // for the detail line
	ratio                         func(perEventMedian float64) string
	note                          string // a format taking the event count
}

var ownRow = instructionRow{
	id:        "0b",
	what:      "instructions per event, decode and fold",
	measured:  "the consumer's decode and the loop's apply of one job event",
	reference: "before the envelope scanner (commit cf5e0c6, after the busy-safety merge): 17,441 per event (decode 14,269 of which goccy/go-json 6,722 and CheckJSONText 5,454; ApplyJob 2,594); issue 16's start (commit 1d98f73): 11,976",
	input:     "own contract",
	rest:      "subject type, counter, loop",
	ratio:     func(med float64) string { return fmt.Sprintf("%.3f of before the scanner", med/17441) },
	note:      "bench/decodefold, GOMAXPROCS=1 GOGC=off, %d events of the stream mix, only foldAll collected; excludes the JetStream metadata parse and the channel to the loop",
}

var hodeiRow = instructionRow{
	id:        "0bh",
	what:      "instructions per event, Hodei decode and fold",
	measured:  "the hodei-jobs input's decode (hodeijobs.Decoder.Decode) and the loop's apply of one Hodei event",
	reference: "no reference: before and after each optimisation in BENCHMARKS.md's prose (row 1h's section)",
	input:     "hodei-jobs input",
	rest:      "counter, loop",
	ratio:     func(float64) string { return "n/a" },
	note:      "bench/decodefold -hodei, GOMAXPROCS=1 GOGC=off, %d events of the stream mix as Hodei's (row 1h's events), only foldHodei collected; excludes the JetStream metadata parse and the channel to the loop",
}

// callgrindRuns runs reps callgrind runs of n events.
func callgrindRuns(n, reps int, dir string, hodei bool) ([]counts, error) {
	var runs []counts
	for i := range reps {
		c, err := callgrindOnce(n, dir, i, hodei)
		for try := 1; err != nil && try < 3; try++ { // valgrind under Go now and then asserts
			log.Printf("callgrind run %d, try %d: %v", i, try, err)
			c, err = callgrindOnce(n, dir, i, hodei)
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, c)
	}
	return runs, nil
}

// perEventCounts are the runs' instructions per event: the total's
// min, median and max, and the medians of decode and apply.
type perEventCounts struct {
	min, med, max, decode, apply float64
}

func perEvent(runs []counts, n int) perEventCounts {
	per := func(pick func(counts) uint64) (lo, med, hi float64) {
		var v []float64
		for _, r := range runs {
			v = append(v, float64(pick(r))/float64(n))
		}
		slices.Sort(v)
		return v[0], v[len(v)/2], v[len(v)-1]
	}
	var p perEventCounts
	p.min, p.med, p.max = per(func(c counts) uint64 { return c.Total })
	_, p.decode, _ = per(func(c counts) uint64 { return c.Decode })
	_, p.apply, _ = per(func(c counts) uint64 { return c.Apply })
	return p
}
