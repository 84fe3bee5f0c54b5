// Command hacost measures row 8 of the benchmark suite: the steady-state
// cost of high availability. The same daemon path is measured twice in
// one run, alternating: one daemon (HA off) on one NATS server (the
// reference), and three replicas (HA on, internal/lease) on a three-node
// NATS JetStream cluster with the streams and the lease bucket at three
// copies. Two figures each:
//
//   - reaction: a job.queued publish to the provider's create call, p99,
//     on a steady schedule (the pool's holder makes the create);
//   - ingest: a retained stream of job events folded from the start to
//     caught up (every replica folds the whole stream), events/s: for HA
//     the slowest of the three replicas started together.
//
// The servers run in this process (the nats-server module's own server,
// clustered over loopback routes), the daemons too, each pool with the
// fake recording provider (internal/testutil/fakeprovider: it records
// the create call's time and answers at once), so what differs is the
// cluster's replication and the lease layer, on one shared machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

const pool = domain.PoolName("react")

var mix = benchkit.Mix{Pools: 10, WorkersPerPool: 20, Lag: 100}

// warm is how many reaction events each run sends first, unmeasured.
const warm = 100

func main() {
	n := flag.Int("events", 3000, "reaction events per run")
	rate := flag.Float64("rate", 500, "reaction publish rate (events/s)")
	ingest := flag.Int("ingest", 50_000, "retained events folded per ingest run (from the daemons' start to ready)")
	reps := flag.Int("reps", 3, "runs of each setup, alternating")
	out := flag.String("out", "bench/out/hacost.json", "result file")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("hacost: ")
	res := benchkit.NewResult("hacost")
	if err := run(res, *n, *rate, *ingest, *reps); err != nil {
		log.Printf("error: %v", err)
		res.Rows = append(res.Rows, benchkit.NotRun("8", "steady-state cost of HA", "error: "+err.Error()))
		_ = res.Write(*out)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		log.Fatal(err)
	}
}

// setup is one side of the comparison.
type setup struct {
	name     string
	replicas int // daemons; >1 is HA on a cluster of as many servers
}

func run(res *benchkit.Result, n int, rate float64, ingest, reps int) error {
	setups := []setup{{"one daemon, one server", 1}, {"3 replicas, 3-node cluster", 3}}
	react := map[string][]time.Duration{} // per-run p99
	rates := map[string][]float64{}
	var all = map[string][]time.Duration{}
	for r := range reps {
		for _, s := range setups {
			p99s, lat, ev, err := measure(s, n, rate, ingest)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", s.name, r+1, err)
			}
			react[s.name] = append(react[s.name], p99s)
			all[s.name] = append(all[s.name], lat...)
			rates[s.name] = append(rates[s.name], ev)
			res.Detail("- %s, run %d of %d (load %s): reaction publish→create %s; ingest %s", s.name, r+1, reps, benchkit.LoadAvg(),
				benchkit.Summarise(slices.Clone(lat)), benchkit.Rate(ev))
		}
	}
	ref, ha := setups[0].name, setups[1].name
	rd, hd := benchkit.Summarise(all[ref]), benchkit.Summarise(all[ha])
	rp, hp := benchkit.Summarise(react[ref]), benchkit.Summarise(react[ha])
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        "8a",
		What:      fmt.Sprintf("HA cost: reaction, queued publish → create call, steady %.0f events/s", rate),
		Reference: fmt.Sprintf("%s: p50 %s, p99 %s", ref, benchkit.Dur(rd.P50), benchkit.Dur(rd.P99)),
		Ours:      fmt.Sprintf("%s: p50 %s, p99 %s", ha, benchkit.Dur(hd.P50), benchkit.Dur(hd.P99)),
		Ratio:     benchkit.Ratio(float64(hd.P99)/float64(rd.P99)) + " (p99)",
		Target:    "measured (issue 11: the steady-state cost of HA)",
		Met:       "n/a",
		Note: fmt.Sprintf("%d events in each of %d runs per setup, alternating; per-run p99: one daemon %s to %s, HA %s to %s; servers and daemons in one process, fake recording provider",
			n, reps, benchkit.Dur(rp.Min), benchkit.Dur(rp.Max), benchkit.Dur(hp.Min), benchkit.Dur(hp.Max)),
	})
	rr, hr := benchkit.Median(rates[ref]), benchkit.Median(rates[ha])
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        "8b",
		What:      fmt.Sprintf("HA cost: ingest, %d retained events, the daemons' start to caught up", ingest),
		Reference: fmt.Sprintf("%s: %s (median)", ref, benchkit.Rate(rr)),
		Ours:      fmt.Sprintf("%s, the slowest replica: %s (median)", ha, benchkit.Rate(hr)),
		Ratio:     benchkit.Ratio(hr / rr),
		Target:    "measured (issue 11: the steady-state cost of HA)",
		Met:       "n/a",
		Note: fmt.Sprintf("per run: one daemon %s to %s, HA %s to %s; the three replicas fold at once on one 2-core machine with the three servers, so HA's figure includes that contention",
			benchkit.Rate(slices.Min(rates[ref])), benchkit.Rate(slices.Max(rates[ref])), benchkit.Rate(slices.Min(rates[ha])), benchkit.Rate(slices.Max(rates[ha]))),
	})
	return nil
}

// measure runs one setup from scratch: its servers, a retained stream to
// fold (ingest), then the reaction schedule.
func measure(s setup, n int, rate float64, ingest int) (p99 time.Duration, lat []time.Duration, evPerSec float64, err error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hodei-bench-hacost-")
	if err != nil {
		return 0, nil, 0, err
	}
	defer os.RemoveAll(dir)
	urls, stop, err := startServers(dir, s.replicas)
	if err != nil {
		return 0, nil, 0, err
	}
	defer stop()
	url := strings.Join(urls, ",")
	if err := ensureStreams(ctx, url, s.replicas); err != nil {
		return 0, nil, 0, err
	}
	nc, js, err := benchkit.Connect(url)
	if err != nil {
		return 0, nil, 0, err
	}
	defer nc.Close()
	if err := benchkit.Fill(ctx, js, mix.Events(ingest), time.Now); err != nil {
		return 0, nil, 0, fmt.Errorf("filling the stream: %w", err)
	}

	var mu sync.Mutex
	var created []time.Time
	pools := append(mix.PoolNames(), string(pool))
	var ds []*benchkit.Daemon
	defer func() {
		for _, d := range ds {
			_ = d.Stop()
		}
	}()
	start := time.Now()
	for i := range s.replicas {
		provs := map[string]providers.Provider{}
		for _, p := range pools {
			f := fakeprovider.New(domain.PoolName(p))
			if p == string(pool) {
				f.OnCreate = func(_ domain.WorkerID, at time.Time) {
					mu.Lock()
					created = append(created, at)
					mu.Unlock()
				}
			}
			provs[p] = f
		}
		cfg, err := benchkit.Config(url, "", 0, pools, func(p *config.Pool) {
			p.MaxWorkers = n + warm + 10
			p.MaxConcurrentProvisioning = n + warm + 10
			p.IdleTimeout = config.Fixed(time.Hour)
			p.IdleWorkers = config.IdleWorkers{} // no warm buffer: every create answers a publish
		})
		if err != nil {
			return 0, nil, 0, err
		}
		cfg.NATS.Streams.Replicas = s.replicas
		if s.replicas > 1 {
			cfg.HA.Enabled, cfg.HA.ReplicaID = true, fmt.Sprintf("r%d", i+1)
		}
		if err := cfg.Validate(); err != nil {
			return 0, nil, 0, err
		}
		d, err := benchkit.StartDaemon(cfg, provs, zerolog.New(io.Discard))
		if err != nil {
			return 0, nil, 0, err
		}
		ds = append(ds, d)
	}
	var last time.Time
	for _, d := range ds {
		at, err := d.WaitReady(5 * time.Minute)
		if err != nil {
			return 0, nil, 0, err
		}
		if at.After(last) {
			last = at
		}
	}
	evPerSec = float64(ingest) / last.Sub(start).Seconds()

	// The pools settle over the replicas (HA: each takes its share as it
	// becomes ready; a hand-over at the start would be measured as
	// reaction), then someone holds the reaction pool.
	if s.replicas > 1 {
		time.Sleep(3 * config.HADefaults().RenewInterval.D())
	}
	deadline := time.Now().Add(time.Minute)
	for !held(ds) {
		if time.Now().After(deadline) {
			return 0, nil, 0, fmt.Errorf("nobody holds pool %s after a minute", pool)
		}
		time.Sleep(10 * time.Millisecond)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(created)
	}
	// Warm-up, not measured (the paths are hot, as in row 2).
	if _, err := schedule(js, "warm", warm, rate); err != nil {
		return 0, nil, 0, err
	}
	if err := waitFor(func() bool { return count() >= warm }); err != nil {
		return 0, nil, 0, fmt.Errorf("warm-up: %d of %d creates: %w", count(), warm, err)
	}
	sent, err := schedule(js, "react", n, rate)
	if err != nil {
		return 0, nil, 0, err
	}
	if err := waitFor(func() bool { return count() >= warm+n }); err != nil {
		return 0, nil, 0, fmt.Errorf("%d of %d creates: %w", count()-warm, n, err)
	}
	mu.Lock()
	got := slices.Clone(created[warm : warm+n])
	mu.Unlock()
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	lat = make([]time.Duration, n)
	for i := range sent {
		lat[i] = got[i].Sub(sent[i])
	}
	return benchkit.Summarise(slices.Clone(lat)).P99, lat, evPerSec, nil
}

// schedule publishes n job.queued events for the reaction pool at rate
// and returns each publish instant (taken just before the publish call).
func schedule(js jetstream.JetStream, tag string, n int, rate float64) ([]time.Time, error) {
	sent := make([]time.Time, 0, n)
	begin := time.Now().Add(10 * time.Millisecond)
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		at := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		subj, payload, id, err := benchkit.Encode(benchkit.Event{Pool: pool, Kind: domain.JobQueued, Job: fmt.Sprintf("%s-%06d", tag, i)}, time.Now())
		if err != nil {
			return nil, err
		}
		sent = append(sent, time.Now())
		f, err := js.PublishAsync(subj, payload, jetstream.WithMsgID(id))
		if err != nil {
			return nil, err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return nil, err
		}
	}
	return sent, nil
}

// waitFor polls cond for up to a minute.
func waitFor(cond func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// held reports whether one daemon may act on the reaction pool.
func held(ds []*benchkit.Daemon) bool {
	for _, d := range ds {
		for _, st := range d.App.Status() {
			if st.Pool == string(pool) && (st.Lease == nil || st.Lease.Mine) {
				return true
			}
		}
	}
	return false
}

// startServers starts k NATS servers with JetStream in this process,
// clustered over loopback routes when k > 1, and waits until JetStream
// answers.
func startServers(dir string, k int) (urls []string, stop func(), err error) {
	routes := make([]int, k)
	for i := range routes {
		if routes[i], err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	var srvs []*server.Server
	stop = func() {
		for _, s := range srvs {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	for i := range k {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: fmt.Sprintf("%s/n%d", dir, i+1), NoSigs: true, NoLog: true,
			JetStreamMaxMemory: 1 << 30, JetStreamMaxStore: 16 << 30,
		}
		if k > 1 {
			o.Cluster = server.ClusterOpts{Name: "hodei-bench", Host: "127.0.0.1", Port: routes[i], NoAdvertise: true}
			for j := range k {
				if j != i {
					o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", routes[j]))...)
				}
			}
		}
		srv, err := server.NewServer(o)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("configuring nats: %w", err)
		}
		srv.Start()
		srvs = append(srvs, srv)
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(30 * time.Second) {
			stop()
			return nil, nil, fmt.Errorf("nats %s did not start", s.Name())
		}
		urls = append(urls, s.ClientURL())
	}
	return urls, stop, nil
}

// ensureStreams creates the daemon's streams with the given copies,
// retrying while the cluster elects its meta leader.
func ensureStreams(ctx context.Context, url string, replicas int) error {
	cfg := config.Defaults().NATS
	cfg.URL = url
	cfg.Streams.Replicas = replicas
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := events.Connect(ctx, cfg, zerolog.New(io.Discard))
		if err == nil {
			b.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("creating the streams: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
