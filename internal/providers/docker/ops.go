package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// lookup inspects the worker's container and checks that it is ours. It
// returns found=false when no container has the worker's name.
func (p *Provider) lookup(ctx context.Context, id domain.WorkerID) (container.InspectResponse, bool, error) {
	name := domain.WorkerName(id)
	if err := p.negotiate(ctx); err != nil {
		return container.InspectResponse{}, false, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	ci, err := p.cli.ContainerInspect(ctx, name)
	if err != nil {
		if isNotFound(err) {
			return ci, false, nil
		}
		return ci, false, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	var labels map[string]string
	if ci.Config != nil {
		labels = ci.Config.Labels
	}
	if !p.ownedAs(labels, id) {
		return ci, false, fmt.Errorf("container %s (%s): %w", name, shortID(ci.ID), ErrNotOwned)
	}
	return ci, true, nil
}

// Stop asks the worker's container to stop (the image's stop signal,
// SIGTERM by default), lets the engine kill it after grace, and removes it.
// A missing container is success; a container of that name that is not ours
// is left alone and reported with ErrNotOwned.
func (p *Provider) Stop(ctx context.Context, id domain.WorkerID, grace time.Duration) error {
	name := domain.WorkerName(id)
	ci, found, err := p.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("stopping %w", err)
	}
	if !found {
		return nil
	}
	// The engine's timeout is in whole seconds; round up so the worker
	// gets at least its grace period.
	secs := 0
	if grace > 0 {
		secs = int(math.Ceil(grace.Seconds()))
	}
	// Act on the inspected id, not the name: a container created under
	// the same name in between is not the one we checked.
	if err := p.cli.ContainerStop(ctx, ci.ID, container.StopOptions{Timeout: &secs}); err != nil && !isNotFound(err) {
		return fmt.Errorf("stopping container %s: %w", name, err)
	}
	if err := p.remove(ctx, ci.ID); err != nil {
		return fmt.Errorf("removing stopped container %s: %w", name, err)
	}
	p.log.Debug().Str("worker_id", string(id)).Stringer("grace", grace).Msg("container stopped and removed")
	return nil
}

// Delete removes the worker's container at once (killing it if it runs).
// A missing container is success; a container of that name that is not ours
// is left alone and reported with ErrNotOwned.
func (p *Provider) Delete(ctx context.Context, id domain.WorkerID) error {
	name := domain.WorkerName(id)
	ci, found, err := p.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("deleting %w", err)
	}
	if !found {
		return nil
	}
	if err := p.remove(ctx, ci.ID); err != nil {
		return fmt.Errorf("deleting container %s: %w", name, err)
	}
	p.log.Debug().Str("worker_id", string(id)).Msg("container deleted")
	return nil
}

// remove force-removes a container; missing or already being removed is
// success.
func (p *Provider) remove(ctx context.Context, containerID string) error {
	err := p.cli.ContainerRemove(ctx, containerID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, isNotFound(err):
		return nil
	case isConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	}
	return err
}

func (p *Provider) filterArgs() filters.Args {
	args := filters.NewArgs()
	for _, l := range p.labelFilters() {
		args.Add("label", l)
	}
	return args
}

// List returns every worker of the pool this autoscaler owns. Running
// containers are mapped from the listing; the others are inspected for
// their exit code and error.
func (p *Provider) List(ctx context.Context) ([]domain.Worker, error) {
	if err := p.negotiate(ctx); err != nil {
		return nil, fmt.Errorf("listing containers of pool %s: %w", p.cfg.Pool, err)
	}
	cs, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: p.filterArgs()})
	if err != nil {
		return nil, fmt.Errorf("listing containers of pool %s: %w", p.cfg.Pool, err)
	}
	out := make([]domain.Worker, 0, len(cs))
	for _, c := range cs {
		if _, ok := p.owned(c.Labels); !ok {
			continue // the engine filtered; this guards against a misbehaving one
		}
		if c.State == container.StateRunning {
			out = append(out, p.workerFromSummary(c))
			continue
		}
		w, err := p.inspectWorker(ctx, c.ID)
		if err != nil {
			if isNotFound(err) {
				continue // removed since the listing
			}
			return nil, fmt.Errorf("listing containers of pool %s: inspecting %s: %w", p.cfg.Pool, shortID(c.ID), err)
		}
		out = append(out, w)
	}
	return out, nil
}

// watchedActions are the container events that change a worker's phase.
var watchedActions = map[events.Action]bool{
	events.ActionCreate:  true,
	events.ActionStart:   true,
	events.ActionDie:     true,
	events.ActionOOM:     true,
	events.ActionDestroy: true,
	events.ActionStop:    true,
	events.ActionKill:    true,
	events.ActionPause:   true,
	events.ActionUnPause: true,
	events.ActionRestart: true,
}

// inspectTimeout bounds one inspect made for an event.
const inspectTimeout = 10 * time.Second

// Watch follows the engine's events for this pool's containers and pushes
// the worker's state after each lifecycle event (Gone once it is
// destroyed). The channel is closed when ctx ends or the event stream
// breaks; the caller then lists and watches again.
func (p *Provider) Watch(ctx context.Context) (<-chan domain.WorkerChange, error) {
	if err := p.negotiate(ctx); err != nil {
		return nil, fmt.Errorf("watching containers of pool %s: %w", p.cfg.Pool, err)
	}
	args := p.filterArgs()
	args.Add("type", string(events.ContainerEventType))
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := p.cli.Events(ctx, events.ListOptions{Filters: args})
	out := make(chan domain.WorkerChange, 64)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
					p.log.Warn().Err(err).Msg("docker event stream ended; the caller re-lists and watches again")
				}
				return
			case m := <-msgs:
				ch, ok := p.change(ctx, m)
				if !ok {
					continue
				}
				select {
				case out <- ch:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// change turns an engine event into a worker change.
func (p *Provider) change(ctx context.Context, m events.Message) (domain.WorkerChange, bool) {
	if m.Type != events.ContainerEventType {
		return domain.WorkerChange{}, false
	}
	if !watchedActions[m.Action] && !strings.HasPrefix(string(m.Action), string(events.ActionHealthStatus)) {
		return domain.WorkerChange{}, false
	}
	// Container events carry the container's labels as attributes.
	id, ok := p.owned(m.Actor.Attributes)
	if !ok {
		return domain.WorkerChange{}, false
	}
	if m.Action == events.ActionDestroy {
		return domain.WorkerChange{ID: id, Gone: true}, true
	}
	ictx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	ci, err := p.cli.ContainerInspect(ictx, m.Actor.ID)
	if err != nil {
		if isNotFound(err) {
			return domain.WorkerChange{ID: id, Gone: true}, true
		}
		if ctx.Err() == nil {
			p.log.Warn().Err(err).Str("worker_id", string(id)).Str("action", string(m.Action)).Msg("inspecting container after event")
		}
		return domain.WorkerChange{}, false
	}
	var labels map[string]string
	if ci.Config != nil {
		labels = ci.Config.Labels
	}
	if !p.ownedAs(labels, id) {
		return domain.WorkerChange{}, false
	}
	return domain.WorkerChange{ID: id, Worker: p.workerFromInspect(ci)}, true
}
