package realtools_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/testutil/realtools"
)

// Every tool's binary is the version its go.mod pins: build.sh builds
// what the harness looks for, and reports that version when asked.
func TestToolsArePinnedVersions(t *testing.T) {
	for _, tc := range []struct {
		tool    realtools.Tool
		args    []string
		release func(moduleVersion string) string // what --version prints
	}{
		{realtools.Helm, []string{"version", "--short"}, func(v string) string { return v }},
		{realtools.Promtool, []string{"--version"}, prometheusRelease},
		{realtools.Prometheus, []string{"--version"}, prometheusRelease},
		{realtools.NATSServer, []string{"--version"}, func(v string) string { return v }},
	} {
		t.Run(tc.tool.Binary, func(t *testing.T) {
			v, err := realtools.Version(tc.tool)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v, "v") || strings.Count(v, ".") != 2 {
				t.Fatalf("version %q of %s is not vX.Y.Z", v, tc.tool.Module)
			}
			where, err := realtools.Locate(tc.tool)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(where, "/"+tc.tool.Dir+"/"+v+"/") {
				t.Errorf("%s is not keyed by version %s", where, v)
			}
			bin := realtools.Path(t, tc.tool)
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", bin, tc.args, err, out)
			}
			if want := tc.release(v); !strings.Contains(string(out), want) {
				t.Errorf("%s %v printed %q, want it to name %s", tc.tool.Binary, tc.args, out, want)
			}
		})
	}
}

// prometheusRelease maps the Go module version v0.MMM.P of
// github.com/prometheus/prometheus to its release M.MM.P (v0.316.0 is
// Prometheus 3.16.0).
func prometheusRelease(v string) string {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) != 3 {
		return "unparsable module version " + v
	}
	mm, err := strconv.Atoi(parts[1])
	if err != nil {
		return "unparsable module version " + v
	}
	return strconv.Itoa(mm/100) + "." + strconv.Itoa(mm%100) + "." + parts[2]
}

// The operator's CRD folder holds the ServiceMonitor and PrometheusRule
// definitions of the pinned version.
func TestPrometheusOperatorCRDs(t *testing.T) {
	dir := realtools.Path(t, realtools.PrometheusOperatorCRDs)
	v, err := realtools.Version(realtools.PrometheusOperatorCRDs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, "/prometheus-operator/"+v+"/") {
		t.Errorf("%s is not keyed by version %s", dir, v)
	}
	for _, kind := range []string{"servicemonitors", "prometheusrules"} {
		data, err := os.ReadFile(filepath.Join(dir, "monitoring.coreos.com_"+kind+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "kind: CustomResourceDefinition") || !strings.Contains(string(data), "name: "+kind+".monitoring.coreos.com") {
			t.Errorf("%s: not the %s CRD", dir, kind)
		}
	}
}
