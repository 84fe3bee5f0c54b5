package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Requires []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"__requires"`
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
			Current    struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasourceRef           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

func readDashboard(t testing.TB) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), "deploy", "grafana", "hodei-autoscaler.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("hodei-autoscaler.json: %v", err)
	}
	return d
}

type dashboardQuery struct{ where, expr string }

// dashboardQueries are the PromQL queries of every panel.
func dashboardQueries(t testing.TB) []dashboardQuery {
	t.Helper()
	var out []dashboardQuery
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			out = append(out, dashboardQuery{where: fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	return out
}

// The dashboard imports into Grafana as is: it declares its Prometheus
// input, takes the data source as a variable that every panel and query
// uses, has a pool variable that every pool query filters on, and has the
// panels an operator needs, laid out without overlap.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v: want one Prometheus data source input", d.Inputs)
	}
	if !slices.ContainsFunc(d.Requires, func(r struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}) bool {
		return r.Type == "datasource" && r.ID == "prometheus"
	}) {
		t.Errorf("__requires %+v lacks the prometheus data source", d.Requires)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}
	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	ds, ok := vars["datasource"]
	if !ok || d.Templating.List[ds].Type != "datasource" || string(d.Templating.List[ds].Query) != `"prometheus"` ||
		d.Templating.List[ds].Current.Value != "${"+d.Inputs[0].Name+"}" {
		t.Errorf("no datasource variable of type prometheus defaulting to the import's input: %+v", d.Templating.List)
	}
	pool, ok := vars["pool"]
	if !ok {
		t.Fatalf("no pool variable")
	}
	pv := d.Templating.List[pool]
	if pv.Type != "query" || !strings.HasPrefix(pv.Definition, "label_values(hodei_autoscaler_") || !strings.HasSuffix(pv.Definition, ", pool)") ||
		!pv.Multi || !pv.IncludeAll || pv.Datasource == nil || pv.Datasource.UID != "${datasource}" {
		t.Errorf("pool variable %+v", pv)
	}

	known := metricLabels(t)
	ids := map[int]bool{}
	var titles []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q gridPos %+v", p.Title, p.GridPos)
		}
		for _, q := range d.Panels {
			if q.ID < p.ID && overlap(p, q) {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			var poolMetric bool
			for _, m := range metricsOf(tg.Expr, known) {
				poolMetric = poolMetric || slices.Contains(known[m], "pool")
			}
			if poolMetric && !strings.Contains(tg.Expr, `pool=~"$pool"`) {
				t.Errorf("panel %q query %s does not filter on the pool variable: %s", p.Title, tg.RefID, tg.Expr)
			}
		}
	}

	// The panels issue 12 asks for, and what each must show.
	for _, want := range []struct {
		title string
		exprs []string // substrings its queries must contain, all of them
	}{
		{"Demand vs supply", []string{"pending_jobs", "running_jobs", "hodei_autoscaler_workers{", "desired_workers", "min_workers", "max_workers"}},
		{"Workers by state", []string{"by (state)", "hodei_autoscaler_workers{"}},
		{"Job wait time", []string{"histogram_quantile(0.5,", "histogram_quantile(0.95,", "job_wait_seconds_bucket"}},
		{"Reaction time", []string{"histogram_quantile(0.5,", "histogram_quantile(0.95,", "reaction_seconds_bucket"}},
		{"Provisioning time", []string{"histogram_quantile(0.5,", "histogram_quantile(0.95,", "provision_duration_seconds_bucket"}},
		{"Provider calls by op", []string{"provider_operations_total", "op)"}},
		{"Provider errors by op", []string{"provider_operations_total", `result="error"`, "op)"}},
		{"Breaker state", []string{"breaker_open"}},
		{"Events by result", []string{"events_total", "by (result)"}},
		{"Decisions by direction", []string{"scaling_decisions_total", "direction)"}},
		{"Published events dropped", []string{"published_events_total", `result="dropped"`}},
		{"Consumer caught up", []string{"stream_caught_up"}},
	} {
		i := slices.IndexFunc(d.Panels, func(p panel) bool { return strings.HasPrefix(p.Title, want.title) })
		if i < 0 {
			t.Errorf("no panel %q (panels: %v)", want.title, titles)
			continue
		}
		var all strings.Builder
		for _, tg := range d.Panels[i].Targets {
			all.WriteString(tg.Expr + "\n")
		}
		for _, e := range want.exprs {
			if !strings.Contains(all.String(), e) {
				t.Errorf("panel %q: no query with %q:\n%s", d.Panels[i].Title, e, all.String())
			}
		}
	}
}

func overlap(a, b panel) bool {
	ag, bg := a.GridPos, b.GridPos
	return ag.X < bg.X+bg.W && bg.X < ag.X+ag.W && ag.Y < bg.Y+bg.H && bg.Y < ag.Y+ag.H
}

// Every query of the dashboard is valid PromQL for the real parser:
// promtool check rules, on a rule file with each query (Grafana's
// variables replaced by what Grafana sends) as a recording rule. (That
// each returns data from a real daemon is checked end to end with a real
// Prometheus.)
func TestDashboardQueriesParse(t *testing.T) {
	promtool := realtools.Path(t, realtools.Promtool)
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$pool", ".*")
	var rules []map[string]string
	for i, q := range dashboardQueries(t) {
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": grafana.Replace(q.expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, nil, promtool, "check", "rules", file)
	if err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, data)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(out, want) {
		t.Errorf("promtool: %q, want %q", out, want)
	}
}
