package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/engine"
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
	if seen["polyline"] != 6 {
		t.Errorf("%d polylines, want 3 series × 2 pools", seen["polyline"])
	}
	if !strings.Contains(out.String(), "oracle peak") || !strings.Contains(out.String(), "b&amp;w") {
		t.Errorf("no oracle line or unescaped title")
	}
	// Empty charts still make a valid SVG.
	out.Reset()
	if err := WritePlot(&out, []PlotSeries{{Title: "empty"}}); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, out.Bytes())
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ v, max, step float64 }{{1, 1, 1}, {7, 8, 2}, {23, 25, 5}, {297, 300, 100}, {1234, 1500, 500}} {
		if m, s := niceScale(c.v); m != c.max || s != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.v, m, s, c.max, c.step)
		}
	}
}
