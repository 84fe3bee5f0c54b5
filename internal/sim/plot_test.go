package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// ParseSVG checks that b is well-formed XML with an <svg> root and
// counts its elements by name.
func parseSVG(t *testing.T, b []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	seen := map[string]int{}
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			seen[se.Name.Local]++
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return seen
}

func TestWritePlot(t *testing.T) {
	tr, err := Generate(GenOptions{Kind: Burst, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr.Jobs = append(tr.Jobs, Job{ID: "<&>", Pool: "b&w", Queued: time.Hour, Duration: time.Minute})
	a, b := poolConfig(nil), poolConfig(nil)
	a.Name, b.Name = "default", "b&w"
	rep, err := Simulate(Options{Trace: tr, Name: `burst "quoted" <name>`, Pools: []engine.PoolConfig{a, b},
		Provisioning: Provisioning{Median: 20 * time.Second, P95: 30 * time.Second}, Compare: true, Timeline: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WritePlot(&out, rep.Charts(tr.Start)); err != nil {
		t.Fatal(err)
	}
	seen := parseSVG(t, out.Bytes())
	// Per pool: jobs waiting and running; the six runs' workers and the
	// desired count; the six runs' wait distributions.
	if want := 2 * (2 + 7 + 6); seen["polyline"] != want {
		t.Errorf("%d polylines, want %d", seen["polyline"], want)
	}
	svg := out.String()
	for _, want := range []string{">jobs<", ">workers<", ">share of jobs started<", "queue wait, queued to started (s)", "time (UTC) from Mon 2026-01-05 06:00",
		">max_workers 10<", ">oracle<", ">ARC<", ">KEDA ScaledJob<", ">GitLab runner<", ">HPA<", "b&amp;w"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the plot lacks %q", want)
		}
	}
	// The burst needs hundreds of workers: max_workers 10 is a line on
	// the scale of one run, so a pool allowed 1000 says it is off the
	// scale instead of flattening the chart.
	big := poolConfig(func(s *policy.Settings) { s.MaxWorkers = 1000 })
	big.Name = "default"
	rep, err = Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{big}, Provisioning: Provisioning{Median: 20 * time.Second}, Timeline: true})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := WritePlot(&out, rep.Charts(tr.Start)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "max_workers 1000 (above the scale)") {
		t.Errorf("max_workers far above the runs is not said")
	}
	// Empty charts still make a valid SVG.
	out.Reset()
	if err := WritePlot(&out, []PlotChart{{Title: "empty"}}); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, out.Bytes())
}

// --from and --to zoom: the timelines cover the window only, at a finer
// step.
func TestPlotWindow(t *testing.T) {
	tr, err := Generate(GenOptions{Kind: Burst, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pc := poolConfig(func(s *policy.Settings) { s.MaxWorkers, s.MaxConcurrentProvisioning = 1000, 1000 })
	pc.Name = "default"
	prov := Provisioning{Median: 20 * time.Second}
	whole, err := Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{pc}, Provisioning: prov, Timeline: true})
	if err != nil {
		t.Fatal(err)
	}
	zoom, err := Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{pc}, Provisioning: prov, Timeline: true, From: 3 * time.Hour, To: 3*time.Hour + 10*time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w, z := whole.Pools[0].Runs[0].Timeline(), zoom.Pools[0].Runs[0].Timeline()
	if z.From != 3*time.Hour || z.Step >= w.Step || time.Duration(len(z.Workers))*z.Step < 10*time.Minute {
		t.Fatalf("zoomed timeline from %v step %v (%d buckets); whole step %v", z.From, z.Step, len(z.Workers), w.Step)
	}
	peak := func(s []int) int { return slices.Max(s) }
	if peak(z.Pending) < 50 || peak(z.Pending) != peak(w.Pending) { // the burst at 09:00 is in the window
		t.Errorf("peak pending %d in the zoomed window, %d in the whole run", peak(z.Pending), peak(w.Pending))
	}
	var out bytes.Buffer
	if err := WritePlot(&out, zoom.Charts(tr.Start)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "time (UTC) from Mon 2026-01-05 09:00") {
		t.Errorf("the zoomed plot does not start at 09:00")
	}
	if _, err := Simulate(Options{Trace: tr, Pools: []engine.PoolConfig{pc}, Provisioning: prov, Timeline: true, From: time.Hour, To: time.Minute}); err == nil {
		t.Errorf("an empty window was accepted")
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ v, max, step float64 }{{1, 1, 1}, {7, 8, 2}, {23, 25, 5}, {297, 300, 100}, {1234, 1500, 500}} {
		if m, s := niceScale(c.v); m != c.max || s != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.v, m, s, c.max, c.step)
		}
	}
}
