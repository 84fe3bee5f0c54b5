package deploy_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"sigs.k8s.io/yaml"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/apptest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/engineproxy"
	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

// The dashboard and the alert rules against the programs that consume
// them, end to end: a real Prometheus (from .cache/tools) scrapes a real
// daemon while jobs run on real Docker workers (the example worker);
// every query of every dashboard panel, evaluated through Prometheus's
// HTTP API over the run, returns data; every metric name of the dashboard
// and the rules is on /metrics; and the rules loaded into that Prometheus
// make HodeiAutoscalerBreakerOpen fire when the Docker engine becomes
// unreachable (the fault harness's socket proxy refusing connections) and
// clear when it answers again.
func TestPrometheusScrapesTheDaemon(t *testing.T) {
	promBin := realtools.Path(t, realtools.Prometheus)
	dockertest.Client(t) // skips, or fails with REQUIRE_DOCKER=1, without an engine
	image := dockertest.WorkerImage(t)
	owner := dockertest.UniqueName("prom")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	px := engineproxy.New(t)
	begin := time.Now()

	// The daemon, its pool's engine behind the proxy.
	natsPort := bustest.FreePort(t)
	cfg := config.Defaults()
	cfg.Name = owner
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(t))
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: natsPort, StoreDir: filepath.Join(t.TempDir(), "nats")}
	cfg.Reconcile.Interval = config.Duration(200 * time.Millisecond)
	cfg.Reconcile.ResyncInterval = config.Duration(5 * time.Second)
	cfg.Reconcile.ProviderTimeout = config.Duration(2 * time.Second)
	cfg.Reconcile.BreakerFailures = 3
	cfg.Reconcile.BreakerCooldown = config.Duration(2 * time.Second)
	cfg.Reconcile.RetryInitial = config.Duration(500 * time.Millisecond)
	cfg.Reconcile.RetryMax = config.Duration(2 * time.Second)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	const pool = "prom"
	p := config.PoolDefaults()
	p.Name = pool
	p.MaxWorkers = 3
	p.IdleTimeout = config.Fixed(2 * time.Second)
	p.StopGracePeriod = config.Duration(5 * time.Second)
	p.Docker.Host = px.Host()
	p.Docker.Image = image
	p.Docker.PullPolicy = "never"
	p.Docker.NetworkMode = "host"
	p.Docker.ReadOnlyRootfs = true
	p.Resources = domain.Resources{CPUMillis: 100, MemoryMB: 32}
	p.Env = map[string]string{"HODEI_NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", natsPort)}
	cfg.Pools = []config.Pool{p}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var daemonLog syncbuf.Buffer
	a := apptest.Run(t, cfg, app.Options{Logger: zerolog.New(&daemonLog).With().Timestamp().Logger(), Version: "e2e-test"})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (last 60 lines):\n%s", daemonLog.Tail(60))
		}
	})

	prom := startPrometheus(t, promBin, a.HTTPAddr())
	bustest.Eventually(t, 30*time.Second, "Prometheus scraping the daemon", func() bool {
		v, ok := prom.scalar(t, `up{job="hodei-autoscaler"}`)
		return ok && v == 1
	})
	if rules := prom.alertRules(t); len(rules) != len(readAlerts(t)) {
		t.Fatalf("Prometheus loaded %d alert rules, alerts.yaml has %d", len(rules), len(readAlerts(t)))
	}

	// Jobs on real workers, and one invalid event.
	_, js := bustest.Connect(t, a.BusURL())
	jobs := bustest.NewJobs(t, js)
	for i := range 5 {
		jobs.Queued(pool, fmt.Sprint("job-", i), map[string]string{"duration": "3s"})
	}
	jobs.Raw("hodei.jobs."+pool+".queued", []byte("not json"), "")
	bustest.Eventually(t, 90*time.Second, "5 jobs done and the workers gone", func() bool {
		st := a.Status()[0]
		return st.Pending == 0 && st.Running == 0 && st.Workers["idle"]+st.Workers["busy"]+st.Workers["provisioning"] == 0 &&
			prom.has(t, `hodei_autoscaler_job_wait_seconds_count{pool="prom"} >= 5`)
	})

	// The engine becomes unreachable: the breaker opens, the alert fires
	// (for: 1m), then clears when the engine answers again.
	cut := time.Now()
	px.SetMode(engineproxy.Refuse)
	bustest.Eventually(t, 60*time.Second, "breaker open in Prometheus", func() bool {
		return prom.has(t, `hodei_autoscaler_breaker_open{pool="prom"} == 1`)
	})
	opened := time.Now()
	state := ""
	bustest.Eventually(t, 3*time.Minute, "HodeiAutoscalerBreakerOpen firing", func() bool {
		s := prom.alertState(t, "HodeiAutoscalerBreakerOpen", pool)
		if s != state {
			t.Logf("%v after the cut: HodeiAutoscalerBreakerOpen %q -> %q", time.Since(cut).Round(100*time.Millisecond), state, s)
			state = s
		}
		return s == "firing"
	})
	fired := time.Now()
	px.SetMode(engineproxy.Forward)
	back := time.Now()
	bustest.Eventually(t, 60*time.Second, "HodeiAutoscalerBreakerOpen cleared", func() bool {
		return prom.alertState(t, "HodeiAutoscalerBreakerOpen", pool) == ""
	})
	cleared := time.Now()
	t.Logf("breaker alert: engine cut -> breaker_open scraped %v, -> firing %v (the rule's for: 1m); engine back -> cleared %v",
		opened.Sub(cut).Round(100*time.Millisecond), fired.Sub(cut).Round(100*time.Millisecond), cleared.Sub(back).Round(100*time.Millisecond))
	if prom.alertState(t, "HodeiAutoscalerDown", "") != "" || prom.alertState(t, "HodeiAutoscalerNotScraped", "") != "" {
		t.Error("the daemon-down alerts are active while Prometheus scrapes the daemon")
	}

	// Every panel's every query returns data over the run, as Grafana asks
	// for it (the pool variable set to the pool, the rate interval four
	// scrape intervals and more).
	grafana := strings.NewReplacer("$__rate_interval", "15s", "$__interval", "1s", "$pool", pool)
	for _, q := range dashboardQueries(t) {
		expr := grafana.Replace(q.expr)
		if n := prom.rangePoints(t, expr, begin, time.Now()); n == 0 {
			t.Errorf("%s returned no data over the run: %s", q.where, expr)
		}
	}

	// Every metric name of the dashboard and the rules is on /metrics
	// (up is Prometheus's own: checked above).
	onMetrics := scrapeNames(t, "http://"+a.HTTPAddr()+"/metrics")
	known := metricLabels(t)
	var exprs []string
	for _, r := range readAlerts(t) {
		exprs = append(exprs, r.Expr)
	}
	for _, q := range dashboardQueries(t) {
		exprs = append(exprs, q.expr)
	}
	for _, e := range exprs {
		for _, m := range metricsOf(e, known) {
			if m != "up" && !onMetrics[m] {
				t.Errorf("metric %s (used by %q) is not on /metrics", m, e)
			}
		}
	}
}

// prometheus is a real Prometheus server, scraping one target every
// second and evaluating deploy/prometheus/alerts.yaml every second.
type prometheus struct {
	url string
}

func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	alerts, err := filepath.Abs(filepath.Join(root(t), "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := yaml.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{alerts},
		"scrape_configs": []any{map[string]any{
			"job_name":       "hodei-autoscaler", // the name the rules expect
			"static_configs": []any{map[string]any{"targets": []string{target}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+confPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &prometheus{url: "http://" + addr}
	bustest.Eventually(t, 60*time.Second, "prometheus ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// api GETs a Prometheus API path and decodes its data.
func (p *prometheus) api(t *testing.T, path string, q url.Values, data any) {
	t.Helper()
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if body.Status != "success" {
		t.Fatalf("GET %s?%s: %s", path, q.Encode(), body.Error)
	}
	if err := json.Unmarshal(body.Data, data); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

// has reports whether the instant query expr returns any series.
func (p *prometheus) has(t *testing.T, expr string) bool {
	t.Helper()
	var d struct{ Result []promSeries }
	p.api(t, "/api/v1/query", url.Values{"query": {expr}}, &d)
	return len(d.Result) > 0
}

// scalar is the value of the one series expr returns.
func (p *prometheus) scalar(t *testing.T, expr string) (float64, bool) {
	t.Helper()
	var d struct{ Result []promSeries }
	p.api(t, "/api/v1/query", url.Values{"query": {expr}}, &d)
	if len(d.Result) != 1 {
		return 0, false
	}
	s, _ := d.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// rangePoints counts the non-NaN points expr returns between from and to,
// at a 1 s step, as a dashboard over that range would draw them.
func (p *prometheus) rangePoints(t *testing.T, expr string, from, to time.Time) int {
	t.Helper()
	var d struct{ Result []promSeries }
	p.api(t, "/api/v1/query_range", url.Values{"query": {expr}, "start": {fmt.Sprint(from.Unix())},
		"end": {fmt.Sprint(to.Unix())}, "step": {"1"}}, &d)
	n := 0
	for _, s := range d.Result {
		for _, v := range s.Values {
			if f, err := strconv.ParseFloat(fmt.Sprint(v[1]), 64); err == nil && !math.IsNaN(f) {
				n++
			}
		}
	}
	return n
}

// alertRules are the alerting rules Prometheus has loaded, healthy.
func (p *prometheus) alertRules(t *testing.T) []string {
	t.Helper()
	var d struct {
		Groups []struct {
			Rules []struct {
				Name, Type, Health string
			}
		}
	}
	p.api(t, "/api/v1/rules", url.Values{"type": {"alert"}}, &d)
	var out []string
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" && r.Health != "unknown" {
				t.Errorf("rule %s health %s", r.Name, r.Health)
			}
			out = append(out, r.Name)
		}
	}
	return out
}

// alertState is the state of alert (for pool, when set): pending, firing
// or "" (inactive).
func (p *prometheus) alertState(t *testing.T, alert, pool string) string {
	t.Helper()
	var d struct {
		Alerts []struct {
			Labels map[string]string
			State  string
		}
	}
	p.api(t, "/api/v1/alerts", nil, &d)
	for _, a := range d.Alerts {
		if a.Labels["alertname"] == alert && (pool == "" || a.Labels["pool"] == pool) {
			return a.State
		}
	}
	return ""
}

// scrapeNames returns the metric names /metrics exposes (histogram
// series under their histogram's name).
func scrapeNames(t *testing.T, u string) map[string]bool {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", u, err)
	}
	out := map[string]bool{}
	for name := range fams {
		out[name] = true
	}
	return out
}
