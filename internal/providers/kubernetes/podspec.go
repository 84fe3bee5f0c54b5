package kubernetes

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// podTemplate is the pool's pod, computed once: every worker's pod is a
// copy with the worker's name, id label and HODEI_WORKER_ID filled in.
type podTemplate struct {
	meta   metav1.ObjectMeta
	spec   corev1.PodSpec
	worker int // index of the worker container in spec.Containers
	idEnv  int // index of HODEI_WORKER_ID in its Env
}

// pod returns worker id's pod.
func (t *podTemplate) pod(owner string, pool domain.PoolName, id domain.WorkerID) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: *t.meta.DeepCopy(), Spec: *t.spec.DeepCopy()}
	pod.Name = domain.WorkerName(id)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	maps.Copy(pod.Labels, domain.WorkerLabels(owner, pool, id))
	pod.Spec.Containers[t.worker].Env[t.idEnv].Value = string(id)
	return pod
}

// secureDefaults is the bottom layer of every worker pod: what the
// provider sets unless pod_template says otherwise.
//
// The worker container runs without privilege escalation, without any
// Linux capability and under the runtime's default seccomp profile.
// runAsNonRoot is not set: the kubelet refuses to start an image whose
// user is root (or not numeric) when it is, and most CI worker images are
// such images; pod_template turns it on (see docs/kubernetes.md). When no
// service_account_name is set the pod would get the namespace's "default"
// account, whose API token a worker has no use for: it is not mounted.
func secureDefaults(k config.Kubernetes) corev1.PodSpec {
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: WorkerContainer,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: new(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		}},
	}
	if k.ServiceAccountName == "" {
		spec.AutomountServiceAccountToken = new(false)
	}
	return spec
}

// providerLayer is the top layer: the fields the pool's settings own,
// which win over pod_template.
func providerLayer(cfg Config) corev1.PodSpec {
	k := cfg.Kubernetes
	env := make([]corev1.EnvVar, 0, len(cfg.Env)+3)
	for _, name := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, corev1.EnvVar{Name: name, Value: cfg.Env[name]})
	}
	env = slices.DeleteFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == domain.EnvWorkerID || e.Name == domain.EnvWorkerPool || e.Name == domain.EnvWorkerSlots
	})
	env = append(env,
		corev1.EnvVar{Name: domain.EnvWorkerID, Value: "-"}, // replaced per worker
		corev1.EnvVar{Name: domain.EnvWorkerPool, Value: string(cfg.Pool)},
		corev1.EnvVar{Name: domain.EnvWorkerSlots, Value: strconv.Itoa(max(cfg.Slots, 1))},
	)
	c := corev1.Container{
		Name:            WorkerContainer,
		Image:           k.Image,
		ImagePullPolicy: corev1.PullPolicy(k.ImagePullPolicy),
		Command:         k.Command,
		Args:            k.Args,
		Env:             env,
	}
	if rl := resourceList(cfg.Resources); len(rl) > 0 {
		c.Resources = corev1.ResourceRequirements{Requests: rl, Limits: rl.DeepCopy()}
	}
	grace := int64(math.Ceil(max(cfg.StopGrace, cfg.DrainTimeout, 0).Seconds()))
	spec := corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		RestartPolicy:                 corev1.RestartPolicyNever,
		ServiceAccountName:            k.ServiceAccountName,
		NodeSelector:                  k.NodeSelector,
		TerminationGracePeriodSeconds: &grace,
	}
	return spec
}

// resourceList turns the pool's resources into requests (and limits):
// CPU in millicores, memory in MiB; zero values are left out.
func resourceList(r domain.Resources) corev1.ResourceList {
	rl := corev1.ResourceList{}
	if r.CPUMillis > 0 {
		rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.CPUMillis, resource.DecimalSI)
	}
	if r.MemoryMB > 0 {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(r.MemoryMB<<20, resource.BinarySI)
	}
	return rl
}

// buildTemplate merges the three layers, bottom to top: the secure
// defaults, pod_template, the pool's own settings. The merge is
// Kubernetes' strategic merge (as kubectl apply does it), so lists with a
// merge key merge by it: containers, env and volume mounts by name (the
// worker container of pod_template is completed, not replaced; its
// sidecars stay), volumes by name. Maps merge key by key (nodeSelector,
// resources); the pool's keys win. Tolerations are the union of the
// template's and the pool's.
func buildTemplate(cfg Config) (*podTemplate, error) {
	k := cfg.Kubernetes
	tmpl, err := decodeTemplate(k.PodTemplate)
	if err != nil {
		return nil, err
	}
	tols, err := decodeTolerations(k.Tolerations)
	if err != nil {
		return nil, err
	}
	top := providerLayer(cfg)

	merged, err := json.Marshal(secureDefaults(k))
	if err != nil {
		return nil, fmt.Errorf("encoding the secure defaults: %w", err)
	}
	if len(tmpl) > 0 {
		if merged, err = strategicpatch.StrategicMergePatch(merged, tmpl, corev1.PodSpec{}); err != nil {
			return nil, fmt.Errorf("kubernetes.pod_template: merging it over the secure defaults: %w", err)
		}
	}
	topJSON, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encoding the pool's pod settings: %w", err)
	}
	if merged, err = strategicpatch.StrategicMergePatch(merged, topJSON, corev1.PodSpec{}); err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: merging the pool's settings over it: %w", err)
	}
	var spec corev1.PodSpec
	if err := strictUnmarshal(merged, &spec); err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: the merged pod spec does not decode: %w", err)
	}

	// Tolerations: the template's, then the pool's (without duplicates).
	for _, t := range tols {
		if !slices.ContainsFunc(spec.Tolerations, func(x corev1.Toleration) bool { return equality.Semantic.DeepEqual(x, t) }) {
			spec.Tolerations = append(spec.Tolerations, t)
		}
	}

	t := &podTemplate{spec: spec, worker: -1, idEnv: -1}
	for i, c := range spec.Containers {
		if c.Name == WorkerContainer {
			t.worker = i
		}
	}
	if t.worker < 0 {
		return nil, errors.New("kubernetes.pod_template: the worker container went missing in the merge (a $patch directive?)")
	}
	for i, e := range spec.Containers[t.worker].Env {
		if e.Name == domain.EnvWorkerID {
			t.idEnv = i
		}
	}
	if t.idEnv < 0 {
		return nil, fmt.Errorf("kubernetes.pod_template: %s went missing from the worker's env in the merge", domain.EnvWorkerID)
	}
	t.meta = metav1.ObjectMeta{
		Namespace:   k.Namespace,
		Labels:      maps.Clone(k.Labels),
		Annotations: maps.Clone(k.Annotations),
	}
	return t, nil
}

// decodeTemplate checks that pod_template is a PodSpec (unknown or
// misspelt fields are errors) and returns it as JSON, or nil when empty.
func decodeTemplate(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	data, err := json.Marshal(jsonable(m))
	if err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: %w", err)
	}
	var spec corev1.PodSpec
	if err := strictUnmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: not a valid pod spec: %w", err)
	}
	var errs []error
	for i, c := range spec.Containers {
		key := fmt.Sprintf("kubernetes.pod_template.containers[%d]", i)
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: a container needs a name (%q is the worker's, merged with the provider's)", key, WorkerContainer))
		case c.Name != WorkerContainer && c.Image == "":
			errs = append(errs, fmt.Errorf("%s (%s): a sidecar needs an image", key, c.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return data, nil
}

// decodeTolerations checks and decodes the pool's tolerations.
func decodeTolerations(ts []map[string]any) ([]corev1.Toleration, error) {
	out := make([]corev1.Toleration, 0, len(ts))
	var errs []error
	for i, m := range ts {
		key := fmt.Sprintf("kubernetes.tolerations[%d]", i)
		data, err := json.Marshal(jsonable(m))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		var t corev1.Toleration
		if err := strictUnmarshal(data, &t); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a toleration (key, operator, value, effect, tolerationSeconds): %w", key, err))
			continue
		}
		switch t.Operator {
		case "", corev1.TolerationOpEqual:
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, fmt.Errorf("%s: operator Exists takes no value (got %q)", key, t.Value))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: operator must be Equal or Exists (got %q)", key, t.Operator))
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, fmt.Errorf("%s: effect must be NoSchedule, PreferNoSchedule or NoExecute, or empty for all (got %q)", key, t.Effect))
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, fmt.Errorf("%s: an empty key needs operator Exists (it then tolerates every taint)", key))
		}
		if t.Key != "" {
			for _, msg := range validation.IsQualifiedName(t.Key) {
				errs = append(errs, fmt.Errorf("%s.key: %q: %s", key, t.Key, msg))
			}
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// ValidateConfig reports every problem of a pool's kubernetes settings,
// keyed from "kubernetes." (the caller prefixes the pool): the rules of
// config.Kubernetes.Check (image, image_pull_policy, namespace, qps,
// burst), which config validation applies too, and what needs Kubernetes'
// types: pod_template must decode into a PodSpec (field names as in the
// Kubernetes API, camelCase) and merge with the provider's fields;
// tolerations, node_selector, service_account_name, labels and annotations
// must be what the API server accepts. autoscaler validate and New refuse
// the same settings.
func ValidateConfig(k config.Kubernetes) error {
	errs := []error{k.Check()}
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := decodeTemplate(k.PodTemplate)
	add(err)
	templateOK := err == nil
	_, err = decodeTolerations(k.Tolerations)
	add(err)
	tolerationsOK := err == nil

	for _, key := range slices.Sorted(maps.Keys(k.NodeSelector)) {
		for _, msg := range validation.IsQualifiedName(key) {
			add(fmt.Errorf("kubernetes.node_selector: key %q: %s", key, msg))
		}
		for _, msg := range validation.IsValidLabelValue(k.NodeSelector[key]) {
			add(fmt.Errorf("kubernetes.node_selector.%s: value %q: %s", key, k.NodeSelector[key], msg))
		}
	}
	if k.ServiceAccountName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(k.ServiceAccountName) {
			add(fmt.Errorf("kubernetes.service_account_name: %q: %s", k.ServiceAccountName, msg))
		}
	}
	for _, fe := range metavalidation.ValidateLabels(k.Labels, field.NewPath("kubernetes", "labels")) {
		add(errors.New(fe.Error()))
	}
	for _, key := range slices.Sorted(maps.Keys(k.Labels)) {
		switch key {
		case domain.LabelWorker, domain.LabelWorkerID, domain.LabelWorkerPool, domain.LabelOwner:
			add(fmt.Errorf("kubernetes.labels.%s: is an ownership label the autoscaler sets on every worker; remove it", key))
		}
	}
	for _, fe := range apivalidation.ValidateAnnotations(k.Annotations, field.NewPath("kubernetes", "annotations")) {
		add(errors.New(fe.Error()))
	}
	if templateOK && tolerationsOK {
		// The merge itself, with a stand-in pool.
		_, err := buildTemplate(Config{Owner: "validate", Pool: "validate", Kubernetes: k})
		add(err)
	}
	return errors.Join(errs...)
}

// strictUnmarshal decodes JSON as the API server does: field names are
// case-sensitive, and unknown or repeated fields are errors.
func strictUnmarshal(data []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// jsonable converts what a YAML decoder produced (maps with non-string
// keys included) into values encoding/json accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}
