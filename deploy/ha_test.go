package deploy_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

// With config.ha.enabled the chart runs several replicas: more than one
// is accepted, the Deployment rolls one pod at a time (a new one ready
// before an old one goes), the pods prefer different nodes, the PDB keeps
// all but one up, and the rendered config is one the daemon accepts with
// ha on. (Without ha, replicas=2 is refused: TestHelmRefusesWrongValues.)
func TestHelmHA(t *testing.T) {
	h := newHelm(t)
	objs := h.template(t, "--set", "replicas=3", "--set", "config.ha.enabled=true",
		"--set", `config.nats.url=nats://nats-0:4222\,nats://nats-1:4222\,nats://nats-2:4222`,
		"--set", "config.nats.streams.replicas=3")
	dep := into[appsv1.Deployment](t, find(t, objs, "Deployment"))
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
	}
	st := dep.Spec.Strategy
	if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil ||
		st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want RollingUpdate with maxUnavailable 0", st)
	}
	a := dep.Spec.Template.Spec.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatalf("affinity %+v, want a preferred pod anti-affinity", a)
	}
	term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil || !selects(term.LabelSelector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("anti-affinity term %+v does not spread the daemon's pods over nodes", term)
	}
	pdb := into[policyv1.PodDisruptionBudget](t, find(t, objs, "PodDisruptionBudget"))
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1", pdb.Spec)
	}
	cm := into[corev1.ConfigMap](t, find(t, objs, "ConfigMap"))
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]), nil)
	if err != nil {
		t.Fatalf("the daemon refuses the rendered config: %v", err)
	}
	if !cfg.HA.Enabled || cfg.NATS.Streams.Replicas != 3 || cfg.NATS.URL != "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222" {
		t.Errorf("rendered ha %+v, nats url %q replicas %d", cfg.HA, cfg.NATS.URL, cfg.NATS.Streams.Replicas)
	}

	// nats.url as a list of the cluster's servers, as the daemon takes it.
	objs = h.template(t, "--set", "replicas=2", "--set", "config.ha.enabled=true",
		"--set-json", `config.nats.url=["nats://nats-0:4222","nats://nats-1:4222","nats://nats-2:4222"]`)
	cm = into[corev1.ConfigMap](t, find(t, objs, "ConfigMap"))
	if cfg, err = config.Parse([]byte(cm.Data["config.yaml"]), nil); err != nil {
		t.Fatalf("the daemon refuses the rendered config with a URL list: %v", err)
	}
	if cfg.NATS.URL != "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222" {
		t.Errorf("rendered nats url list read as %q", cfg.NATS.URL)
	}

	// An explicit affinity is the operator's, as is.
	objs = h.template(t, "--set", "replicas=2", "--set", "config.ha.enabled=true", "--set", "config.nats.url=nats://n:4222",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists")
	dep = into[appsv1.Deployment](t, find(t, objs, "Deployment"))
	if a := dep.Spec.Template.Spec.Affinity; a == nil || a.NodeAffinity == nil || a.PodAntiAffinity != nil {
		t.Errorf("affinity %+v, want the given one only", a)
	}
}
