package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// plannedMetrics are metrics the rules and the dashboard use before the
// daemon has them (with their labels). Each moves into docs/metrics.md
// when it is implemented, and then out of this list: the test fails while
// a name is in both. (Issue 12's all landed.)
var plannedMetrics = map[string][]string{}

// Labels every scraped series has, and the histogram bucket label.
var targetLabels = []string{"job", "instance"}

var histogramSuffixes = []string{"_bucket", "_sum", "_count"}

// metricLabels are the metrics docs/metrics.md documents, with their
// labels, plus the planned ones and Prometheus' own up.
func metricLabels(t testing.TB) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| (gauge|counter|histogram) \\|\\s*([a-z_, ]*?)\\s*\\|")
	for line := range strings.Lines(string(data)) {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for l := range strings.SplitSeq(m[3], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		documented["hodei_autoscaler_"+m[1]] = labels
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d metrics in docs/metrics.md's tables: has its format changed?", len(documented))
	}
	out := map[string][]string{"up": nil}
	for name, labels := range documented {
		if _, ok := plannedMetrics[name]; ok {
			t.Errorf("%s is documented in docs/metrics.md: remove it from plannedMetrics", name)
		}
		out[name] = labels
	}
	for name, labels := range plannedMetrics {
		out[name] = labels
	}
	return out
}

var metricName = regexp.MustCompile(`\b(hodei_autoscaler_[a-z_]+|up)\b`)

// metricsOf returns the metric names expr uses, histogram series folded
// into their histogram's name (job_wait_seconds_bucket -> job_wait_seconds)
// when the folded name is known.
func metricsOf(expr string, known map[string][]string) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		if _, ok := known[m]; !ok {
			for _, s := range histogramSuffixes {
				if base, cut := strings.CutSuffix(m, s); cut {
					if _, ok := known[base]; ok {
						m = base
					}
				}
			}
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

var (
	selectorLabels = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"`)
	groupingLabels = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
)

// labelsOf returns the label names expr uses in selectors and groupings.
func labelsOf(expr string) []string {
	var out []string
	for _, m := range selectorLabels.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	for _, m := range groupingLabels.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// checkExpr reports metric names that are neither documented nor
// planned, and labels that none of the expression's metrics has.
func checkExpr(t *testing.T, where, expr string, known map[string][]string) {
	t.Helper()
	metrics := metricsOf(expr, known)
	if len(metrics) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	have := slices.Clone(targetLabels)
	for _, m := range metrics {
		labels, ok := known[m]
		if !ok {
			t.Errorf("%s: metric %s is neither in docs/metrics.md nor planned", where, m)
		}
		have = append(have, labels...)
		if strings.Contains(expr, m+"_bucket") {
			have = append(have, "le")
		}
	}
	for _, l := range labelsOf(expr) {
		if !slices.Contains(have, l) {
			t.Errorf("%s: label %q is not a label of %v", where, l, metrics)
		}
	}
}

// exprHasLabel reports whether the series expr returns carry label l: one
// of its metrics has it and no grouping drops it.
func exprHasLabel(t testing.TB, expr, l string) bool {
	t.Helper()
	known := metricLabels(t)
	var has bool
	for _, m := range metricsOf(expr, known) {
		has = has || slices.Contains(known[m], l)
	}
	for _, m := range regexp.MustCompile(`\bby\s*\(([^)]*)\)`).FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(strings.Split(strings.ReplaceAll(m[1], " ", ""), ","), l) {
			return false
		}
	}
	return has
}

// Every metric the alert rules and the dashboard use is one the daemon
// documents (docs/metrics.md) or one planned above, and every label they
// select or group by is one of those metrics' labels. (That each of them
// is really on /metrics is checked end to end with a real Prometheus
// scraping a real daemon.)
func TestMetricNamesAreDocumented(t *testing.T) {
	known := metricLabels(t)
	used := map[string]bool{}
	for _, a := range readAlerts(t) {
		checkExpr(t, "alert "+a.Alert, a.Expr, known)
		for _, m := range metricsOf(a.Expr, known) {
			used[m] = true
		}
	}
	for _, q := range dashboardQueries(t) {
		checkExpr(t, q.where, q.expr, known)
		for _, m := range metricsOf(q.expr, known) {
			used[m] = true
		}
	}
	for name := range plannedMetrics {
		if !used[name] {
			t.Errorf("planned metric %s is used by neither the rules nor the dashboard", name)
		}
	}
	// The checks above can fail: a made-up name and a made-up label are caught.
	if m := metricsOf(`rate(hodei_autoscaler_no_such_total{pool="x"}[5m])`, known); len(m) != 1 || m[0] != "hodei_autoscaler_no_such_total" {
		t.Errorf("metricsOf did not isolate an unknown name: %v", m)
	} else if _, ok := known[m[0]]; ok {
		t.Errorf("a made-up metric is known")
	}
	if l := labelsOf(`sum by (job, zone) (hodei_autoscaler_workers{state!="failed"})`); !slices.Equal(l, []string{"state", "job", "zone"}) {
		t.Errorf("labelsOf = %v", l)
	}
}
