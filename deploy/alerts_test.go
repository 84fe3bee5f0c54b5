package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

const runbookBase = "https://github.com/hodei/hodei-autoscaler/blob/main/docs/operations.md#"

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string      `json:"name"`
		Rules []alertRule `json:"rules"`
	} `json:"groups"`
}

func alertsPath(t testing.TB) string {
	return filepath.Join(root(t), "deploy", "prometheus", "alerts.yaml")
}

func readAlerts(t testing.TB) []alertRule {
	t.Helper()
	data, err := os.ReadFile(alertsPath(t))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// promtool check rules accepts the rule file.
func TestAlertRulesCheck(t *testing.T) {
	promtool := realtools.Path(t, realtools.Promtool)
	out, err := run(t, nil, promtool, "check", "rules", alertsPath(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := "SUCCESS: " + strconv.Itoa(len(readAlerts(t))) + " rules found"; !strings.Contains(out, want) {
		t.Errorf("promtool check rules: %q, want %q", out, want)
	}
}

// promtool test rules passes alerts_test.yaml, which has for every alert a
// case where it fires and one where it does not; and each alert's cases
// have teeth: the same tests fail when that alert is made to never fire or
// to always fire.
func TestAlertRulesUnitTests(t *testing.T) {
	promtool := realtools.Path(t, realtools.Promtool)
	testFile := filepath.Join(root(t), "deploy", "prometheus", "alerts_test.yaml")
	if out, err := run(t, nil, promtool, "test", "rules", testFile); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	data, err := os.ReadFile(testFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Name          string `json:"name"`
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	rulesText, err := os.ReadFile(alertsPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range readAlerts(t) {
		t.Run(a.Alert, func(t *testing.T) {
			if !fires[a.Alert] || !silent[a.Alert] {
				t.Fatalf("alerts_test.yaml: a case where it fires: %t, one where it does not: %t", fires[a.Alert], silent[a.Alert])
			}
			for name, expr := range map[string]string{"never fires": "vector(0) == 1", "always fires": "vector(1)"} {
				mutated := strings.Replace(string(rulesText), exprBlock(t, string(rulesText), a), "        expr: "+expr+"\n", 1)
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), []byte(mutated), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), data, 0o644); err != nil {
					t.Fatal(err)
				}
				// Only this alert's test groups, which are named after it.
				out, err := run(t, nil, promtool, "test", "rules", "--run", "^"+a.Alert+":", filepath.Join(dir, "alerts_test.yaml"))
				if err == nil {
					t.Errorf("with %s made to %s, promtool test rules still passes:\n%s", a.Alert, name, out)
				} else if !strings.Contains(err.Error()+out, a.Alert) {
					t.Errorf("with %s made to %s, the failure does not name it:\n%v%s", a.Alert, name, err, out)
				}
			}
		})
	}
}

// exprBlock is the text of alert a's expr (one line, or a folded block
// with its indented lines) in the rule file text.
func exprBlock(t testing.TB, text string, a alertRule) string {
	t.Helper()
	start := strings.Index(text, "- alert: "+a.Alert+"\n")
	if start < 0 {
		t.Fatalf("alert %s not found in the file's text", a.Alert)
	}
	m := regexp.MustCompile(`(?m)^        expr: .*\n(?:          .*\n)*`).FindStringIndex(text[start:])
	if m == nil {
		t.Fatalf("alert %s: no expr line", a.Alert)
	}
	return text[start+m[0] : start+m[1]]
}

// Every alert has a severity, a summary, a description that names the pool
// when its expression has one, and a runbook_url whose anchor is a section
// of docs/operations.md that says what the alert means, what to look at
// and what to do.
func TestAlertAnnotationsAndRunbooks(t *testing.T) {
	ops, err := os.ReadFile(filepath.Join(root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := markdownSections(string(ops))
	names := map[string]bool{}
	for _, a := range readAlerts(t) {
		t.Run(a.Alert, func(t *testing.T) {
			if names[a.Alert] {
				t.Errorf("alert name used twice")
			}
			names[a.Alert] = true
			if s := a.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("severity %q, want critical or warning", s)
			}
			if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
				t.Errorf("summary %q, description %q", a.Annotations["summary"], a.Annotations["description"])
			}
			if exprHasLabel(t, a.Expr, "pool") && !strings.Contains(a.Annotations["description"], "{{ $labels.pool }}") {
				t.Errorf("the alert has a pool label but its description does not name it: %q", a.Annotations["description"])
			}
			url := a.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if !ok {
				t.Fatalf("runbook_url %q does not point into docs/operations.md (%s...)", url, runbookBase)
			}
			body, ok := sections[anchor]
			if !ok {
				t.Fatalf("runbook_url anchor #%s is not a heading of docs/operations.md", anchor)
			}
			if anchor != githubAnchor(a.Alert) {
				t.Errorf("anchor #%s, want the alert's own section #%s", anchor, githubAnchor(a.Alert))
			}
			for _, part := range []string{"**What it means.**", "**What to look at.**", "**What to do.**"} {
				if !strings.Contains(body, part) {
					t.Errorf("section #%s lacks %s", anchor, part)
				}
			}
		})
	}
}

// markdownSections maps the GitHub anchor of every heading to the text
// under it, up to the next heading.
func markdownSections(md string) map[string]string {
	out := map[string]string{}
	var cur string
	var body strings.Builder
	flush := func() {
		if cur != "" {
			out[cur] = body.String()
		}
		body.Reset()
	}
	for line := range strings.Lines(md) {
		if strings.HasPrefix(line, "#") {
			flush()
			cur = githubAnchor(strings.TrimSpace(strings.TrimLeft(line, "#")))
			continue
		}
		body.WriteString(line)
	}
	flush()
	return out
}

// githubAnchor is the id GitHub gives a heading: lower case, punctuation
// other than - and _ dropped, spaces as -.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}
