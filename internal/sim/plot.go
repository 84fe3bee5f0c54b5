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

// PlotChart is one pool's plot: its runs over time in two panels (jobs,
// then workers, each on its own labelled axis) and the distribution of
// their queue waits.
type PlotChart struct {
	Title string
	// Start is the trace's start (offset 0 of the timelines).
	Start time.Time
	// MaxWorkers is the pool's max_workers, drawn as a line.
	MaxWorkers int
	// LimitName names that line ("max_workers" if empty; a budget's
	// chart says "budget shared").
	LimitName string
	// Runs are the configuration's run first, then the oracle and the
	// anchors when compared.
	Runs []PlotRun
}

func (c PlotChart) limitName() string {
	if c.LimitName != "" {
		return c.LimitName
	}
	return "max_workers"
}

// PlotRun is one run as plotted.
type PlotRun struct {
	Name     string
	Timeline *Timeline
	// Waits are the run's queue waits, sorted (a sample at evenly spaced
	// ranks), for the distribution.
	Waits []float64
}

// Plot geometry.
const (
	plotW      = 960
	plotLeft   = 64
	plotRight  = 24
	titleH     = 30
	jobsH      = 190
	workersH   = 240
	cdfH       = 250
	panelGap   = 56 // room for a panel's x labels, axis title and the next legend
	legendStep = 16
)

// style is how a run's lines look.
type style struct{ color, dash string }

// runStyle gives the configuration, the oracle and each anchor a colour
// of their own.
func runStyle(name string, i int) style {
	switch name {
	case "oracle":
		return style{"#5f6368", "2 3"}
	case AnchorARC:
		return style{"#9334e6", ""}
	case AnchorKEDA:
		return style{"#b06000", ""}
	case AnchorGitLab:
		return style{"#d93025", ""}
	case AnchorHPA:
		return style{"#129eaf", ""}
	}
	if i == 0 {
		return style{"#188038", ""}
	}
	return style{"#444444", "4 2"}
}

// WritePlot draws each chart as an SVG written by hand (no plotting
// library). In the time panels each point is the highest value within its
// time bucket, so short peaks stay visible.
func WritePlot(w io.Writer, charts []PlotChart) error {
	bw := bufio.NewWriter(w)
	per := chartHeight()
	height := per * max(len(charts), 1)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, height, plotW, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, c := range charts {
		chart(bw, c, i*per)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func chartHeight() int {
	return titleH + 3*(legendStep+8) + jobsH + workersH + cdfH + 3*panelGap
}

// panel is a plotting area with its scales.
type panel struct {
	w              *bufio.Writer
	x0, x1, y0, y1 float64 // left, right, bottom, top
	yMax           float64
}

func (p panel) y(v float64) float64 { return p.y0 - (p.y0-p.y1)*v/p.yMax }

// axes draws the grid, the y axis with its label and the frame.
func (p panel) axes(yLabel string, yStep float64, format func(float64) string) {
	for v := 0.0; v <= p.yMax+1e-9; v += yStep {
		y := p.y(v)
		fmt.Fprintf(p.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", p.x0, y, p.x1, y)
		fmt.Fprintf(p.w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", p.x0-6, y+4, esc(format(v)))
	}
	fmt.Fprintf(p.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", p.x0, p.y0, p.x1, p.y0)
	fmt.Fprintf(p.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", p.x0, p.y0, p.x0, p.y1)
	cy := (p.y0 + p.y1) / 2
	fmt.Fprintf(p.w, `<text x="%d" y="%.1f" text-anchor="middle" fill="#333" transform="rotate(-90 %d %.1f)">%s</text>`+"\n", 16, cy, 16, cy, esc(yLabel))
}

func (p panel) xTitle(s string) {
	fmt.Fprintf(p.w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", (p.x0+p.x1)/2, p.y0+34, esc(s))
}

// timeAxis draws the time ticks of a window of span starting at from.
func (p panel) timeAxis(start time.Time, from, span time.Duration) {
	tick := timeTick(span)
	first := (from + tick - 1) / tick * tick
	for t := first; t <= from+span; t += tick {
		x := p.x0 + (p.x1-p.x0)*float64(t-from)/float64(span)
		fmt.Fprintf(p.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x, p.y0, x, p.y1)
		fmt.Fprintf(p.w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, p.y0+16, esc(timeLabel(start, t, tick)))
	}
}

func (p panel) line(points string, s style, width float64) {
	dash := ""
	if s.dash != "" {
		dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
	}
	fmt.Fprintf(p.w, `<polyline fill="none" stroke="%s" stroke-width="%.1f"%s points="%s"/>`+"\n", s.color, width, dash, strings.TrimSpace(points))
}

// steps is a series as a step line over the panel's width.
func (p panel) steps(series []int, n int) string {
	var b strings.Builder
	for i, v := range series {
		xa := p.x0 + (p.x1-p.x0)*float64(i)/float64(n)
		xb := p.x0 + (p.x1-p.x0)*float64(i+1)/float64(n)
		fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", xa, p.y(float64(v)), xb, p.y(float64(v)))
	}
	return b.String()
}

// legend draws entries in rows from y, wrapping at the chart's right
// edge, and returns the last row's y.
func legend(w *bufio.Writer, x float64, y int, entries []legendEntry) int {
	left := x
	for _, e := range entries {
		width := 28 + 6.3*float64(len([]rune(e.name))) + 22
		if x+width > plotW-plotRight && x > left {
			x, y = left, y+legendStep
		}
		if e.style.color == "" { // a caption
			fmt.Fprintf(w, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x, y, esc(e.name))
			x += 6.3*float64(len([]rune(e.name))) + 10
			continue
		}
		dash := ""
		if e.style.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, e.style.dash)
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"%s/>`, x, y-4, x+22, y-4, e.style.color, dash)
		fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", x+28, y, esc(e.name))
		x += width
	}
	return y
}

type legendEntry struct {
	name  string
	style style
}

func chart(w *bufio.Writer, c PlotChart, top int) {
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, top+20, esc(c.Title))
	var main *Timeline
	if len(c.Runs) > 0 {
		main = c.Runs[0].Timeline
	}
	if main == nil || len(main.Pending) == 0 {
		fmt.Fprintf(w, `<text x="%d" y="%d">no data</text>`+"\n", plotLeft, top+titleH+40)
		return
	}
	n := len(main.Pending)
	span := time.Duration(n) * main.Step
	x0, x1 := float64(plotLeft), float64(plotW-plotRight)
	y := top + titleH

	// Jobs: waiting and running, of the configuration's run.
	y += legendStep
	y = legend(w, x0, y, []legendEntry{{"jobs waiting (" + c.Runs[0].Name + ")", style{"#e8710a", ""}}, {"jobs running", style{"#4285f4", "5 3"}}})
	top1 := 1
	for i := range n {
		top1 = max(top1, main.Pending[i], main.Running[i])
	}
	yMax, yStep := niceScale(float64(top1))
	jobs := panel{w: w, x0: x0, x1: x1, y1: float64(y + 8), y0: float64(y + 8 + jobsH), yMax: yMax}
	jobs.axes("jobs", yStep, trimFloat)
	jobs.timeAxis(c.Start, main.From, span)
	jobs.line(jobs.steps(main.Pending, n), style{"#e8710a", ""}, 1.5)
	jobs.line(jobs.steps(main.Running, n), style{"#4285f4", "5 3"}, 1.2)
	jobs.xTitle("time (UTC) from " + c.Start.Add(main.From).UTC().Format("Mon 2006-01-02 15:04"))
	y = int(jobs.y0) + panelGap

	// Workers: every run's, the configuration's desired count and
	// max_workers.
	entries := []legendEntry{{"desired (" + c.Runs[0].Name + ")", style{"#1a73e8", "6 4"}}, {name: "workers:"}}
	top2 := 1
	for i, r := range c.Runs {
		if r.Timeline == nil {
			continue
		}
		entries = append(entries, legendEntry{r.Name, runStyle(r.Name, i)})
		for _, v := range r.Timeline.Workers {
			top2 = max(top2, v)
		}
	}
	for _, v := range main.Desired {
		top2 = max(top2, v)
	}
	showMax := c.MaxWorkers > 0 && float64(c.MaxWorkers) <= 1.5*float64(top2)
	if showMax {
		top2 = max(top2, c.MaxWorkers)
		entries = append(entries, legendEntry{fmt.Sprintf("%s %d", c.limitName(), c.MaxWorkers), style{"#c5221f", "1 3"}})
	}
	y = legend(w, x0, y, entries)
	yMax, yStep = niceScale(float64(top2))
	wk := panel{w: w, x0: x0, x1: x1, y1: float64(y + 8), y0: float64(y + 8 + workersH), yMax: yMax}
	wk.axes("workers", yStep, trimFloat)
	wk.timeAxis(c.Start, main.From, span)
	if showMax {
		my := wk.y(float64(c.MaxWorkers))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c5221f" stroke-width="1.5" stroke-dasharray="1 3"/>`+"\n", x0, my, x1, my)
	} else if c.MaxWorkers > 0 {
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#c5221f">%s %d (above the scale)</text>`+"\n", x1, wk.y1+12, c.limitName(), c.MaxWorkers)
	}
	for i := len(c.Runs) - 1; i >= 0; i-- { // the configuration's on top
		r := c.Runs[i]
		if r.Timeline != nil && len(r.Timeline.Workers) == n {
			width := 1.2
			if i == 0 {
				width = 2
			}
			wk.line(wk.steps(r.Timeline.Workers, n), runStyle(r.Name, i), width)
		}
	}
	wk.line(wk.steps(main.Desired, n), style{"#1a73e8", "6 4"}, 1.5)
	wk.xTitle("time (UTC) from " + c.Start.Add(main.From).UTC().Format("Mon 2006-01-02 15:04"))
	y = int(wk.y0) + panelGap

	// The distribution of queue waits.
	entries = []legendEntry{{name: "queue waits:"}}
	xMax := 1.0
	for i, r := range c.Runs {
		if len(r.Waits) == 0 {
			continue
		}
		entries = append(entries, legendEntry{r.Name, runStyle(r.Name, i)})
		xMax = max(xMax, r.Waits[min(len(r.Waits)-1, len(r.Waits)*99/100)])
	}
	y = legend(w, x0, y, entries)
	xMaxNice, xStep := niceScale(xMax * 1.05)
	cdf := panel{w: w, x0: x0, x1: x1, y1: float64(y + 8), y0: float64(y + 8 + cdfH), yMax: 1}
	cdf.axes("share of jobs started", 0.2, func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) })
	xs := func(v float64) float64 { return x0 + (x1-x0)*math.Min(v, xMaxNice)/xMaxNice }
	for v := 0.0; v <= xMaxNice+1e-9; v += xStep {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", xs(v), cdf.y0, xs(v), cdf.y1)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xs(v), cdf.y0+16, trimFloat(v))
	}
	p95 := cdf.y(0.95)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="3 3"/><text x="%.1f" y="%.1f" text-anchor="end" fill="#666">95%%</text>`+"\n", x0, p95, x1, p95, x1, p95-4)
	for i := len(c.Runs) - 1; i >= 0; i-- {
		r := c.Runs[i]
		if len(r.Waits) == 0 {
			continue
		}
		var b strings.Builder
		k := float64(len(r.Waits))
		fmt.Fprintf(&b, "%.1f,%.1f ", xs(0), cdf.y(0))
		for j, v := range r.Waits {
			fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", xs(v), cdf.y(float64(j)/k), xs(v), cdf.y(float64(j+1)/k))
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x1, cdf.y(1))
		width := 1.2
		if i == 0 {
			width = 2
		}
		cdf.line(b.String(), runStyle(r.Name, i), width)
	}
	cdf.xTitle("queue wait, queued to started (s); the curve is the share of jobs that started within it")
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

// Charts are the report's plot: per pool, every run that recorded a
// timeline (the configuration's, and the oracle's and the anchors' when
// compared).
func (r *Report) Charts(start time.Time) []PlotChart {
	var out []PlotChart
	for _, p := range r.Pools {
		if len(p.Runs) == 0 {
			continue
		}
		c := PlotChart{Title: fmt.Sprintf("pool %s: %s (%s)", p.Pool, p.Runs[0].Run, r.Trace), Start: start, MaxWorkers: p.MaxWorkers}
		for _, x := range p.Runs {
			c.Runs = append(c.Runs, PlotRun{Name: x.Run, Timeline: x.timeline, Waits: x.waits})
		}
		out = append(out, c)
	}
	return out
}
