package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/dockertest"
)

// The daemon as a process: SIGHUP reloads the config instead of killing
// the daemon (it used to exit 129, embedded bus and all), the file changing
// reloads it too, and `autoscaler status` run against the daemon shows the
// figures that the daemon and the Docker engine have.
func TestSIGHUPReloadsAndStatusShowsTheFigures(t *testing.T) {
	cli := dockertest.Client(t)
	owner := dockertest.UniqueName("faults-hup")
	dockertest.Cleanup(t, domain.LabelOwner+"="+owner)
	cfg := baseConfig(t, owner)
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(t)) // status reads it from the file
	p := dockerPool("hup", sleeperImage(t))
	p.MaxWorkers = 2
	cfg.Pools = []config.Pool{p}
	path := writeConfig(t, cfg)
	d := launchDaemon(t, path)
	d.waitListening(60 * time.Second)
	bustest.Eventually(t, 30*time.Second, "daemon ready", d.ready)
	_, js := connectJS(t, d.natsURL)
	jobs := bustest.NewJobs(t, js)
	// The sleeper takes no job: three queued jobs keep max_workers 2
	// workers wanted, idle.
	for i := range 3 {
		jobs.Queued("hup", fmt.Sprint("j", i), nil)
	}
	workers := func(n int) func() bool {
		return func() bool {
			st, _ := pools(d.url("/v1/pools"))
			cs := owned(t, cli, owner)
			return countState(cs, "running") == n && st["hup"].Workers["idle"] == n
		}
	}
	bustest.Eventually(t, 60*time.Second, "2 idle workers", workers(2))

	// autoscaler status, table and JSON, against the running daemon.
	table := runStatus(t, "status", "--config", path)
	row := statusRow(t, table, "hup")
	want := map[string]string{"PROVIDER": "docker", "STATUS": "ok", "DESIRED": "2", "PROVISIONING": "0", "IDLE": "2",
		"BUSY": "0", "DRAINING": "0", "FAILED": "0", "PENDING": "3", "RUNNING": "0"}
	for col, v := range want {
		if row[col] != v {
			t.Errorf("status %s = %q, want %q\n%s", col, row[col], v, table)
		}
	}
	if !strings.Contains(row["REASON"], "capped by max_workers 2") {
		t.Errorf("status REASON %q does not say max_workers bounds it", row["REASON"])
	}
	var doc struct {
		Pools []poolStatus `json:"pools"`
	}
	if err := json.Unmarshal([]byte(runStatus(t, "status", "--addr", d.httpAddr, "-o", "json")), &doc); err != nil {
		t.Fatalf("status -o json: %v", err)
	}
	if len(doc.Pools) != 1 || doc.Pools[0].Desired != 2 || doc.Pools[0].Pending != 3 || doc.Pools[0].Workers["idle"] != 2 {
		t.Errorf("status -o json: %+v", doc.Pools)
	}

	// SIGHUP: a reload, not an exit.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "a reload on SIGHUP", func() bool {
		for _, e := range d.logs.Entries("config reloaded") {
			if e.str("trigger") == "signal" {
				return true
			}
		}
		return false
	})
	if !d.running() {
		t.Fatalf("the daemon exited on SIGHUP (%v)", d.state)
	}

	// The file changed: max_workers 3, live.
	cfg.Pools[0].MaxWorkers = 3
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 60*time.Second, "3 idle workers after the file changed", workers(3))
	if row := statusRow(t, runStatus(t, "status", path), "hup"); row["DESIRED"] != "3" || row["IDLE"] != "3" {
		t.Errorf("status after the reload: %v", row)
	}
	var fileReload bool
	for _, e := range d.logs.Entries("config reloaded") {
		fileReload = fileReload || e.str("trigger") == "file"
	}
	if !fileReload || !d.running() || !d.ready() {
		t.Errorf("file reload logged %v, running %v, ready %v", fileReload, d.running(), d.ready())
	}
	if code, _ := d.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// runStatus runs the autoscaler binary and returns its stdout.
func runStatus(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemonBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("autoscaler %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// statusRow parses pool's row of a status table into column -> value.
func statusRow(t *testing.T, table, pool string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := lines[0]
	cols := strings.Fields(header)
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, pool+" ") {
			continue
		}
		row := map[string]string{}
		for i, c := range cols {
			start := strings.Index(header, c)
			end := len(l)
			if i+1 < len(cols) {
				end = strings.Index(header, cols[i+1])
			}
			row[c] = strings.TrimSpace(l[start:min(end, len(l))])
		}
		return row
	}
	t.Fatalf("no row for pool %s in:\n%s", pool, table)
	return nil
}
