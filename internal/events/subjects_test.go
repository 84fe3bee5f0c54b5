package events_test

import (
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
)

func TestSubjectBuilders(t *testing.T) {
	cases := []struct {
		prefix, got, want string
	}{
		{"hodei", events.Subjects{Prefix: "hodei"}.Job("linux-small", domain.JobQueued), "hodei.jobs.linux-small.queued"},
		{"hodei", events.Subjects{Prefix: "hodei"}.Job("a", domain.JobStarted), "hodei.jobs.a.started"},
		{"hodei", events.Subjects{Prefix: "hodei"}.Job("a", domain.JobFinished), "hodei.jobs.a.finished"},
		{"hodei", events.Subjects{Prefix: "hodei"}.Worker("a", domain.LifecycleReady), "hodei.workers.a.ready"},
		{"hodei", events.Subjects{Prefix: "hodei"}.Worker("a", domain.LifecycleFailed), "hodei.workers.a.failed"},
		{"hodei", events.Subjects{Prefix: "hodei"}.Decision("a"), "hodei.autoscaler.a.decision"},
		{"hodei", events.Subjects{Prefix: "hodei"}.AllJobs(), "hodei.jobs.>"},
		{"hodei", events.Subjects{Prefix: "hodei"}.AllWorkers(), "hodei.workers.>"},
		{"hodei", events.Subjects{Prefix: "hodei"}.AllDecisions(), "hodei.autoscaler.>"},
		{"acme.ci", events.Subjects{Prefix: "acme.ci"}.Job("b_1", domain.JobQueued), "acme.ci.jobs.b_1.queued"},
		{"acme.ci", events.Subjects{Prefix: "acme.ci"}.AllJobs(), "acme.ci.jobs.>"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("prefix %q: got %q, want %q", c.prefix, c.got, c.want)
		}
	}
	if events.StreamJobs != "HODEI_JOBS" || events.StreamWorkers != "HODEI_WORKERS" {
		t.Errorf("stream names changed: %s %s", events.StreamJobs, events.StreamWorkers)
	}
}

func TestParseJob(t *testing.T) {
	hodei := events.Subjects{Prefix: "hodei"}
	acme := events.Subjects{Prefix: "acme.ci"}
	cases := []struct {
		name     string
		s        events.Subjects
		subject  string
		wantOK   bool
		wantPool domain.PoolName
		wantKind domain.JobKind
	}{
		{"queued", hodei, "hodei.jobs.linux-small.queued", true, "linux-small", domain.JobQueued},
		{"started", hodei, "hodei.jobs.a.started", true, "a", domain.JobStarted},
		{"finished", hodei, "hodei.jobs.pool_2.finished", true, "pool_2", domain.JobFinished},
		{"dotted prefix", acme, "acme.ci.jobs.a.queued", true, "a", domain.JobQueued},
		{"unknown kind", hodei, "hodei.jobs.a.cancelled", false, "", 0},
		{"kind in upper case", hodei, "hodei.jobs.a.QUEUED", false, "", 0},
		{"wrong prefix", hodei, "other.jobs.a.queued", false, "", 0},
		{"prefix is a prefix of the first token", hodei, "hodeix.jobs.a.queued", false, "", 0},
		{"only part of a dotted prefix", acme, "acme.jobs.a.queued", false, "", 0},
		{"worker subject", hodei, "hodei.workers.a.ready", false, "", 0},
		{"decision subject", hodei, "hodei.autoscaler.a.decision", false, "", 0},
		{"no pool", hodei, "hodei.jobs.queued", false, "", 0},
		{"empty pool", hodei, "hodei.jobs..queued", false, "", 0},
		{"pool with a dot", hodei, "hodei.jobs.a.b.queued", false, "", 0},
		{"trailing dot", hodei, "hodei.jobs.a.queued.", false, "", 0},
		{"no kind", hodei, "hodei.jobs.a.", false, "", 0},
		{"just the prefix", hodei, "hodei", false, "", 0},
		{"wildcard filter", hodei, "hodei.jobs.>", false, "", 0},
		{"empty", hodei, "", false, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, kind, ok := c.s.ParseJob(c.subject)
			if ok != c.wantOK || pool != c.wantPool || kind != c.wantKind {
				t.Errorf("ParseJob(%q) = %q, %v, %v; want %q, %v, %v", c.subject, pool, kind, ok, c.wantPool, c.wantKind, c.wantOK)
			}
		})
	}
}

// Job and ParseJob are inverses.
func TestJobSubjectRoundTrip(t *testing.T) {
	for _, prefix := range []string{"hodei", "acme.ci", "x-y_z"} {
		s := events.Subjects{Prefix: prefix}
		for _, pool := range []domain.PoolName{"a", "linux-small", "GPU_2", "jobs", "queued"} {
			for _, kind := range []domain.JobKind{domain.JobQueued, domain.JobStarted, domain.JobFinished} {
				subject := s.Job(pool, kind)
				gotPool, gotKind, ok := s.ParseJob(subject)
				if !ok || gotPool != pool || gotKind != kind {
					t.Errorf("ParseJob(%q) = %q, %v, %v; want %q, %v", subject, gotPool, gotKind, ok, pool, kind)
				}
			}
		}
	}
}
