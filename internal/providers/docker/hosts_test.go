package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/providers"
)

// An ssh:// host runs `ssh ... -- host docker system dial-stdio` per
// connection. The ssh client here is a stand-in that runs the command
// locally (the docker CLI against the real engine), so everything but the
// ssh transport is real: the provider creates, lists and stops a worker
// through it.
func TestSSHHostSpeaksThroughDialStdio(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		if os.Getenv("REQUIRE_DOCKER") == "1" {
			t.Fatal("REQUIRE_DOCKER=1 but the docker CLI (for docker system dial-stdio) is not on PATH")
		}
		t.Skip("needs the docker CLI for docker system dial-stdio")
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	fake := filepath.Join(dir, "ssh")
	script := "#!/bin/sh\necho \"$@\" >> " + argsFile + "\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift 2\nexec \"$@\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p, _ := newProvider(t, func(c *Config) {
		c.Docker.Host = "ssh://ci@build-1:2222"
		c.SSHProgram = fake
		c.Tier = "build-1"
	})
	id := domain.NewWorkerID()
	w, err := p.Create(ctxT(t, 60*time.Second), providers.WorkerSpec{ID: id, Pool: testPool})
	if err != nil {
		t.Fatalf("Create over ssh: %v", err)
	}
	if w.ID != id {
		t.Fatalf("created %+v", w)
	}
	ws, err := p.List(ctxT(t, 20*time.Second))
	if err != nil || len(ws) != 1 || ws[0].ID != id {
		t.Fatalf("List over ssh: %+v, %v", ws, err)
	}
	ci, ok := exists(t, p.cli, domain.WorkerName(id))
	if !ok || ci.Config.Labels[domain.LabelWorkerTier] != "build-1" {
		t.Fatalf("container labels %v, want %s=build-1", ci.Config.Labels, domain.LabelWorkerTier)
	}
	if err := p.Stop(ctxT(t, 30*time.Second), id, time.Second); err != nil {
		t.Fatalf("Stop over ssh: %v", err)
	}
	raw, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(raw), "\n", 2)[0]
	if want := "-o ConnectTimeout=30 -T -l ci -p 2222 -- build-1 docker system dial-stdio"; first != want {
		t.Errorf("ssh ran with %q, want %q", first, want)
	}
	t.Logf("%d ssh connections for create, list and stop", strings.Count(string(raw), "\n"))
}

// A provider of one tier sees only its tier's containers: two tiers of a
// pool may share an engine.
func TestTierProvidersSeeOnlyTheirTier(t *testing.T) {
	a, _ := newProvider(t, func(c *Config) { c.Tier = "a" })
	b, err := New(Config{Owner: a.cfg.Owner, Pool: a.cfg.Pool, Docker: a.cfg.Docker, Tier: "b"}, a.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ida, idb := domain.NewWorkerID(), domain.NewWorkerID()
	for _, c := range []struct {
		p  *Provider
		id domain.WorkerID
	}{{a, ida}, {b, idb}} {
		if _, err := c.p.Create(ctxT(t, 60*time.Second), providers.WorkerSpec{ID: c.id, Pool: testPool}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		p    *Provider
		mine domain.WorkerID
	}{{a, ida}, {b, idb}} {
		ws, err := c.p.List(ctxT(t, 20*time.Second))
		if err != nil || len(ws) != 1 || ws[0].ID != c.mine {
			t.Errorf("tier %s lists %+v (%v), want only %s", c.p.cfg.Tier, ws, err, c.mine)
		}
	}
	if err := a.Stop(ctxT(t, 30*time.Second), idb, time.Second); err == nil {
		t.Errorf("tier a stopped tier b's worker")
	}
	if _, ok := exists(t, a.cli, domain.WorkerName(idb)); !ok {
		t.Errorf("tier b's container is gone after tier a's stop")
	}
}
