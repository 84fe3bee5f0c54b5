package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// inspectWorker inspects a container (by id or name) and maps it.
func (p *Provider) inspectWorker(ctx context.Context, ref string) (domain.Worker, error) {
	ci, err := p.cli.ContainerInspect(ctx, ref)
	if err != nil {
		return domain.Worker{}, err
	}
	return p.workerFromInspect(ci), nil
}

// workerFromInspect maps an inspected container to a worker.
func (p *Provider) workerFromInspect(ci container.InspectResponse) domain.Worker {
	var labels map[string]string
	if ci.Config != nil {
		labels = ci.Config.Labels
	}
	w := domain.Worker{
		ID:       domain.WorkerID(labels[domain.LabelWorkerID]),
		Pool:     domain.PoolName(labels[domain.LabelWorkerPool]),
		Provider: Name,
	}
	if ci.ContainerJSONBase == nil {
		w.Phase, w.Reason = domain.PhasePending, "container state unknown"
		return w
	}
	if t, err := time.Parse(time.RFC3339Nano, ci.Created); err == nil {
		w.CreatedAt = t
	}
	w.Phase, w.Reason = phaseOf(ci.State)
	return w
}

// phaseOf maps the engine's container state to a phase and a reason in
// plain words.
func phaseOf(st *container.State) (domain.Phase, string) {
	if st == nil {
		return domain.PhasePending, "container state unknown"
	}
	switch st.Status {
	case container.StateCreated:
		if st.Error != "" {
			if st.ExitCode != 0 {
				return domain.PhaseFailed, fmt.Sprintf("failed to start (exit code %d): %s", st.ExitCode, st.Error)
			}
			return domain.PhaseFailed, "failed to start: " + st.Error
		}
		return domain.PhasePending, "created, not started"
	case container.StateRestarting:
		return domain.PhasePending, "restarting after " + exitReason(st)
	case container.StatePaused:
		return domain.PhasePending, "paused"
	case container.StateRunning:
		return healthPhase(st.Health)
	case container.StateExited, container.StateRemoving:
		if st.OOMKilled || st.ExitCode != 0 {
			return domain.PhaseFailed, exitReason(st)
		}
		if st.Status == container.StateRemoving {
			return domain.PhaseExited, "being removed"
		}
		return domain.PhaseExited, exitReason(st)
	case container.StateDead:
		r := "dead (the engine failed to remove it)"
		if st.Error != "" {
			r += ": " + st.Error
		}
		return domain.PhaseFailed, r
	}
	return domain.PhasePending, fmt.Sprintf("unknown container state %q", st.Status)
}

// healthPhase maps a running container's health check, if any.
func healthPhase(h *container.Health) (domain.Phase, string) {
	if h == nil {
		return domain.PhaseReady, "running"
	}
	switch h.Status {
	case container.Healthy:
		return domain.PhaseReady, "running (healthy)"
	case container.Starting:
		return domain.PhasePending, "running, health check starting"
	case container.Unhealthy:
		r := fmt.Sprintf("health check unhealthy (%d failures in a row)", h.FailingStreak)
		if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
			if out := strings.TrimSpace(h.Log[n-1].Output); out != "" {
				r += ": " + truncate(out, 200)
			}
		}
		return domain.PhaseFailed, r
	}
	return domain.PhaseReady, "running"
}

// exitReason says how a container ended, e.g. "exited with code 137
// (OOMKilled)", "exited with code 137 (SIGKILL)" or "exited with code 2:
// <engine error>".
func exitReason(st *container.State) string {
	r := fmt.Sprintf("exited with code %d", st.ExitCode)
	switch {
	case st.OOMKilled:
		r += " (OOMKilled)"
	case st.ExitCode > 128:
		if sig, ok := signalNames[st.ExitCode-128]; ok {
			r += " (" + sig + ")"
		}
	}
	if st.Error != "" {
		r += ": " + st.Error
	}
	return r
}

// signalNames names the signals a container usually dies of; the exit code
// of a process killed by signal n is 128+n.
var signalNames = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
}

// workerFromSummary maps a running container of a listing (health is read
// from the status text, which the engine derives from the same state).
func (p *Provider) workerFromSummary(c container.Summary) domain.Worker {
	w := domain.Worker{
		ID:        domain.WorkerID(c.Labels[domain.LabelWorkerID]),
		Pool:      domain.PoolName(c.Labels[domain.LabelWorkerPool]),
		Provider:  Name,
		CreatedAt: time.Unix(c.Created, 0),
	}
	switch {
	case strings.Contains(c.Status, "(unhealthy)"):
		w.Phase, w.Reason = domain.PhaseFailed, "health check unhealthy"
	case strings.Contains(c.Status, "(health: starting)"):
		w.Phase, w.Reason = domain.PhasePending, "running, health check starting"
	case strings.Contains(c.Status, "(healthy)"):
		w.Phase, w.Reason = domain.PhaseReady, "running (healthy)"
	default:
		w.Phase, w.Reason = domain.PhaseReady, "running"
	}
	return w
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
