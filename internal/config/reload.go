package config

import (
	"reflect"
	"strings"
)

// Reloaded is the configuration a running daemon takes from a new file
// next: next's pools and what reaches them (dry_run, reconcile.retry_*,
// budgets), which change live, and running's value for every other setting, which
// needs a restart (the bus, the HTTP listener, the name, the loop's
// timings, logging, shutdown). restart lists the keys of those that next
// changes ("nats.url", "http.listen"), without their values: secrets
// stay out of logs.
func Reloaded(running, next Config) (effective Config, restart []string) {
	effective = running
	effective.DryRun = next.DryRun
	effective.Pools = next.Pools
	effective.Budgets = next.Budgets
	effective.Reconcile.RetryInitial = next.Reconcile.RetryInitial
	effective.Reconcile.RetryMax = next.Reconcile.RetryMax
	effective.Reconcile.RetryJitter = next.Reconcile.RetryJitter
	return effective, changedKeys("", reflect.ValueOf(effective), reflect.ValueOf(next))
}

// changedKeys lists the YAML keys under path whose values differ between
// a and b (structs walked field by field; anything else compared whole).
func changedKeys(path string, a, b reflect.Value) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{path}
	}
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, changedKeys(joinPath(path, key), a.Field(i), b.Field(i))...)
	}
	return out
}
