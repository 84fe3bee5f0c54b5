package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// Drain is the drain handshake: SIGTERM, then wait for the container to
// exit on its own while spec.Busy says it still runs a job (up to
// spec.Timeout), or for spec.Grace once it is idle; past that it is
// killed. The container is removed in every case.
func (p *Provider) Drain(ctx context.Context, id domain.WorkerID, spec providers.DrainSpec) (bool, error) {
	name := domain.WorkerName(id)
	ci, found, err := p.lookup(ctx, id)
	if err != nil {
		return false, fmt.Errorf("draining %w", err)
	}
	if !found {
		return false, nil
	}
	poll := spec.Poll
	if poll <= 0 {
		poll = time.Second
	}
	start := time.Now()
	waitC, errC := p.cli.ContainerWait(ctx, ci.ID, container.WaitConditionNotRunning)
	if err := p.cli.ContainerKill(ctx, ci.ID, "SIGTERM"); err != nil && !isNotFound(err) && !isConflict(err) {
		return false, fmt.Errorf("signalling container %s: %w", name, err)
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	killedBusy := false
wait:
	for {
		select {
		case <-waitC:
			break wait
		case err := <-errC:
			if err != nil && !isNotFound(err) {
				return false, fmt.Errorf("waiting for container %s: %w", name, err)
			}
			break wait
		case <-tick.C:
			elapsed, busy := time.Since(start), spec.Busy != nil && spec.Busy()
			if (elapsed >= spec.Grace && !busy) || elapsed >= spec.Timeout {
				killedBusy = busy
				break wait // remove (forced) kills it
			}
		case <-ctx.Done():
			return false, fmt.Errorf("draining container %s: %w", name, ctx.Err())
		}
	}
	if err := p.remove(ctx, ci.ID); err != nil {
		return killedBusy, fmt.Errorf("removing drained container %s: %w", name, err)
	}
	p.log.Debug().Str("worker_id", string(id)).Stringer("took", time.Since(start)).Bool("killed_busy", killedBusy).Msg("container drained and removed")
	return killedBusy, nil
}
