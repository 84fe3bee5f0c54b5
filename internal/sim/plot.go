package sim

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// PlotSeries is one chart of a plot: a pool's run over time.
type PlotSeries struct {
	Title    string
	Start    time.Time
	Timeline *Timeline
	// Oracle is drawn as a reference line when set (its peak workers).
	OraclePeak int
}

// Plot geometry.
const (
	plotW      = 960
	plotH      = 340
	plotLeft   = 56
	plotRight  = 16
	plotTop    = 56
	plotBottom = 44
)

// Series colours and their legend names.
var plotLines = []struct {
	name, color, dash string
}{
	{"pending jobs", "#e8710a", ""},
	{"desired workers", "#1a73e8", "6 4"},
	{"workers (provisioning, idle, busy, draining)", "#188038", ""},
}

// WritePlot draws each series as a chart of pending jobs, desired workers
// and actual workers over time, stacked in one SVG written by hand (no
// plotting library). Each point is the highest value within its time
// bucket, so short peaks stay visible.
func WritePlot(w io.Writer, charts []PlotSeries) error {
	bw := bufio.NewWriter(w)
	height := plotH * max(len(charts), 1)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, height, plotW, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, c := range charts {
		chart(bw, c, i*plotH)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func chart(w *bufio.Writer, c PlotSeries, top int) {
	tl := c.Timeline
	x0, x1 := float64(plotLeft), float64(plotW-plotRight)
	y0, y1 := float64(top+plotH-plotBottom), float64(top+plotTop)
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, top+20, esc(c.Title))
	if tl == nil || len(tl.Pending) == 0 {
		fmt.Fprintf(w, `<text x="%d" y="%d">no data</text>`+"\n", plotLeft, top+plotH/2)
		return
	}
	n := len(tl.Pending)
	top1 := 1
	for i := range n {
		top1 = max(top1, tl.Pending[i], tl.Desired[i], tl.Workers[i])
	}
	top1 = max(top1, c.OraclePeak)
	yMax, yStep := niceScale(float64(top1))
	span := time.Duration(n) * tl.Step
	xs := func(i int) float64 { return x0 + (x1-x0)*float64(i)/float64(n) }
	ys := func(v float64) float64 { return y0 - (y0-y1)*v/yMax }

	// Grid and axes.
	for v := 0.0; v <= yMax+1e-9; v += yStep {
		y := ys(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, trimFloat(v))
	}
	tick := timeTick(span)
	for t := time.Duration(0); t <= span; t += tick {
		x := x0 + (x1-x0)*float64(t)/float64(span)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x, y0, x, y1)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, y0+16, esc(timeLabel(c.Start, t, tick)))
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", x0, y0, x0, y1)
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>`+"\n", (x0+x1)/2, y0+34, esc("time (UTC) from "+c.Start.UTC().Format("Mon 2006-01-02 15:04")))

	if c.OraclePeak > 0 {
		y := ys(float64(c.OraclePeak))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="2 3"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#666">oracle peak %d</text>`+"\n", x1, y-4, c.OraclePeak)
	}
	for k, series := range [][]int{tl.Pending, tl.Desired, tl.Workers} {
		var b strings.Builder
		for i, v := range series {
			fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", xs(i), ys(float64(v)), xs(i+1), ys(float64(v)))
		}
		l := plotLines[k]
		dash := ""
		if l.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, l.dash)
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", l.color, dash, strings.TrimSpace(b.String()))
	}
	// Legend.
	lx := x0
	for _, l := range plotLines {
		dash := ""
		if l.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, l.dash)
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"%s/>`, lx, top+34, lx+22, top+34, l.color, dash)
		fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+28, top+38, esc(l.name))
		lx += 28 + 6.5*float64(len(l.name)) + 24
	}
}

// niceScale returns an axis maximum and step (1, 2 or 5 × 10^k) for about
// five grid lines.
func niceScale(v float64) (float64, float64) {
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	step = max(step, 1)
	return math.Ceil(v/step) * step, step
}

func trimFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }

// timeTick picks an x-axis step giving at most a dozen ticks.
func timeTick(span time.Duration) time.Duration {
	for _, t := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if span/t <= 12 {
			return t
		}
	}
	return 7 * 24 * time.Hour
}

func timeLabel(start time.Time, at, tick time.Duration) string {
	t := start.Add(at).UTC()
	if tick >= 24*time.Hour {
		return t.Format("Mon 02")
	}
	if t.Hour() == 0 && t.Minute() == 0 && at > 0 {
		return t.Format("Mon")
	}
	return t.Format("15:04")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Charts are the report's plot: per pool, the configuration's run, with
// the oracle's peak when compared.
func (r *Report) Charts(start time.Time) []PlotSeries {
	var out []PlotSeries
	for _, p := range r.Pools {
		if len(p.Runs) == 0 {
			continue
		}
		c := PlotSeries{Title: fmt.Sprintf("pool %s: %s (%s)", p.Pool, p.Runs[0].Run, r.Trace), Start: start, Timeline: p.Runs[0].timeline}
		for _, x := range p.Runs[1:] {
			if x.Run == "oracle" {
				c.OraclePeak = x.Peak
			}
		}
		out = append(out, c)
	}
	return out
}
