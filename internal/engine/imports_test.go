package engine

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hodei/hodei-autoscaler/"

// engineMayImport is everything the engine may link besides the standard
// library: the shared types, the policy, and the backoff it schedules
// retries with. uuid comes with domain (worker ids).
var engineMayImport = []string{
	module + "internal/domain",
	module + "internal/policy",
	"github.com/cenkalti/backoff/v4",
	"github.com/google/uuid",
}

// outside lists the non-standard packages that pkg links (transitively,
// tests left out) and that are not in allowed.
func outside(t *testing.T, pkg string, allowed []string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	var bad []string
	for _, dep := range strings.Fields(string(out)) {
		if dep != pkg && !slices.Contains(allowed, dep) {
			bad = append(bad, dep)
		}
	}
	return bad
}

// The engine is pure by construction, not by discipline: it links no
// transport, provider, metrics or logging package, so the simulator and
// the tests get the daemon's decisions without any I/O behind them.
func TestEngineImportsOnlyDomainPolicyAndStdlib(t *testing.T) {
	if bad := outside(t, module+"internal/engine", engineMayImport); len(bad) > 0 {
		t.Errorf("internal/engine links %s; it may link only the standard library and %s",
			strings.Join(bad, ", "), strings.Join(engineMayImport, ", "))
	}
	// The check itself can fail: the loop beside the engine links more.
	if bad := outside(t, module+"internal/reconciler", engineMayImport); !slices.Contains(bad, module+"internal/providers") {
		t.Errorf("the import check found nothing outside the set in internal/reconciler (got %v): it cannot catch a violation", bad)
	}
}
