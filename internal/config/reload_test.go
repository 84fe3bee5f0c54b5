package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A reload takes the pools and what reaches them, keeps every other
// setting as it runs, and names each key that would need a restart (never
// a secret's value).
func TestReloaded(t *testing.T) {
	running := Defaults()
	p := PoolDefaults()
	p.Name = "a"
	running.Pools = []Pool{p}

	next := running
	q := p
	q.MaxWorkers = 42
	next.Pools = []Pool{q, PoolDefaults()}
	next.DryRun = true
	next.Reconcile.RetryMax = Duration(time.Hour)
	next.NATS.URL = "nats://elsewhere:4222"
	next.NATS.Auth.Password = "s3cret-value"
	next.HTTP.Listen = "0.0.0.0:9999"
	next.Name = "other"
	next.Reconcile.Interval = Duration(time.Minute)

	eff, restart := Reloaded(running, next)
	if len(eff.Pools) != 2 || eff.Pools[0].MaxWorkers != 42 || !eff.DryRun || eff.Reconcile.RetryMax != Duration(time.Hour) {
		t.Errorf("live settings not taken: pools %d, max %d, dry_run %v, retry_max %v", len(eff.Pools), eff.Pools[0].MaxWorkers, eff.DryRun, eff.Reconcile.RetryMax)
	}
	if eff.NATS.URL != running.NATS.URL || eff.HTTP.Listen != running.HTTP.Listen || eff.Name != running.Name ||
		eff.Reconcile.Interval != running.Reconcile.Interval || eff.NATS.Auth.Password != "" {
		t.Errorf("restart-only settings changed live: %+v", eff)
	}
	want := []string{"name", "http.listen", "nats.url", "nats.auth.password", "reconcile.interval"}
	if !slices.Equal(restart, want) {
		t.Errorf("restart keys %v, want %v", restart, want)
	}
	if strings.Contains(strings.Join(restart, " "), "s3cret") {
		t.Error("a secret's value is in the restart list")
	}
	if _, restart := Reloaded(running, running); len(restart) != 0 {
		t.Errorf("an unchanged config needs a restart for %v", restart)
	}
}
