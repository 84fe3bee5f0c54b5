package main

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// running is the set of jobs the worker runs now, which its heartbeat
// reports (docs/events.md, worker heartbeats): the autoscaler keeps a
// worker that reports a job busy whatever the job events say.
type running struct {
	mu   sync.Mutex
	jobs map[string]struct{}
	kick chan struct{} // a job started or ended: report at once
}

func newRunning() *running {
	return &running{jobs: map[string]struct{}{}, kick: make(chan struct{}, 1)}
}

func (r *running) add(id string)    { r.set(id, true) }
func (r *running) remove(id string) { r.set(id, false) }

func (r *running) set(id string, on bool) {
	r.mu.Lock()
	if on {
		r.jobs[id] = struct{}{}
	} else {
		delete(r.jobs, id)
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *running) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.jobs[id]
	return ok
}

func (r *running) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.jobs))
	for id := range r.jobs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// heartbeat publishes the running jobs every interval, and at once when
// they change, until stop is closed.
func (w *worker) heartbeat(nc *nats.Conn, stop <-chan struct{}) {
	t := time.NewTicker(w.s.HeartbeatInterval)
	defer t.Stop()
	for {
		w.sendHeartbeat(nc)
		select {
		case <-stop:
			return
		case <-t.C:
		case <-w.run.kick:
		}
	}
}

func (w *worker) sendHeartbeat(nc *nats.Conn) {
	data, err := json.Marshal(domain.HeartbeatData{WorkerID: w.s.WorkerID, Pool: w.s.Pool, Jobs: w.run.list()})
	if err != nil {
		w.log.Printf("encoding heartbeat: %v", err)
		return
	}
	body, err := json.Marshal(domain.CloudEvent{SpecVersion: "1.0", ID: newUUID(), Source: "hodei-worker/" + w.s.WorkerID,
		Type: domain.TypeWorkerHeartbeat, Time: time.Now().UTC(), DataContentType: "application/json", Data: data})
	if err != nil {
		w.log.Printf("encoding heartbeat: %v", err)
		return
	}
	// Core NATS: a heartbeat lost while disconnected is replaced by the next.
	if err := nc.Publish(w.s.Prefix+".heartbeats."+w.s.Pool, body); err != nil && err != nats.ErrConnectionReconnecting {
		w.log.Printf("publishing heartbeat: %v", err)
	}
}
