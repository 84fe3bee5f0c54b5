package kubernetes

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
)

const testID = domain.WorkerID("0b0e8a5c-6a4c-4f43-9a53-3c1e0e5b1f10")

// kcfg is a pool's kubernetes settings with the config package's defaults.
func kcfg(mutate func(*config.Kubernetes)) config.Kubernetes {
	k := config.PoolDefaults().Kubernetes
	k.Image = "registry.example.com/hodei-worker:1.0"
	if mutate != nil {
		mutate(&k)
	}
	return k
}

func baseConfig(k config.Kubernetes) Config {
	return Config{
		Owner:      "hodei-test",
		Pool:       "linux",
		Kubernetes: k,
		Resources:  domain.Resources{CPUMillis: 500, MemoryMB: 256},
		Env:        map[string]string{"HODEI_NATS_URL": "nats://nats:4222", "A_FIRST": "1"},
		Slots:      2,
		StopGrace:  1500 * time.Millisecond,
	}
}

func podFor(t *testing.T, cfg Config) *corev1.Pod {
	t.Helper()
	tmpl, err := buildTemplate(cfg)
	if err != nil {
		t.Fatalf("buildTemplate: %v", err)
	}
	return tmpl.pod(cfg.Owner, cfg.Pool, testID)
}

// yamlMap decodes YAML as the config loader does (go.yaml.in/yaml/v3 into
// map[string]any), so the tests see what a config file gives.
func yamlMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return m
}

func worker(t *testing.T, pod *corev1.Pod) corev1.Container {
	t.Helper()
	for _, c := range pod.Spec.Containers {
		if c.Name == WorkerContainer {
			return c
		}
	}
	t.Fatalf("no worker container in %+v", pod.Spec.Containers)
	return corev1.Container{}
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// The pod of a plain pool: the contract's name, labels and env, the
// pool's settings, requests equal to limits, and the secure defaults.
func TestPodMapping(t *testing.T) {
	k := kcfg(func(k *config.Kubernetes) {
		k.Namespace = "ci"
		k.ImagePullPolicy = "Always"
		k.Command = []string{"/worker"}
		k.Args = []string{"-v"}
		k.NodeSelector = map[string]string{"pool": "ci"}
		k.Tolerations = []map[string]any{{"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"}}
		k.Labels = map[string]string{"team": "build"}
		k.Annotations = map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
	})
	pod := podFor(t, baseConfig(k))

	if pod.Name != "hodei-worker-"+string(testID) || pod.Namespace != "ci" {
		t.Errorf("name %s/%s", pod.Namespace, pod.Name)
	}
	wantLabels := map[string]string{
		"hodei.worker": "true", "hodei.worker.id": string(testID), "hodei.worker.pool": "linux",
		"hodei.autoscaler": "hodei-test", "team": "build",
	}
	if !reflect.DeepEqual(pod.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", pod.Labels, wantLabels)
	}
	if pod.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	s := pod.Spec
	if s.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", s.RestartPolicy)
	}
	if s.TerminationGracePeriodSeconds == nil || *s.TerminationGracePeriodSeconds != 2 {
		t.Errorf("terminationGracePeriodSeconds %v, want 2 (1.5s rounded up)", s.TerminationGracePeriodSeconds)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken %v, want false without a service account", s.AutomountServiceAccountToken)
	}
	if !reflect.DeepEqual(s.NodeSelector, map[string]string{"pool": "ci"}) {
		t.Errorf("nodeSelector %v", s.NodeSelector)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0] != (corev1.Toleration{Key: "dedicated", Operator: "Equal", Value: "ci", Effect: "NoSchedule"}) {
		t.Errorf("tolerations %+v", s.Tolerations)
	}
	if len(s.Containers) != 1 {
		t.Fatalf("containers %+v", s.Containers)
	}
	c := worker(t, pod)
	if c.Image != k.Image || c.ImagePullPolicy != corev1.PullAlways || !slices.Equal(c.Command, []string{"/worker"}) || !slices.Equal(c.Args, []string{"-v"}) {
		t.Errorf("container %+v", c)
	}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	if want := []string{"A_FIRST", "HODEI_NATS_URL", "HODEI_WORKER_ID", "HODEI_WORKER_POOL", "HODEI_WORKER_SLOTS"}; !slices.Equal(names, want) {
		t.Errorf("env names %v, want %v", names, want)
	}
	if env := envMap(c); env["HODEI_WORKER_ID"] != string(testID) || env["HODEI_WORKER_POOL"] != "linux" || env["HODEI_WORKER_SLOTS"] != "2" || env["HODEI_NATS_URL"] != "nats://nats:4222" {
		t.Errorf("env %v", env)
	}
	want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
	for name, rl := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		if len(rl) != 2 || rl.Cpu().Cmp(want[corev1.ResourceCPU]) != 0 || rl.Memory().Cmp(want[corev1.ResourceMemory]) != 0 {
			t.Errorf("%s %v, want %v", name, rl, want)
		}
	}
	if got := c.Resources.Limits.Memory().String(); got != "256Mi" {
		t.Errorf("memory written as %s, want 256Mi", got)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext %+v", sc)
	}
	if sc != nil && sc.RunAsNonRoot != nil {
		t.Errorf("runAsNonRoot set by default: %v", *sc.RunAsNonRoot)
	}

	// Two workers share nothing mutable.
	tmpl, _ := buildTemplate(baseConfig(k))
	a, b := tmpl.pod("o", "linux", "a"), tmpl.pod("o", "linux", "b")
	if envMap(a.Spec.Containers[0])["HODEI_WORKER_ID"] != "a" || envMap(b.Spec.Containers[0])["HODEI_WORKER_ID"] != "b" || a.Labels["hodei.worker.id"] != "a" {
		t.Errorf("pods share state: %v %v", a.Spec.Containers[0].Env, b.Spec.Containers[0].Env)
	}
}

// No resources: no requests or limits at all; a named service account:
// its own token setting is left alone.
func TestPodMappingMinimal(t *testing.T) {
	cfg := baseConfig(kcfg(func(k *config.Kubernetes) { k.ServiceAccountName = "ci-worker" }))
	cfg.Resources = domain.Resources{}
	cfg.Env = nil
	cfg.Slots = 0
	pod := podFor(t, cfg)
	c := worker(t, pod)
	if len(c.Resources.Requests) != 0 || len(c.Resources.Limits) != 0 {
		t.Errorf("resources %+v", c.Resources)
	}
	if pod.Spec.ServiceAccountName != "ci-worker" || pod.Spec.AutomountServiceAccountToken != nil {
		t.Errorf("serviceAccountName %q automount %v", pod.Spec.ServiceAccountName, pod.Spec.AutomountServiceAccountToken)
	}
	if c.Command != nil || c.Args != nil || pod.Spec.NodeSelector != nil || pod.Spec.Tolerations != nil {
		t.Errorf("unset fields set: %+v", pod.Spec)
	}
	if envMap(c)["HODEI_WORKER_SLOTS"] != "1" {
		t.Errorf("slots %v", envMap(c))
	}
}

// pod_template is merged under the provider's fields: the worker container
// is completed, not replaced, and keeps what only the template sets;
// sidecars, volumes, affinity and pull secrets stay; maps merge with the
// pool's keys winning; tolerations add up; the secure defaults give way to
// the template field by field.
func TestPodTemplateMerge(t *testing.T) {
	k := kcfg(func(k *config.Kubernetes) {
		k.NodeSelector = map[string]string{"pool": "ci", "disk": "ssd"}
		k.Tolerations = []map[string]any{{"key": "dedicated", "operator": "Exists"}}
		k.PodTemplate = yamlMap(t, `
restartPolicy: Always
automountServiceAccountToken: true
priorityClassName: ci-low
nodeSelector: {disk: hdd, zone: a}
tolerations:
  - {key: spot, operator: Exists, effect: NoSchedule}
  - {key: dedicated, operator: Exists}
imagePullSecrets: [{name: regcred}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 10
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {hodei.worker.pool: linux}}
securityContext: {fsGroup: 2000}
volumes:
  - name: cache
    emptyDir: {sizeLimit: 1Gi}
containers:
  - name: worker
    image: ignored/by-the-provider:1
    workingDir: /work
    env:
      - {name: FROM_TEMPLATE, value: t}
      - {name: HODEI_NATS_URL, value: overridden}
      - name: NODE
        valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    resources:
      requests: {cpu: "2", ephemeral-storage: 1Gi}
      limits: {ephemeral-storage: 2Gi}
    volumeMounts: [{name: cache, mountPath: /cache}]
    securityContext:
      runAsNonRoot: true
      runAsUser: 65534
      readOnlyRootFilesystem: true
      capabilities: {add: [NET_BIND_SERVICE]}
  - name: docker
    image: docker:dind
    securityContext: {privileged: true}
`)
	})
	pod := podFor(t, baseConfig(k))
	s := pod.Spec

	if s.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q: the provider's Never must win", s.RestartPolicy)
	}
	if s.AutomountServiceAccountToken == nil || !*s.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken %v: the template overrides the default", s.AutomountServiceAccountToken)
	}
	if s.PriorityClassName != "ci-low" || len(s.ImagePullSecrets) != 1 || s.Affinity == nil || s.Affinity.PodAntiAffinity == nil ||
		s.SecurityContext == nil || s.SecurityContext.FSGroup == nil || *s.SecurityContext.FSGroup != 2000 {
		t.Errorf("template pod fields lost: %+v", s)
	}
	if want := map[string]string{"pool": "ci", "disk": "ssd", "zone": "a"}; !reflect.DeepEqual(s.NodeSelector, want) {
		t.Errorf("nodeSelector %v, want %v", s.NodeSelector, want)
	}
	if len(s.Tolerations) != 2 || s.Tolerations[0].Key != "spot" || s.Tolerations[1].Key != "dedicated" {
		t.Errorf("tolerations %+v, want spot and dedicated once", s.Tolerations)
	}
	if len(s.Volumes) != 1 || s.Volumes[0].Name != "cache" || s.Volumes[0].EmptyDir == nil {
		t.Errorf("volumes %+v", s.Volumes)
	}
	if len(s.Containers) != 2 {
		t.Fatalf("containers %+v", s.Containers)
	}
	var sidecar corev1.Container
	for _, c := range s.Containers {
		if c.Name == "docker" {
			sidecar = c
		}
	}
	if sidecar.Image != "docker:dind" || sidecar.SecurityContext == nil || sidecar.SecurityContext.Privileged == nil || !*sidecar.SecurityContext.Privileged {
		t.Errorf("sidecar %+v", sidecar)
	}
	c := worker(t, pod)
	if c.Image != k.Image {
		t.Errorf("image %q: the pool's image must win", c.Image)
	}
	if c.WorkingDir != "/work" || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/cache" {
		t.Errorf("worker fields from the template lost: %+v", c)
	}
	env := envMap(c)
	if env["FROM_TEMPLATE"] != "t" || env["HODEI_NATS_URL"] != "nats://nats:4222" || env["HODEI_WORKER_ID"] != string(testID) {
		t.Errorf("env %v", env)
	}
	var nodeEnv *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "NODE" {
			nodeEnv = &c.Env[i]
		}
	}
	if nodeEnv == nil || nodeEnv.ValueFrom == nil || nodeEnv.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("valueFrom env lost: %+v", c.Env)
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().String() != "500m" || req.Memory().String() != "256Mi" || req.StorageEphemeral().String() != "1Gi" {
		t.Errorf("requests %v: pool cpu/memory win, template ephemeral-storage stays", req)
	}
	if lim.Cpu().String() != "500m" || lim.Memory().String() != "256Mi" || lim.StorageEphemeral().String() != "2Gi" {
		t.Errorf("limits %v", lim)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65534 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatalf("securityContext %+v: template fields lost", sc)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.SeccompProfile == nil ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) {
		t.Errorf("securityContext %+v: defaults the template did not touch must stay", sc)
	}
}

// Every secure default can be overridden (or removed with null) through
// pod_template.
func TestPodTemplateOverridesSecureDefaults(t *testing.T) {
	k := kcfg(func(k *config.Kubernetes) {
		k.PodTemplate = yamlMap(t, `
containers:
  - name: worker
    securityContext:
      allowPrivilegeEscalation: true
      capabilities: {drop: [NET_RAW]}
      seccompProfile: null
`)
	})
	sc := worker(t, podFor(t, baseConfig(k))).SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || !*sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"NET_RAW"}) || sc.SeccompProfile != nil {
		t.Errorf("securityContext %+v", sc)
	}

	k.PodTemplate = yamlMap(t, "containers: [{name: worker, securityContext: null}]")
	if sc := worker(t, podFor(t, baseConfig(k))).SecurityContext; sc != nil {
		t.Errorf("securityContext %+v, want none", sc)
	}
}

// ValidateConfig reports every problem at once, each with its key.
func TestValidateConfig(t *testing.T) {
	if err := ValidateConfig(kcfg(nil)); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	k := kcfg(func(k *config.Kubernetes) {
		k.PodTemplate = yamlMap(t, "nodeselector: {a: b}\ncontainers: [{image: x}, {name: side}]")
		k.Tolerations = []map[string]any{{"key": "a", "operator": "Maybe"}, {"value": "x"}, {"key": "b", "effect": "Sometimes", "tolerationseconds": 3}}
		k.NodeSelector = map[string]string{"bad key!": "v", "ok": "bad value!"}
		k.ServiceAccountName = "Not_A_Name"
		k.Labels = map[string]string{"hodei.autoscaler": "other", "ok": "fine"}
		k.Annotations = map[string]string{"bad key!": "v"}
		k.ImagePullPolicy = "Sometimes"
	})
	err := ValidateConfig(k)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`kubernetes.pod_template: not a valid pod spec: unknown field "nodeselector"`,
		"kubernetes.tolerations[0]: operator must be Equal or Exists",
		"kubernetes.tolerations[1]: an empty key needs operator Exists",
		`kubernetes.tolerations[2]: not a toleration`,
		`kubernetes.node_selector: key "bad key!"`,
		`kubernetes.node_selector.ok: value "bad value!"`,
		`kubernetes.service_account_name: "Not_A_Name"`,
		"kubernetes.labels.hodei.autoscaler: is an ownership label",
		"kubernetes.annotations",
		"kubernetes.image_pull_policy: must be Always, IfNotPresent or Never",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	k = kcfg(func(k *config.Kubernetes) {
		k.PodTemplate = yamlMap(t, "containers: [{image: x}, {name: side}]")
	})
	msg = ValidateConfig(k).Error()
	for _, want := range []string{"kubernetes.pod_template.containers[0]: a container needs a name", "kubernetes.pod_template.containers[1] (side): a sidecar needs an image"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	// New refuses what ValidateConfig refuses.
	if _, err := NewForClient(baseConfig(k), fake.NewClientset(), zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "sidecar needs an image") {
		t.Errorf("NewForClient: %v", err)
	}
}

func TestPhaseOf(t *testing.T) {
	now := time.Now()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	cases := []struct {
		name   string
		status corev1.PodStatus
		node   string
		phase  domain.Phase
		reason string
	}{
		{"just created", corev1.PodStatus{}, "", domain.PhasePending, "created, waiting for the scheduler"},
		{"unschedulable", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
			Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
		}}}, "", domain.PhasePending, "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
		{"image pull", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "x"`}},
		}}}, "n1", domain.PhasePending, `container worker: ImagePullBackOff: Back-off pulling image "x"`},
		{"starting", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		}}}, "n1", domain.PhasePending, "scheduled on node n1, starting containers"},
		{"ready", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}, "n1", domain.PhaseReady, "running and ready on node n1"},
		{"running not ready", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [worker]",
		}}}, "n1", domain.PhasePending, "running, not ready: ContainersNotReady: containers with unready status: [worker]"},
		{"worker done, sidecar runs", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "docker", State: running},
			{Name: "worker", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", ExitCode: 0}}},
		}}, "n1", domain.PhaseExited, "worker container terminated: Completed (exit code 0)"},
		{"worker OOM, sidecar runs", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "docker", State: running},
			{Name: "worker", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}},
		}}, "n1", domain.PhaseFailed, "worker container terminated: OOMKilled (exit code 137)"},
		{"succeeded", corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "worker", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}},
		}}, "n1", domain.PhaseExited, "pod succeeded; container worker terminated: Completed (exit code 0)"},
		{"evicted", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}, "n1",
			domain.PhaseFailed, "pod failed: Evicted: The node was low on resource: memory."},
		{"error exit", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "worker", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2, Message: "boom\n"}}},
		}}, "n1", domain.PhaseFailed, "pod failed; container worker terminated: Error (exit code 2): boom"},
		{"init failed", corev1.PodStatus{Phase: corev1.PodFailed, InitContainerStatuses: []corev1.ContainerStatus{
			{Name: "setup", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: metaTime(now)}}},
		}}, "n1", domain.PhaseFailed, "pod failed; container setup terminated: Error (exit code 1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{NodeName: c.node}, Status: c.status}
			ph, reason := phaseOf(pod)
			if ph != c.phase || reason != c.reason {
				t.Errorf("got %s %q\nwant %s %q", ph, reason, c.phase, c.reason)
			}
		})
	}
}

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t) }
