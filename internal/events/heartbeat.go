package events

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Worker heartbeats travel on core NATS, <prefix>.heartbeats.<pool>: they
// are the worker's word of now, worth nothing once old, so no stream
// stores them (docs/events.md).

// Heartbeat is <prefix>.heartbeats.<pool>.
func (s Subjects) Heartbeat(pool domain.PoolName) string {
	return s.Prefix + ".heartbeats." + string(pool)
}

// AllHeartbeats is the filter of every pool's heartbeats.
func (s Subjects) AllHeartbeats() string { return s.Prefix + ".heartbeats.*" }

// HeartbeatEvent is a decoded, validated heartbeat.
type HeartbeatEvent struct {
	Pool   domain.PoolName
	Worker domain.WorkerID
	Jobs   []domain.JobID
}

// DecodeHeartbeat validates a heartbeat with the job events' rules: the
// size limit, the raw-text check, the subject's pool, a canonical worker
// id and every job id by domain.ValidateJobID.
func (d Decoder) DecodeHeartbeat(subject string, payload []byte) (HeartbeatEvent, error) {
	if d.MaxBytes > 0 && len(payload) > d.MaxBytes {
		return HeartbeatEvent{}, invalid(domain.ReasonTooLarge, "heartbeat of %d bytes exceeds nats.max_event_bytes %d", len(payload), d.MaxBytes)
	}
	pool, ok := strings.CutPrefix(subject, d.Subjects.Prefix+".heartbeats.")
	if !ok || domain.ValidatePoolName(pool) != nil {
		return HeartbeatEvent{}, invalid(domain.ReasonBadSubject, "subject %q is not %s.heartbeats.<pool>", subject, d.Subjects.Prefix)
	}
	var ev struct {
		SpecVersion string               `json:"specversion"`
		Type        string               `json:"type"`
		Data        domain.HeartbeatData `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return HeartbeatEvent{}, invalid(domain.ReasonNotJSON, "heartbeat is not a JSON CloudEvent: %v", err)
	}
	if err := domain.CheckJSONText(payload); err != nil {
		return HeartbeatEvent{}, err
	}
	if ev.Type != domain.TypeWorkerHeartbeat {
		return HeartbeatEvent{}, invalid(domain.ReasonWrongType, "type %q is not %s", ev.Type, domain.TypeWorkerHeartbeat)
	}
	if ev.Data.Pool != "" && ev.Data.Pool != pool {
		return HeartbeatEvent{}, invalid(domain.ReasonPoolMismatch, "data.pool %q contradicts subject pool %q", ev.Data.Pool, pool)
	}
	w, err := domain.ParseWorkerID(ev.Data.WorkerID)
	if err != nil {
		return HeartbeatEvent{}, invalid(domain.ReasonBadWorkerID, "data.worker_id: %v", err)
	}
	out := HeartbeatEvent{Pool: domain.PoolName(pool), Worker: w}
	for _, j := range ev.Data.Jobs {
		if err := domain.ValidateJobID(j); err != nil {
			return HeartbeatEvent{}, err
		}
		out.Jobs = append(out.Jobs, domain.JobID(j))
	}
	return out, nil
}

// SubscribeHeartbeats delivers every valid heartbeat to fn and every
// invalid one to bad, from the NATS client's goroutine.
func SubscribeHeartbeats(nc *nats.Conn, d Decoder, fn func(HeartbeatEvent), bad func(error)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(d.Subjects.AllHeartbeats(), func(m *nats.Msg) {
		hb, err := d.DecodeHeartbeat(m.Subject, m.Data)
		if err != nil {
			bad(err)
			return
		}
		fn(hb)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", d.Subjects.AllHeartbeats(), err)
	}
	return sub, nil
}
