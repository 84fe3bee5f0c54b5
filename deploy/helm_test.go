package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// helm lint --strict passes for the default values and for the values that
// switch every option on.
func TestHelmLint(t *testing.T) {
	h := newHelm(t)
	for name, args := range map[string][]string{
		"default": nil,
		"full":    {"-f", fullValues(t)},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := h.run(t, append([]string{"lint", "--strict", chartDir(t)}, args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint:\n%s", out)
			}
		})
	}
}

// helm template renders, for the default and the full values, the objects
// the chart promises, wired to each other, with the kustomize Deployment's
// security and the kustomize Role's rules, a config the daemon accepts,
// and the config's checksum on the pod template.
func TestHelmTemplate(t *testing.T) {
	h := newHelm(t)
	kustomizeDeployment := into[appsv1.Deployment](t, readObject(t, "deploy/kubernetes/deployment.yaml"))
	kustomizeRole := into[rbacv1.Role](t, readObject(t, "deploy/kubernetes/role.yaml"))
	base := []string{"ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}
	for _, tc := range []struct {
		name      string
		args      []string
		kinds     []string
		workersNS string
		port      int32
		disabled  []string // alerts left out of the PrometheusRule
	}{
		{name: "default", kinds: base, workersNS: "hodei-workers", port: 9090},
		{name: "full", args: []string{"-f", fullValues(t)}, kinds: append(slices.Clone(base), "PrometheusRule", "ServiceMonitor"),
			workersNS: "ci-workers", port: 9191, disabled: []string{"HodeiAutoscalerJobsExpired"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := h.template(t, tc.args...)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetKind())
			}
			slices.Sort(kinds)
			slices.Sort(tc.kinds)
			if !slices.Equal(kinds, tc.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
			}

			cm := into[corev1.ConfigMap](t, find(t, objs, "ConfigMap"))
			configYAML := cm.Data["config.yaml"]
			cfg, err := config.Parse([]byte(configYAML), nil)
			if err != nil {
				t.Fatalf("the daemon refuses the rendered config.yaml:\n%v\n%s", err, configYAML)
			}
			for _, p := range cfg.Pools {
				if p.Provider == "kubernetes" && p.Kubernetes.Namespace != tc.workersNS {
					t.Errorf("pool %s runs in namespace %q, want the workers' %q", p.Name, p.Kubernetes.Namespace, tc.workersNS)
				}
			}

			dep := into[appsv1.Deployment](t, find(t, objs, "Deployment"))
			sum := sha256.Sum256([]byte(strings.TrimSuffix(configYAML, "\n")))
			if got := dep.Spec.Template.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
				t.Errorf("checksum/config %q is not the sha256 of config.yaml (%x)", got, sum)
			}
			checkDeployment(t, dep, kustomizeDeployment, cm.Name, tc.port)

			sa := find(t, objs, "ServiceAccount")
			if dep.Spec.Template.Spec.ServiceAccountName != sa.GetName() {
				t.Errorf("pod runs as %q, the chart's ServiceAccount is %q", dep.Spec.Template.Spec.ServiceAccountName, sa.GetName())
			}
			role := into[rbacv1.Role](t, find(t, objs, "Role"))
			if role.Namespace != tc.workersNS || !reflect.DeepEqual(role.Rules, kustomizeRole.Rules) {
				t.Errorf("Role in %q with rules %+v, want in %q the rules of deploy/kubernetes/role.yaml %+v",
					role.Namespace, role.Rules, tc.workersNS, kustomizeRole.Rules)
			}
			rb := into[rbacv1.RoleBinding](t, find(t, objs, "RoleBinding"))
			wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.GetName(), Namespace: "hodei-system"}}
			if rb.Namespace != tc.workersNS || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || !reflect.DeepEqual(rb.Subjects, wantSubject) {
				t.Errorf("RoleBinding %+v", rb)
			}
			if ns := find(t, objs, "Namespace"); ns.GetName() != tc.workersNS {
				t.Errorf("the chart creates namespace %q, want %q", ns.GetName(), tc.workersNS)
			}

			podLabels := dep.Spec.Template.Labels
			svc := into[corev1.Service](t, find(t, objs, "Service"))
			if !selects(svc.Spec.Selector, podLabels) || len(svc.Spec.Ports) != 1 ||
				svc.Spec.Ports[0].Name != "http-metrics" || svc.Spec.Ports[0].Port != tc.port || svc.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("Service %+v does not reach the pod's http port", svc.Spec)
			}
			pdb := into[policyv1.PodDisruptionBudget](t, find(t, objs, "PodDisruptionBudget"))
			if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, podLabels) || (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
				t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
			}

			if !slices.Contains(tc.kinds, "ServiceMonitor") {
				return
			}
			sm := find(t, objs, "ServiceMonitor")
			if sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels"); !selects(sel, svc.Labels) {
				t.Errorf("ServiceMonitor selects %v, the Service is labelled %v", sel, svc.Labels)
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "http-metrics" || eps[0].(map[string]any)["path"] != "/metrics" {
				t.Errorf("ServiceMonitor endpoints %v", eps)
			}
			// The job label the alert rules expect.
			if jl, _, _ := unstructured.NestedString(sm.Object, "spec", "jobLabel"); svc.Labels[jl] != "hodei-autoscaler" {
				t.Errorf("ServiceMonitor jobLabel %q gives job %q, the rules expect hodei-autoscaler", jl, svc.Labels[jl])
			}
			got, _, _ := unstructured.NestedSlice(find(t, objs, "PrometheusRule").Object, "spec", "groups")
			if want := alertGroups(t, tc.disabled); !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
				t.Errorf("PrometheusRule groups are not deploy/prometheus/alerts.yaml less %v:\n got %v\nwant %v", tc.disabled, got, want)
			}
		})
	}
}

// A wrong value fails helm template (and so helm install and upgrade) with
// an error that names it: the schema's types and enums, and the chart's
// own checks of values that cannot work together.
func TestHelmRefusesWrongValues(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"two replicas fight over the workers", []string{"replicas=2"}, "/replicas"},
		{"unknown pull policy", []string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{"unknown top-level value", []string{"replica=1"}, "'replica' not allowed"},
		{"typo in a pool key", []string{"config.pools[0].name=linux", "config.pools[0].provider=kubernetes", "config.pools[0].max_worker=5"}, "'max_worker' not allowed"},
		{"a word where a count goes", []string{"config.pools[0].name=linux", "config.pools[0].max_workers=lots"}, "/config/pools/0/max_workers"},
		{"a boolean where a duration goes", []string{"config.reconcile.interval=true"}, "/config/reconcile/interval"},
		{"unknown config section", []string{"config.reconciler.interval=5s"}, "'reconciler' not allowed"},
		{"invalid namespace name", []string{"workers.namespace=Hodei_Workers"}, "/workers/namespace"},
		{"both PDB bounds", []string{"podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1"}, "/podDisruptionBudget"},
		{"a pool in a namespace the daemon may not touch", []string{"config.pools[0].name=linux", "config.pools[0].provider=kubernetes",
			"config.pools[0].kubernetes.namespace=default", "config.pools[0].kubernetes.image=w:1"}, `act only in workers.namespace "hodei-workers"`},
		{"a loopback listener the probes cannot reach", []string{"config.http.listen=127.0.0.1:9090"}, "loopback"},
		{"a listener without port", []string{"config.http.listen=0.0.0.0"}, "has no port"},
		{"disabling an alert that does not exist", []string{"prometheusRule.enabled=true", "prometheusRule.disabled={HodeiAutoscalerNoSuchAlert}"}, "HodeiAutoscalerNoSuchAlert"},
		{"no ServiceAccount named", []string{"serviceAccount.create=false"}, "serviceAccount.name is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "hodei", chartDir(t)}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := h.run(t, args...)
			if err == nil {
				t.Fatalf("helm template accepted %v:\n%s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

// The example config of the repository, every key documented there, is
// accepted by the chart's schema as config, and renders to a config the
// daemon reads back the same.
func TestHelmAcceptsExampleConfig(t *testing.T) {
	h := newHelm(t)
	example, err := os.ReadFile(filepath.Join(root(t), "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(example, &cfg); err != nil {
		t.Fatal(err)
	}
	values, err := yaml.Marshal(map[string]any{"config": cfg})
	if err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, values, 0o644); err != nil {
		t.Fatal(err)
	}
	// Only the listener changes: the example's loopback one is refused in a pod.
	objs := h.template(t, "-f", vf, "--set", "config.http.listen=0.0.0.0:9090")
	rendered, err := config.Parse([]byte(into[corev1.ConfigMap](t, find(t, objs, "ConfigMap")).Data["config.yaml"]), nil)
	if err != nil {
		t.Fatalf("rendered example config: %v", err)
	}
	want, err := config.Parse(example, []string{"AUTOSCALER_HTTP_LISTEN=0.0.0.0:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rendered, want) {
		t.Errorf("the chart changed the example config:\n got %+v\nwant %+v", rendered, want)
	}
}

// checkDeployment compares the chart's Deployment with the kustomize one
// where they must agree.
func checkDeployment(t *testing.T, dep, kustomize *appsv1.Deployment, configMap string, port int32) {
	t.Helper()
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %s: want 1 and Recreate", dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	ps, kps := dep.Spec.Template.Spec, kustomize.Spec.Template.Spec
	if !reflect.DeepEqual(ps.SecurityContext, kps.SecurityContext) {
		t.Errorf("pod securityContext %+v, the kustomize Deployment's is %+v", ps.SecurityContext, kps.SecurityContext)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("containers %+v", ps.Containers)
	}
	c, kc := ps.Containers[0], kps.Containers[0]
	if !reflect.DeepEqual(c.SecurityContext, kc.SecurityContext) {
		t.Errorf("container securityContext %+v, the kustomize Deployment's is %+v", c.SecurityContext, kc.SecurityContext)
	}
	if !slices.Equal(c.Args, kc.Args) || c.WorkingDir != kc.WorkingDir {
		t.Errorf("args %v in %s, want %v in %s", c.Args, c.WorkingDir, kc.Args, kc.WorkingDir)
	}
	if !reflect.DeepEqual(c.LivenessProbe, kc.LivenessProbe) || !reflect.DeepEqual(c.ReadinessProbe, kc.ReadinessProbe) {
		t.Errorf("probes %+v %+v, want the kustomize Deployment's", c.LivenessProbe, c.ReadinessProbe)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != port {
		t.Errorf("ports %+v, want http on %d", c.Ports, port)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	var memlimit bool
	for _, e := range c.Env {
		memlimit = memlimit || (e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "limits.memory")
	}
	if !memlimit {
		t.Errorf("no GOMEMLIMIT from limits.memory in %+v", c.Env)
	}
	var mountsConfig bool
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == configMap {
			for _, m := range c.VolumeMounts {
				mountsConfig = mountsConfig || (m.Name == v.Name && m.MountPath == "/etc/hodei" && m.ReadOnly)
			}
		}
	}
	if !mountsConfig {
		t.Errorf("ConfigMap %s is not mounted read-only at /etc/hodei: %+v %+v", configMap, ps.Volumes, c.VolumeMounts)
	}
}

// readObject reads the single object of a YAML file of the repository.
func readObject(t testing.TB, rel string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, string(data))
	if len(objs) != 1 {
		t.Fatalf("%s holds %d objects, want 1", rel, len(objs))
	}
	return objs[0]
}

// selects reports whether selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// alertGroups is deploy/prometheus/alerts.yaml's groups less the named alerts.
func alertGroups(t testing.TB, disabled []string) []any {
	t.Helper()
	var file struct {
		Groups []map[string]any `json:"groups"`
	}
	data, err := os.ReadFile(filepath.Join(root(t), "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, g := range file.Groups {
		var rules []any
		for _, r := range g["rules"].([]any) {
			if !slices.Contains(disabled, r.(map[string]any)["alert"].(string)) {
				rules = append(rules, r)
			}
		}
		g["rules"] = rules
		out = append(out, g)
	}
	return out
}

// normalize round-trips v through YAML so values of different origins
// (int64 from the API machinery, float64 from JSON) compare equal.
func normalize(t testing.TB, v any) any {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
