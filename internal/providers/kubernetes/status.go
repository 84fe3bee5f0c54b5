package kubernetes

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// workerOf maps a pod to a worker.
func (p *Provider) workerOf(pod *corev1.Pod, id domain.WorkerID) domain.Worker {
	ph, reason := phaseOf(pod)
	return domain.Worker{
		ID:        id,
		Pool:      p.cfg.Pool,
		Provider:  Name,
		Phase:     ph,
		Reason:    reason,
		CreatedAt: pod.CreationTimestamp.Time,
	}
}

// phaseOf maps a pod's status to a phase and a reason in the cluster's own
// words: the scheduler's message for an unschedulable pod, the kubelet's
// waiting reason for an image that cannot be pulled, the terminated
// container's reason, exit code and message for a pod that ended.
//
// The worker container decides: when it has terminated the worker is over,
// even if sidecars from pod_template keep the pod Running.
func phaseOf(pod *corev1.Pod) (domain.Phase, string) {
	worker := containerStatus(pod.Status.ContainerStatuses, WorkerContainer)
	if worker != nil && worker.State.Terminated != nil && pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded {
		t := worker.State.Terminated
		if t.ExitCode == 0 {
			return domain.PhaseExited, "worker container " + terminatedReason(t)
		}
		return domain.PhaseFailed, "worker container " + terminatedReason(t)
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return domain.PhaseExited, "pod succeeded" + containersEnded(pod)
	case corev1.PodFailed:
		r := "pod failed"
		if pod.Status.Reason != "" {
			r += ": " + pod.Status.Reason
		}
		if pod.Status.Message != "" {
			r += ": " + pod.Status.Message
		}
		return domain.PhaseFailed, r + containersEnded(pod)
	case corev1.PodRunning:
		if c := condition(pod, corev1.PodReady); c != nil && c.Status == corev1.ConditionTrue {
			return domain.PhaseReady, "running and ready on node " + pod.Spec.NodeName
		}
		return domain.PhasePending, "running, not ready" + conditionText(condition(pod, corev1.PodReady)) + waiting(pod)
	case corev1.PodPending:
		return domain.PhasePending, pendingReason(pod)
	case "":
		return domain.PhasePending, "created, waiting for the scheduler"
	}
	return domain.PhasePending, fmt.Sprintf("pod phase %s: %s", pod.Status.Phase, pod.Status.Reason)
}

// pendingReason says why a Pending pod is not running yet.
func pendingReason(pod *corev1.Pod) string {
	if c := condition(pod, corev1.PodScheduled); c != nil && c.Status != corev1.ConditionTrue {
		// "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match
		// Pod's node affinity/selector. ..."
		r := c.Reason
		if r == "" {
			r = "not scheduled"
		}
		if c.Message != "" {
			r += ": " + c.Message
		}
		return r
	}
	if pod.Spec.NodeName == "" {
		return "waiting for the scheduler"
	}
	if w := waiting(pod); w != "" {
		// "ErrImagePull: ...", "ImagePullBackOff: Back-off pulling image ...",
		// "CreateContainerConfigError: secret \"x\" not found"
		return strings.TrimPrefix(w, "; ")
	}
	if reason := pod.Status.Reason; reason != "" {
		return reason + ": " + pod.Status.Message
	}
	return "scheduled on node " + pod.Spec.NodeName + ", starting containers"
}

// waiting describes containers (init containers first) that wait for
// something other than a plain start, as "; name: Reason: message".
func waiting(pod *corev1.Pod) string {
	var b strings.Builder
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			w := s.State.Waiting
			if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
				continue
			}
			fmt.Fprintf(&b, "; container %s: %s", s.Name, w.Reason)
			if w.Message != "" {
				b.WriteString(": " + w.Message)
			}
		}
	}
	return b.String()
}

// containersEnded describes the containers that terminated with an error
// (or the worker's, whatever its exit code), as "; container x: ...".
func containersEnded(pod *corev1.Pod) string {
	var b strings.Builder
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			t := s.State.Terminated
			if t == nil || (t.ExitCode == 0 && s.Name != WorkerContainer) {
				continue
			}
			fmt.Fprintf(&b, "; container %s %s", s.Name, terminatedReason(t))
		}
	}
	return b.String()
}

// terminatedReason is "terminated: Error (exit code 2): message".
func terminatedReason(t *corev1.ContainerStateTerminated) string {
	r := "terminated"
	if t.Reason != "" {
		r += ": " + t.Reason
	}
	r += fmt.Sprintf(" (exit code %d", t.ExitCode)
	if t.Signal != 0 {
		r += fmt.Sprintf(", signal %d", t.Signal)
	}
	r += ")"
	if msg := strings.TrimSpace(t.Message); msg != "" {
		r += ": " + truncate(msg, 300)
	}
	return r
}

func conditionText(c *corev1.PodCondition) string {
	if c == nil || (c.Reason == "" && c.Message == "") {
		return ""
	}
	r := ": " + c.Reason
	if c.Message != "" {
		r += ": " + c.Message
	}
	return r
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
