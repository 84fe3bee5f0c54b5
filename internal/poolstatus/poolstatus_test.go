package poolstatus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/internal/app"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/poolstatus"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
	"github.com/hodei/hodei-autoscaler/internal/testutil/apptest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/bustest"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
	"github.com/hodei/hodei-autoscaler/internal/testutil/syncbuf"
)

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 119 * time.Second: "119s", 4*time.Minute + 30*time.Second: "4m30s",
		5 * time.Minute: "5m", 25 * time.Minute: "25m", 5*time.Hour + 10*time.Minute: "5h10m", 30 * time.Hour: "30h",
		12 * 24 * time.Hour: "12d",
	} {
		if got := poolstatus.Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestAddr(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:9090": "127.0.0.1:9090", ":9090": "127.0.0.1:9090", "0.0.0.0:80": "127.0.0.1:80",
		"[::]:9090": "[::1]:9090", "10.1.2.3:9": "10.1.2.3:9",
	} {
		if got, err := poolstatus.Addr(listen); err != nil || got != want {
			t.Errorf("Addr(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := poolstatus.Addr("no-port"); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Errorf("Addr of a bad listen: %v", err)
	}
}

// rows parses a rendered table into column -> value per pool.
func rows(t *testing.T, table string) map[string]map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := lines[0]
	// Column starts, from the header (values are never wider than the
	// column, except the last one, REASON).
	starts := make([]int, len(poolstatus.Columns))
	for i, c := range poolstatus.Columns {
		starts[i] = strings.Index(header, c)
		if starts[i] < 0 || (i > 0 && starts[i] <= starts[i-1]) {
			t.Fatalf("header %q lacks column %s in order", header, c)
		}
	}
	out := map[string]map[string]string{}
	for _, l := range lines[1:] {
		row := map[string]string{}
		for i, c := range poolstatus.Columns {
			end := len(l)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			row[c] = strings.TrimSpace(l[starts[i]:end])
		}
		out[row["POOL"]] = row
	}
	return out
}

// daemon runs a whole daemon (real embedded NATS, fake providers).
func daemon(t *testing.T) (*app.App, *bustest.Jobs, map[string]*fakeprovider.Provider) {
	t.Helper()
	cfg := config.Defaults()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Embedded = config.Embedded{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()}
	cfg.Reconcile.Interval = config.Duration(100 * time.Millisecond)
	for _, name := range []string{"linux", "gpu"} {
		p := config.PoolDefaults()
		p.Name = name
		p.Docker.Image = "unused"
		p.MaxWorkers = 3
		p.JobsPerWorker = 2
		p.IdleTimeout = config.Fixed(time.Hour)
		cfg.Pools = append(cfg.Pools, p)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fakes := map[string]*fakeprovider.Provider{}
	a := apptest.Run(t, cfg, app.Options{Logger: zerolog.New(io.Discard), Providers: func(_ string, pc config.Pool, _ zerolog.Logger) (providers.Provider, error) {
		mu.Lock()
		defer mu.Unlock()
		fakes[pc.Name] = fakeprovider.New(pc.PoolName())
		return fakes[pc.Name], nil
	}})
	_, js := bustest.Connect(t, a.BusURL())
	return a, bustest.NewJobs(t, js), fakes
}

// The table and the JSON show the figures the daemon has: desired,
// workers by state, pending and running jobs, the last decision and its
// reason.
func TestShowAgainstARunningDaemon(t *testing.T) {
	a, jobs, fakes := daemon(t)
	for i := range 5 {
		jobs.Queued("linux", fmt.Sprint("j", i), nil)
	}
	bustest.Eventually(t, 10*time.Second, "3 linux workers", func() bool { return len(fakes["linux"].Workers()) == 3 })
	ws := fakes["linux"].Workers()
	jobs.Started("linux", "j0", ws[0])
	jobs.Started("linux", "j1", ws[0])
	jobs.Started("linux", "j2", ws[1])
	var want reconciler.PoolStatus
	bustest.Eventually(t, 10*time.Second, "3 jobs running", func() bool {
		want = a.Status()[0]
		return want.Running == 3 && want.Workers["busy"] == 2
	})
	c := poolstatus.Client{Addr: a.HTTPAddr()}

	var out bytes.Buffer
	if err := poolstatus.Show(context.Background(), c, &out, io.Discard, poolstatus.Options{}); err != nil {
		t.Fatal(err)
	}
	table := rows(t, out.String())
	linux, gpu := table["linux"], table["gpu"]
	for col, v := range map[string]string{"PROVIDER": "fake", "STATUS": "ok", "DESIRED": "3", "PROVISIONING": "0", "IDLE": "1",
		"BUSY": "2", "DRAINING": "0", "FAILED": "0", "PENDING": "2", "RUNNING": "3", "REASON": want.LastDecision.Reason} {
		if linux[col] != v {
			t.Errorf("linux %s = %q, want %q\n%s", col, linux[col], v, out.String())
		}
	}
	if !strings.HasSuffix(linux["AGE"], "s") || !strings.HasSuffix(linux["DECIDED"], "s") {
		t.Errorf("linux AGE %q DECIDED %q", linux["AGE"], linux["DECIDED"])
	}
	if gpu["DESIRED"] != "0" || gpu["BUSY"] != "0" || gpu["PENDING"] != "0" || !strings.HasPrefix(gpu["REASON"], "desired 0") {
		t.Errorf("gpu row %v", gpu)
	}

	out.Reset()
	if err := poolstatus.Show(context.Background(), c, &out, io.Discard, poolstatus.Options{JSON: true}); err != nil {
		t.Fatal(err)
	}
	var got struct{ Pools []reconciler.PoolStatus }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out.String())
	}
	if len(got.Pools) != 2 || got.Pools[0].Pool != "linux" || got.Pools[0].Running != 3 || got.Pools[0].Pending != 2 ||
		got.Pools[0].Workers["busy"] != 2 || got.Pools[0].Desired != 3 || got.Pools[0].Since.IsZero() {
		t.Errorf("-o json: %+v", got.Pools)
	}

	// --watch prints again when the figures change, and only then.
	var wout syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- poolstatus.Show(ctx, c, &wout, io.Discard, poolstatus.Options{Watch: true, Interval: 50 * time.Millisecond})
	}()
	bustest.Eventually(t, 5*time.Second, "first table", func() bool { return strings.Count(wout.String(), "POOL") == 1 })
	time.Sleep(300 * time.Millisecond) // several polls with nothing new
	if n := strings.Count(wout.String(), "POOL"); n != 1 {
		t.Errorf("%d tables printed while nothing changed", n)
	}
	jobs.Finished("linux", "j2", ws[1])
	bustest.Eventually(t, 5*time.Second, "a second table after a job finished", func() bool {
		return strings.Count(wout.String(), "POOL") == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch ended with %v", err)
	}
	if last := rows(t, wout.String()[strings.LastIndex(wout.String(), "POOL"):]); last["linux"]["RUNNING"] != "2" {
		t.Errorf("watched table after the finish: %v", last["linux"])
	}
}

func TestShowNamesAnUnreachableDaemon(t *testing.T) {
	err := poolstatus.Show(context.Background(), poolstatus.Client{Addr: "127.0.0.1:1"}, io.Discard, io.Discard, poolstatus.Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the daemon at 127.0.0.1:1") {
		t.Errorf("error %v", err)
	}
}
