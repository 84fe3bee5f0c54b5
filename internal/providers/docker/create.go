package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/strslice"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Create starts the worker spec.ID. It is idempotent: when a container with
// the worker's name exists and carries this provider's labels for that id,
// it is adopted (and started if it was only created); a container of that
// name that is not ours is an error. The worker is returned as inspected
// after the start.
func (p *Provider) Create(ctx context.Context, spec providers.WorkerSpec) (domain.Worker, error) {
	name := domain.WorkerName(spec.ID)
	if err := spec.Check(p.cfg.Pool); err != nil {
		return domain.Worker{}, fmt.Errorf("creating container %s: %w", name, err)
	}
	if err := p.negotiate(ctx); err != nil {
		return domain.Worker{}, fmt.Errorf("creating container %s: %w", name, err)
	}

	// A retried Create finds its container without touching the image.
	ci, err := p.cli.ContainerInspect(ctx, name)
	switch {
	case err == nil:
		return p.adopt(ctx, spec.ID, ci)
	case !isNotFound(err):
		return domain.Worker{}, fmt.Errorf("creating container %s: inspecting existing container: %w", name, err)
	}

	if err := p.ensureImage(ctx); err != nil {
		return domain.Worker{}, fmt.Errorf("creating container %s: %w", name, err)
	}

	cfg, hostCfg := p.containerConfig(spec.ID)
	created, err := p.cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, name)
	if err != nil {
		if !isConflict(err) {
			return domain.Worker{}, fmt.Errorf("creating container %s: %w", name, err)
		}
		// Lost a race with a concurrent Create of the same worker.
		ci, ierr := p.inspectReserved(ctx, name)
		if ierr != nil {
			return domain.Worker{}, fmt.Errorf("creating container %s: name is taken (%v) and inspecting it failed: %w", name, err, ierr)
		}
		return p.adopt(ctx, spec.ID, ci)
	}
	for _, w := range created.Warnings {
		p.log.Warn().Str("worker_id", string(spec.ID)).Str("warning", w).Msg("docker create warning")
	}
	if err := p.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return domain.Worker{}, fmt.Errorf("starting container %s: %w", name, err)
	}
	w, err := p.inspectWorker(ctx, created.ID)
	if err != nil {
		return domain.Worker{}, fmt.Errorf("inspecting started container %s: %w", name, err)
	}
	p.log.Debug().Str("worker_id", string(spec.ID)).Str("container", shortID(created.ID)).Msg("container created and started")
	return w, nil
}

// inspectReserved inspects a container whose name was just reported taken.
// The engine reserves a name before the container can be inspected, so a
// concurrent creation may briefly answer "no such container": retry for a
// few seconds.
func (p *Provider) inspectReserved(ctx context.Context, name string) (container.InspectResponse, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ci, err := p.cli.ContainerInspect(ctx, name)
		if err == nil || !isNotFound(err) || time.Now().After(deadline) {
			return ci, err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ci, ctx.Err()
		}
	}
}

// adopt takes over an existing container of the worker's name if it is ours.
func (p *Provider) adopt(ctx context.Context, id domain.WorkerID, ci container.InspectResponse) (domain.Worker, error) {
	name := domain.WorkerName(id)
	var labels map[string]string
	if ci.Config != nil {
		labels = ci.Config.Labels
	}
	if !p.ownedAs(labels, id) {
		return domain.Worker{}, fmt.Errorf("creating container %s: the name belongs to a container this autoscaler does not own (%s): %w", name, shortID(ci.ID), ErrNotOwned)
	}
	if ci.State != nil && ci.State.Status == container.StateCreated {
		if err := p.cli.ContainerStart(ctx, ci.ID, container.StartOptions{}); err != nil {
			return domain.Worker{}, fmt.Errorf("starting adopted container %s: %w", name, err)
		}
		w, err := p.inspectWorker(ctx, ci.ID)
		if err != nil {
			return domain.Worker{}, fmt.Errorf("inspecting adopted container %s: %w", name, err)
		}
		p.log.Debug().Str("worker_id", string(id)).Msg("adopted and started existing container")
		return w, nil
	}
	p.log.Debug().Str("worker_id", string(id)).Msg("adopted existing container")
	return p.workerFromInspect(ci), nil
}

// containerConfig builds the container and host configuration of a worker.
func (p *Provider) containerConfig(id domain.WorkerID) (*container.Config, *container.HostConfig) {
	d := p.cfg.Docker
	cfg := &container.Config{
		Image:  d.Image,
		Env:    p.env(id),
		Labels: domain.TierWorkerLabels(p.cfg.Owner, p.cfg.Pool, id, p.cfg.Tier),
		User:   d.User,
	}
	if len(d.Command) > 0 {
		cfg.Cmd = strslice.StrSlice(d.Command)
	}
	if len(d.Entrypoint) > 0 {
		cfg.Entrypoint = strslice.StrSlice(d.Entrypoint)
	}
	init := true
	hostCfg := &container.HostConfig{
		NetworkMode:    container.NetworkMode(d.NetworkMode),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		CapDrop:        strslice.StrSlice(d.CapDrop),
		CapAdd:         strslice.StrSlice(d.CapAdd),
		ReadonlyRootfs: d.ReadOnlyRootfs,
		Privileged:     d.Privileged,
		Mounts:         p.mounts,
		Init:           &init,
	}
	if !d.Privileged {
		hostCfg.SecurityOpt = []string{"no-new-privileges:true"}
	}
	if m := p.cfg.Resources.CPUMillis; m > 0 {
		hostCfg.NanoCPUs = m * 1_000_000
	}
	if mb := p.cfg.Resources.MemoryMB; mb > 0 {
		hostCfg.Memory = mb << 20
	}
	return cfg, hostCfg
}

// ensureImage applies the pull policy.
func (p *Provider) ensureImage(ctx context.Context) error {
	ref := p.cfg.Docker.Image
	if p.policy != PullAlways {
		_, err := p.cli.ImageInspect(ctx, ref)
		if err == nil {
			return nil
		}
		if !isNotFound(err) {
			return fmt.Errorf("inspecting image %q: %w", ref, err)
		}
		if p.policy == PullNever {
			return fmt.Errorf("image %q is not present and the pull policy is %q: %w", ref, PullNever, ErrImageNotPresent)
		}
	}
	return p.pull(ctx, ref)
}

// pull pulls ref and reads the progress stream to its end, where the
// engine reports pull errors.
func (p *Provider) pull(ctx context.Context, ref string) error {
	rc, err := p.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pulling image %q (pull policy %s): %w", ref, p.policy, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("pulling image %q (pull policy %s): reading progress: %w", ref, p.policy, err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return fmt.Errorf("pulling image %q (pull policy %s): %s", ref, p.policy, msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return fmt.Errorf("pulling image %q (pull policy %s): %s", ref, p.policy, msg.Error)
		}
	}
	p.log.Info().Str("image", ref).Msg("pulled image")
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
