package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

// queue publishes job.queued events, so a new user can see the daemon
// scale without writing a scheduler.
func queue(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("queue", "queue [--config FILE | FILE] [--pool P] [--count N] [--duration 10s] [--nats URL]",
		"Publishes job.queued events on the config's bus, so you can watch the daemon scale\nwithout a scheduler; the example worker runs each job for --duration.")
	pathFlag := configFlag(fs)
	pool := fs.String("pool", "", "pool to queue jobs for (default: the config's first pool)")
	count := fs.Int("count", 1, "number of jobs")
	duration := fs.Duration("duration", 10*time.Second, "how long each job runs on the example worker")
	url := fs.String("nats", "", "NATS URL (default: the config's, or nats://127.0.0.1:4222 for embedded)")
	path, code, done := parseConfigCommand(fs, pathFlag, args, stdout, stderr)
	if done {
		return code
	}
	cfg, err := app.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "invalid config %s:\n%s\n", path, indent(err))
		return 1
	}
	if *pool == "" {
		*pool = cfg.Pools[0].Name
	}
	if *url == "" {
		*url = cfg.NATS.URL
		if *url == "embedded" {
			*url = fmt.Sprintf("nats://%s:%d", cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port)
		}
	}
	nc, err := nats.Connect(*url, nats.Timeout(5*time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "connecting to %s: %v (is the daemon running? start it with make run)\n", *url, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := events.Subjects{Prefix: cfg.NATS.SubjectPrefix}
	subject := subjects.Job(domain.PoolName(*pool), domain.JobQueued)
	for i := range *count {
		id := uuid.NewString()
		jobID := fmt.Sprintf("job-%s-%d", time.Now().UTC().Format("150405"), i+1)
		payload, err := events.Encode(id, "autoscaler-queue", domain.TypeJobQueued, time.Now(), domain.JobData{
			JobID: jobID, Pool: *pool, Labels: map[string]string{"duration": duration.String()},
		})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if _, err := js.Publish(ctx, subject, payload, jetstream.WithMsgID(id)); err != nil {
			fmt.Fprintf(stderr, "publishing to %s: %v\n", subject, err)
			return 1
		}
		fmt.Fprintf(stdout, "queued %s on %s (runs %s)\n", jobID, subject, duration)
	}
	return 0
}
