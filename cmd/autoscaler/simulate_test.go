package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/sim"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The README's first command, end to end: a generated burst, compared with
// the oracle and the anchors, plotted.
func TestSimulateGenerateBurstCompareAndPlot(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "burst.svg")
	code, out, errs := runCLI(t, "simulate", "--generate", "burst", "--compare", "--plot", svg, "--from", "2h50m", "--to", "3h40m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, row := range append([]string{"defaults", "oracle"}, sim.Anchors...) {
		if !strings.Contains(out, "| "+row+" | 329 |") {
			t.Errorf("table lacks the %q row:\n%s", row, out)
		}
	}
	if !strings.Contains(out, sim.TableHeader) {
		t.Errorf("no table header:\n%s", out)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var root string
	lines := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", svg, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				lines++
			}
		}
	}
	// Jobs waiting and running; the six runs' workers and the desired
	// count; the six runs' wait distributions.
	if root != "svg" || lines != 2+7+6 {
		t.Errorf("root %q with %d polylines, want svg with 15", root, lines)
	}
	if !bytes.Contains(b, []byte("time (UTC) from Mon 2026-01-05 08:50")) {
		t.Errorf("the plot does not start at --from (08:50)")
	}
}

// A config whose limits, not its policy, shape the result says so: the
// table's notes, a note under it, and an oracle under the same cap.
func TestSimulateSaysWhenALimitBoundTheRun(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "small.yaml")
	if err := os.WriteFile(cfg, []byte("pools:\n  - name: default\n    max_workers: 5\n    docker: {image: worker}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "simulate", "--config", cfg, "--generate", "burst", "--compare")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"Note: pool default, config: bound by max_workers for", "under max_workers 5: jobs queue for a slot"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSimulateTraceFileJSONAndConfig(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "three.csv")
	if err := os.WriteFile(trace, []byte("job_id,pool,queued_at,duration\nA,linux,100,50\nB,linux,120,10\nC,linux,155,20\nZ,windows,1,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`
pools:
  - name: linux
    idle_timeout: 30s
    docker: {image: worker}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace, "--provision", "10s", "--provision-p95", "0", "--json", "--compare")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(rep.Pools) != 1 || rep.Pools[0].Pool != "linux" || len(rep.Notes) != 1 {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Pools[0].Runs[0]
	// The hand-computed answer of internal/sim's three-job test.
	if r.Run != "config" || r.WorkerSeconds != 175 || r.WaitMax != 10 || r.Started != 2 || rep.Pools[0].Runs[1].WorkerSeconds != 105 {
		t.Errorf("runs %+v", rep.Pools[0].Runs)
	}
}

func TestSimulateSaveTraceAndReplay(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "steady.csv")
	code, first, errs := runCLI(t, "simulate", "--generate", "steady", "--span", "2h", "--seed", "4", "--save-trace", saved, "--idle-workers", "auto")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, again, errs := runCLI(t, "simulate", "--trace", saved, "--seed", "4", "--idle-workers", "auto")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	row := func(s string) string { return s[strings.Index(s, "| defaults"):] }
	if row(first) != row(again) {
		t.Errorf("replaying the saved trace gave another result:\n%s\n%s", first, again)
	}
}

func TestSimulateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"simulate"},
		{"simulate", "--generate", "burst", "--trace", "x.csv"},
		{"simulate", "--generate", "burst", "--idle-workers", "lots"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{
		{"simulate", "--generate", "weekly"},
		{"simulate", "--trace", "/does/not/exist.csv"},
		{"simulate", "--generate", "burst", "--config", "/does/not/exist.yaml"},
		{"simulate", "--generate", "burst", "--plot", "x.svg", "--from", "2h", "--to", "1h"},
	} {
		if code, _, _ := runCLI(t, args...); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
}

// simulate applies the config's routing rules: the trace's jobs came on
// pool "ci", which the config does not have, and only the rules send
// them to arm and x86 (with the rules ignored, nothing would run).
func TestSimulateRoutesWithTheConfigsRules(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "ci.csv")
	if err := os.WriteFile(trace, []byte("job_id,pool,queued_at,duration,labels\n"+
		"a1,ci,0,60,arch=arm64\na2,ci,1,60,arch=arm64;team=x\nx1,ci,2,60,arch=amd64\nx2,ci,3,60,arch=amd64\nx3,ci,4,60,arch=amd64\nz,ci,5,60,arch=s390x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	write := func(inputs string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(`
pools:
  - name: arm
    docker: {image: worker}
  - name: x86
    docker: {image: worker}
inputs:
`+inputs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := `  - name: ci
    format: cloudevents
    routes:
      - pool: arm
        match: {labels: {arch: arm64}}
      - pool: x86
        match: {pool: ci, labels: {arch: amd64}}
`
	write(rules)
	code, out, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace, "--provision", "10s", "--provision-p95", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	jobs := map[string]int{}
	for _, p := range rep.Pools {
		jobs[p.Pool] = p.Runs[0].Jobs
	}
	if jobs["arm"] != 2 || jobs["x86"] != 3 || len(jobs) != 2 {
		t.Errorf("jobs per pool %v, want arm 2 and x86 3", jobs)
	}
	if rep.Routing == nil || rep.Routing.Input != "ci" || rep.Routing.Unmatched != 1 {
		t.Errorf("routing %+v", rep.Routing)
	}
	if n := strings.Join(rep.Notes, "\n"); !strings.Contains(n, "1 job(s) skipped: no route: none of 2 rules matches {pool=ci labels.arch=s390x}") {
		t.Errorf("notes lack the unmatched job:\n%s", n)
	}

	t.Run("two inputs with rules need --input", func(t *testing.T) {
		write(rules + `  - name: other
    format: cloudevents
    subjects: [hodei.jobs.other.>]
    default_pool: x86
`)
		code, _, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace)
		if code != 2 || !strings.Contains(errs, "inputs ci, other all have routing rules") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		code, out, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace, "--input", "other", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rep sim.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Pools) != 1 || rep.Pools[0].Pool != "x86" || rep.Pools[0].Runs[0].Jobs != 6 {
			t.Errorf("--input other: every job to its default pool x86: %+v", rep.Pools)
		}
		if code, _, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace, "--input", "nope"); code != 2 || !strings.Contains(errs, `--input "nope": the config has no such input (inputs: ci, other)`) {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
}

// With budgets, --plot draws each budget's chart, the budget as its line,
// in the plot itself after the pools' charts (no second file).
func TestSimulatePlotDrawsTheBudgetLine(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "two.csv")
	var b strings.Builder
	b.WriteString("job_id,pool,queued_at,duration\n")
	for i := range 8 {
		fmt.Fprintf(&b, "a%d,a,%d,120\nb%d,b,%d,120\n", i, i, i, i)
	}
	if err := os.WriteFile(trace, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`
budgets:
  shared: {workers: 4}
pools:
  - name: a
    budget: shared
    priority: 10
    docker: {image: worker}
  - name: b
    budget: shared
    docker: {image: worker}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(dir, "plot.svg")
	code, out, errs := runCLI(t, "simulate", "--config", cfg, "--trace", trace, "--provision", "10s", "--provision-p95", "0", "--plot", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "## All pools in one engine") {
		t.Errorf("no shared report:\n%s", out)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	plot := string(data)
	pa, pb, bud := strings.Index(plot, "pool a: config"), strings.Index(plot, "pool b: config"), strings.Index(plot, "budget shared: workers of its pools")
	if pa < 0 || pb < 0 || bud < pa || bud < pb {
		t.Errorf("the plot lacks the pools' charts, then the budget's (indexes %d %d %d)", pa, pb, bud)
	}
	if !strings.Contains(plot, "budget shared 4") {
		t.Errorf("the plot lacks the budget's line (legend \"budget shared 4\")")
	}
	if _, err := os.Stat(filepath.Join(dir, "plot-budget.svg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a separate budget plot was written: %v", err)
	}
	if err := xml.Unmarshal(data, new(struct{})); err != nil {
		t.Errorf("the plot is not well-formed XML: %v", err)
	}
}
