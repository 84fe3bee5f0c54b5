// Command growth measures row 5 of the benchmark suite: how the daemon's
// own cost grows with the number of pools, workers and pending jobs.
//
// Each cell of the grid runs in a fresh process (so its resident memory is
// its own) and measures:
//
//   - the scaling loop (reconciler.Reconciler, as the daemon runs it) holding
//     the state, fed decoded job events through Deliver, with the fake
//     recording provider (internal/testutil/fakeprovider) for every pool:
//     resident memory (VmRSS after a GC, which includes the fakes' own
//     records of every worker, so it is an upper bound), and the time from
//     handing one queued event for a small extra pool to its create call
//     (the cost a change pays while every other pool stays unchanged);
//   - the synchronous core (engine.Engine) with the same state: the cost of
//     a reconcile tick when no pool changed, when one large pool changed,
//     and when every pool changed, with allocations per tick.
//
// With -daemon it instead runs the whole daemon (internal/app, embedded
// NATS holding the events) with 100,000 pending jobs and 10,000 workers,
// and reports the process's resident memory.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/memlimit"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/providers"
	"github.com/hodei/hodei-autoscaler/internal/reconciler"
	"github.com/hodei/hodei-autoscaler/internal/testutil/fakeprovider"
)

var (
	heapProfile string
	memRepeats  = 3
)

// Cell is one measurement of the grid.
type Cell struct {
	Pools, Workers, Pending int
	Daemon                  string // the whole daemon, NATS "embedded" or "external"

	BaseRSS, RSS, HeapInuse uint64
	RSSNoGC, HWM            uint64        // daemon: RSS as ps shows it (no forced GC) and the peak
	MemLimit                int64         // daemon: the soft memory limit in effect (as cmd/autoscaler chooses it)
	MemLimitFrom            string        // daemon: where it came from (memlimit.Source)
	Build                   time.Duration // building the state through the loop

	ProbeP50, ProbeP99 time.Duration // loop: queued → create for one small pool

	TickIdle     time.Duration // engine: Reconcile+Take, nothing changed
	TickOne      time.Duration // engine: one large pool changed (event + tick)
	TickAllPer   time.Duration // engine: every pool changed, per pool
	AllocsIdle   float64       // allocations per idle tick
	AllocsOne    float64       // allocations per one-pool tick
	ProbeSamples int
}

func main() {
	pools := flag.Int("pools", 0, "run one cell: pools")
	workers := flag.Int("workers", 0, "run one cell: workers")
	pending := flag.Int("pending", 0, "run one cell: pending jobs")
	daemon := flag.String("daemon", "", "run one cell with the whole daemon: NATS embedded or external")
	serve := flag.String("serve-nats", "", "child: serve NATS storing in this folder until stdin closes")
	publish := flag.String("publish", "", "child: publish a cell's events to this NATS URL")
	phase := flag.String("phase", "queued", "child: which events to publish (queued, started)")
	idFile := flag.String("ids", "", "child: the workers' ids (JSON) for -phase started")
	flag.IntVar(&memRepeats, "mem-reps", 3, "grid mode: repetitions of each whole-daemon memory cell")
	flag.StringVar(&heapProfile, "heapprofile", "", "write the heap profile of a cell, once built, here")
	out := flag.String("out", "bench/out/growth.json", "result file (grid mode)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("growth: ")
	switch {
	case *serve != "":
		if err := mainServeNATS(*serve); err != nil {
			log.Fatal(err)
		}
		return
	case *publish != "":
		if err := mainPublish(*publish, *phase, *idFile, Cell{Pools: *pools, Workers: *workers, Pending: *pending}); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *pools > 0 {
		c := Cell{Pools: *pools, Workers: *workers, Pending: *pending, Daemon: *daemon}
		var err error
		switch *daemon {
		case "embedded", "external":
			err = runDaemon(&c, *daemon == "external")
		case "":
			err = runCell(&c)
		default:
			err = fmt.Errorf("-daemon %q: embedded or external", *daemon)
		}
		if err != nil {
			log.Fatal(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(c); err != nil {
			log.Fatal(err)
		}
		return
	}
	res := benchkit.NewResult("growth")
	if err := grid(res); err != nil {
		log.Printf("error: %v", err)
		res.Rows = append(res.Rows, benchkit.NotRun("5", "growth", "error: "+err.Error()))
		_ = res.Write(*out)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		log.Fatal(err)
	}
}

// sub runs one cell in a fresh process.
func sub(args ...string) (Cell, error) { return subEnv(nil, args...) }

// subEnv runs one cell in a child process with extra environment.
func subEnv(env []string, args ...string) (Cell, error) {
	var c Cell
	self, err := os.Executable()
	if err != nil {
		return c, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return c, fmt.Errorf("cell %v: %w", args, err)
	}
	return c, json.Unmarshal(stdout.Bytes(), &c)
}

func grid(res *benchkit.Result) error {
	var cells []Cell
	for _, p := range []int{10, 100, 1000} {
		for _, n := range []int{1000, 10_000, 100_000} {
			c, err := sub("-pools", fmt.Sprint(p), "-workers", fmt.Sprint(n), "-pending", fmt.Sprint(n))
			if err != nil {
				return err
			}
			log.Printf("%d pools, %d workers, %d pending: %+v", p, n, n, c)
			cells = append(cells, c)
		}
	}
	target, err := sub("-pools", "10", "-workers", "10000", "-pending", "100000")
	if err != nil {
		return err
	}
	// The whole daemon, in a fresh process per repetition: embedded NATS
	// at default settings (the soft memory limit chosen as cmd/autoscaler
	// chooses it: no config key, no GOMEMLIMIT, no cgroup limit here, so
	// memlimit.Default), the same with no limit at all (GOMEMLIMIT=off),
	// NATS in another process, and a flood of 200,000 queued events.
	size := []string{"-pools", "10", "-workers", "10000", "-pending", "100000"}
	flood := []string{"-pools", "10", "-workers", "1000", "-pending", "199000"}
	full, err := memReps(nil, append([]string{"-daemon", "embedded"}, size...))
	if err != nil {
		return err
	}
	nolimit, err := memReps([]string{"GOMEMLIMIT=off"}, append([]string{"-daemon", "embedded"}, size...))
	if err != nil {
		return err
	}
	ext, err := memReps(nil, append([]string{"-daemon", "external"}, size...))
	if err != nil {
		return err
	}
	floodD, err := memReps(nil, append([]string{"-daemon", "embedded"}, flood...))
	if err != nil {
		return err
	}
	floodOff, err := memReps([]string{"GOMEMLIMIT=off"}, append([]string{"-daemon", "embedded"}, flood...))
	if err != nil {
		return err
	}

	base := cells[0]
	res.Detail("")
	res.Detail("| pools | workers | pending jobs | idle tick (engine) | per pool | one large pool changed | every pool changed, per pool | allocs/tick idle, one | queued → create, one small pool (loop) p50 / p99 | RSS after a GC (loop and fakes) | build |")
	res.Detail("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range cells {
		res.Detail("| %d | %d | %d | %s | %s | %s (%.2f×) | %s | %.0f, %.0f | %s / %s | %s | %s |",
			c.Pools, c.Workers, c.Pending, benchkit.Dur(c.TickIdle), benchkit.Dur(c.TickIdle/time.Duration(c.Pools)),
			benchkit.Dur(c.TickOne), float64(c.TickOne)/float64(base.TickOne), benchkit.Dur(c.TickAllPer),
			c.AllocsIdle, c.AllocsOne, benchkit.Dur(c.ProbeP50), benchkit.Dur(c.ProbeP99), benchkit.MB(c.RSS), benchkit.Dur(c.Build))
	}
	res.Detail("")

	// O(1) for an unchanged pool: the idle tick per pool stays flat as
	// pools, workers and jobs grow; a changed pool's tick does not grow
	// with the size of the others (nor with its own).
	var worstPerPool, worstOne float64
	basePer := float64(base.TickIdle) / float64(base.Pools)
	for _, c := range cells {
		worstPerPool = max(worstPerPool, float64(c.TickIdle)/float64(c.Pools)/basePer)
		worstOne = max(worstOne, float64(c.TickOne)/float64(base.TickOne))
	}
	o1 := worstPerPool <= 3 && worstOne <= 3
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        "5a",
		What:      "growth: reconcile tick at 10–1,000 pools × 1k–100k workers and pending jobs (engine; fake recording provider)",
		Reference: fmt.Sprintf("smallest cell (10 pools, 1k+1k): idle tick %s (%s per pool), one pool changed %s", benchkit.Dur(base.TickIdle), benchkit.Dur(base.TickIdle/time.Duration(base.Pools)), benchkit.Dur(base.TickOne)),
		Ours:      fmt.Sprintf("largest: idle tick per unchanged pool %s, one pool changed %s", perPool(cells[len(cells)-1]), benchkit.Dur(cells[len(cells)-1].TickOne)),
		Ratio:     fmt.Sprintf("worst per-pool idle %.2f×, worst changed-pool %.2f×", worstPerPool, worstOne),
		Target:    "unchanged pool O(1) (flat per-pool cost)",
		Met:       benchkit.YesNo(o1),
		Note:      "cost across the whole grid in the table below; a ratio near 1 at 100× the size is O(1); the loop adds O(pools) per wake-up (two scans of the pool list)",
	})
	budget := uint64(200 << 20)
	mem := func(r memRep) string {
		return fmt.Sprintf("peak %s (min %s, max %s), %s as ps shows it after settling, %s after a forced GC; fold %s; limit %s (%s)",
			benchkit.MB(r.med(func(c Cell) uint64 { return c.HWM })), benchkit.MB(r.min(func(c Cell) uint64 { return c.HWM })), benchkit.MB(r.max(func(c Cell) uint64 { return c.HWM })),
			benchkit.MB(r.med(func(c Cell) uint64 { return c.RSSNoGC })), benchkit.MB(r.med(func(c Cell) uint64 { return c.RSS })),
			benchkit.Dur(time.Duration(r.med(func(c Cell) uint64 { return uint64(c.Build) }))), limitText(r.cells[0].MemLimit), r.cells[0].MemLimitFrom)
	}
	res.Detail("- memory, whole daemon, %d fresh processes each (median, min, max of the peak resident memory VmHWM):", len(full.cells))
	res.Detail("  - 100,000 pending jobs + 10,000 workers, embedded NATS, default settings: %s", mem(full))
	res.Detail("  - the same with no soft limit (GOMEMLIMIT=off): %s", mem(nolimit))
	res.Detail("  - the same with NATS in another process: %s", mem(ext))
	res.Detail("  - flood of 200,000 queued events (10 pools, 1,000 workers running), embedded NATS, default settings: %s", mem(floodD))
	res.Detail("  - the same flood with no soft limit: %s", mem(floodOff))
	res.Detail("  - scaling loop alone (no bus) %s, empty process %s", benchkit.MB(target.RSS), benchkit.MB(target.BaseRSS))
	hwm := func(c Cell) uint64 { return c.HWM }
	worst := max(full.max(hwm), floodD.max(hwm))
	spread := ""
	if full.min(hwm) <= budget && full.max(hwm) > budget || floodD.min(hwm) <= budget && floodD.max(hwm) > budget {
		spread = "; the spread straddles the budget: not a result either way"
	}
	res.Rows = append(res.Rows, benchkit.Row{
		ID:        "5b",
		What:      "memory at default settings, embedded NATS: 100,000 pending jobs + 10,000 workers (10 pools), and a flood of 200,000 queued events",
		Reference: fmt.Sprintf("200 MB budget; an empty daemon process %s; the same daemon with no soft limit: peak %s, flood %s", benchkit.MB(ext.cells[0].BaseRSS), benchkit.MB(nolimit.med(hwm)), benchkit.MB(floodOff.med(hwm))),
		Ours:      fmt.Sprintf("peak %s (min %s, max %s); flood: peak %s (min %s, max %s); NATS external: peak %s", benchkit.MB(full.med(hwm)), benchkit.MB(full.min(hwm)), benchkit.MB(full.max(hwm)), benchkit.MB(floodD.med(hwm)), benchkit.MB(floodD.min(hwm)), benchkit.MB(floodD.max(hwm)), benchkit.MB(ext.med(hwm))),
		Ratio:     fmt.Sprintf("%.2f of budget (worst of %d runs each)", float64(worst)/float64(budget), len(full.cells)),
		Target:    "≤ 200 MB resident",
		Met:       fmt.Sprintf("%s (100,000 + 10,000), %s (flood)", benchkit.YesNo(full.max(hwm) <= budget), benchkit.YesNo(floodD.max(hwm) <= budget)) + spread,
		Note:      fmt.Sprintf("soft memory limit %s chosen as cmd/autoscaler does with memory_limit unset (%s); peak RSS (VmHWM) of the daemon's process while the events are folded and the workers created; events published by another process; includes the fake recording provider's records of the workers; fold %s against %s without the limit", limitText(full.cells[0].MemLimit), full.cells[0].MemLimitFrom, benchkit.Dur(time.Duration(full.med(func(c Cell) uint64 { return uint64(c.Build) }))), benchkit.Dur(time.Duration(nolimit.med(func(c Cell) uint64 { return uint64(c.Build) })))),
	})
	res.Raw = map[string]any{"cells": cells, "target": target, "daemon_embedded": full.cells, "daemon_embedded_nolimit": nolimit.cells, "daemon_external": ext.cells, "flood": floodD.cells, "flood_nolimit": floodOff.cells}
	return nil
}

// memRep is the repetitions of one daemon memory cell.
type memRep struct{ cells []Cell }

func (r memRep) sorted(f func(Cell) uint64) []uint64 {
	v := make([]uint64, len(r.cells))
	for i, c := range r.cells {
		v[i] = f(c)
	}
	slices.Sort(v)
	return v
}
func (r memRep) min(f func(Cell) uint64) uint64 { return r.sorted(f)[0] }
func (r memRep) max(f func(Cell) uint64) uint64 { v := r.sorted(f); return v[len(v)-1] }
func (r memRep) med(f func(Cell) uint64) uint64 { v := r.sorted(f); return v[len(v)/2] }

// memReps runs a daemon memory cell memRepeats times, each in a fresh process.
func memReps(env []string, args []string) (memRep, error) {
	var r memRep
	for range memRepeats {
		c, err := subEnv(env, args...)
		if err != nil {
			return r, err
		}
		log.Printf("%v %v: peak %s (limit %s, %s)", env, args, benchkit.MB(c.HWM), limitText(c.MemLimit), c.MemLimitFrom)
		r.cells = append(r.cells, c)
	}
	return r, nil
}

func limitText(l int64) string {
	if l <= 0 || l == math.MaxInt64 {
		return "none"
	}
	return benchkit.MB(uint64(l))
}

func perPool(c Cell) string { return benchkit.Dur(c.TickIdle / time.Duration(c.Pools)) }

// nopPublisher drops lifecycle and decision events: this row has no bus.
type nopPublisher struct{}

func (nopPublisher) Worker(time.Time, domain.Lifecycle, domain.WorkerEventData) {}
func (nopPublisher) Decision(time.Time, domain.DecisionData)                    {}

func poolName(i int) domain.PoolName { return domain.PoolName(fmt.Sprintf("g-%04d", i)) }

func settings(perPool int) policy.Settings {
	return policy.Settings{MinWorkers: 0, MaxWorkers: perPool, JobsPerWorker: 1,
		IdleTimeout: time.Hour, ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: perPool}
}

func poolConfig(name domain.PoolName, perPool int) engine.PoolConfig {
	return engine.PoolConfig{Name: name, Provider: "fake", Settings: settings(perPool),
		StopGrace: 10 * time.Second, RetryInitial: time.Second, RetryMax: time.Minute, RetryJitter: 0.2}
}

// runCell measures one cell: the loop first (memory, probe), then the
// engine alone.
func runCell(c *Cell) error {
	c.BaseRSS = benchkit.ReadMem().RSS
	perPool := c.Workers / c.Pools
	const probe = domain.PoolName("probe")
	cfgs := []engine.PoolConfig{}
	provs := map[domain.PoolName]providers.Provider{}
	var mu sync.Mutex
	ids := map[domain.PoolName][]domain.WorkerID{}
	var creates atomic.Int64
	probeCreated := make(chan struct{}, 1)
	for i := range c.Pools {
		name := poolName(i)
		cfgs = append(cfgs, poolConfig(name, perPool))
		f := fakeprovider.New(name)
		f.OnCreate = func(id domain.WorkerID, _ time.Time) {
			mu.Lock()
			ids[name] = append(ids[name], id)
			mu.Unlock()
			creates.Add(1)
		}
		provs[name] = f
	}
	cfgs = append(cfgs, poolConfig(probe, 1000))
	pf := fakeprovider.New(probe)
	pf.OnCreate = func(domain.WorkerID, time.Time) { probeCreated <- struct{}{} }
	provs[probe] = pf

	eng := engine.NewEngine(cfgs, 24*time.Hour)
	m := metrics.New(prometheus.NewRegistry())
	rec := reconciler.New(eng, provs, nopPublisher{}, m, zerolog.New(io.Discard), reconciler.Options{
		Interval: 5 * time.Second, ResyncInterval: time.Hour, ProviderTimeout: 30 * time.Second,
		BreakerFailures: 5, BreakerCooldown: 30 * time.Second, MaxConcurrentOps: 64, ShutdownTimeout: 5 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	defer stop()

	start := time.Now()
	rec.Deliver(domain.Delivery{CaughtUp: true, Marker: true})
	seq := uint64(0)
	deliver := func(pool domain.PoolName, kind domain.JobKind, job string, w domain.WorkerID) {
		seq++
		now := time.Now()
		rec.Deliver(domain.Delivery{Type: kind.Type(), Event: domain.JobEvent{Kind: kind, ID: fmt.Sprint(seq), Pool: pool,
			JobID: domain.JobID(job), WorkerID: w, Time: now, Stored: now, Seq: seq, Outcome: domain.OutcomeSucceeded}})
	}
	jobs := c.Workers + c.Pending
	for j := range jobs {
		deliver(poolName(j%c.Pools), domain.JobQueued, fmt.Sprintf("job-%07d", j), "")
	}
	if err := wait(5*time.Minute, func() bool { return creates.Load() >= int64(c.Workers) }); err != nil {
		return fmt.Errorf("creating %d workers: %w (%d)", c.Workers, err, creates.Load())
	}
	// Every worker takes one job: job j of pool p is the (j/pools)-th.
	mu.Lock()
	for p := range c.Pools {
		name := poolName(p)
		for k, id := range ids[name] {
			deliver(name, domain.JobStarted, fmt.Sprintf("job-%07d", k*c.Pools+p), id)
		}
	}
	mu.Unlock()
	if err := wait(5*time.Minute, func() bool {
		var pend, run, busy int
		for _, s := range rec.Status() {
			pend, run, busy = pend+s.Pending, run+s.Running, busy+s.Workers[string(domain.StateBusy)]
		}
		return pend == c.Pending && run == c.Workers && busy == c.Workers
	}); err != nil {
		return fmt.Errorf("settling: %w", err)
	}
	c.Build = time.Since(start)
	mem := benchkit.ReadMem()
	c.RSS, c.HeapInuse = mem.RSS, mem.HeapInuse

	// Probe: one queued event for the small pool, its create call.
	var lat []time.Duration
	for i := range 300 {
		t0 := time.Now()
		deliver(probe, domain.JobQueued, fmt.Sprintf("probe-%d", i), "")
		select {
		case <-probeCreated:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("probe %d: no create", i)
		}
		if i >= 20 { // warm-up
			lat = append(lat, time.Since(t0))
		}
	}
	d := benchkit.Summarise(lat)
	c.ProbeP50, c.ProbeP99, c.ProbeSamples = d.P50, d.P99, d.N
	stop()
	return engineTicks(c)
}

// engineTicks builds the same state in a bare Engine and times ticks.
func engineTicks(c *Cell) error {
	perPool := c.Workers / c.Pools
	cfgs := make([]engine.PoolConfig, c.Pools)
	for i := range cfgs {
		cfgs[i] = poolConfig(poolName(i), perPool)
	}
	eng := engine.NewEngine(cfgs, 24*time.Hour)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	step := func() { now = now.Add(time.Microsecond) }
	seq := 0
	apply := func(pool domain.PoolName, kind domain.JobKind, job string, w domain.WorkerID) {
		seq++
		eng.ApplyJob(domain.JobEvent{Kind: kind, ID: fmt.Sprint(seq), Pool: pool, JobID: domain.JobID(job), WorkerID: w,
			Time: now, Stored: now, Outcome: domain.OutcomeSucceeded}, now)
	}
	for i := range c.Pools {
		eng.ObserveList(poolName(i), nil, now, now)
	}
	eng.CaughtUp(now)
	for j := range c.Workers + c.Pending {
		apply(poolName(j%c.Pools), domain.JobQueued, fmt.Sprintf("job-%07d", j), "")
	}
	step()
	eng.Reconcile(now)
	fx := eng.Take()
	made := map[domain.PoolName][]domain.WorkerID{}
	for _, op := range fx.Ops {
		if op.Kind != engine.OpCreate {
			continue
		}
		eng.OpDone(op.Pool, op.Kind, op.Worker, domain.Worker{ID: op.Worker, Pool: op.Pool, Provider: "fake", Phase: domain.PhaseReady, CreatedAt: now}, nil, now)
		made[op.Pool] = append(made[op.Pool], op.Worker)
	}
	for p := range c.Pools {
		name := poolName(p)
		for k, id := range made[name] {
			apply(name, domain.JobStarted, fmt.Sprintf("job-%07d", k*c.Pools+p), id)
		}
	}
	step()
	eng.Reconcile(now)
	eng.Take()
	var pend, run int
	for _, p := range eng.Pools() {
		st := p.State()
		pend, run = pend+st.Pending, run+st.Running
	}
	if pend != c.Pending || run != c.Workers {
		return fmt.Errorf("engine state: pending %d running %d, want %d and %d", pend, run, c.Pending, c.Workers)
	}

	var ms0, ms1 runtime.MemStats
	// Nothing changed.
	iters := max(2000, 2_000_000/c.Pools)
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	for range iters {
		step()
		eng.Reconcile(now)
		eng.Take()
	}
	c.TickIdle = time.Since(t0) / time.Duration(iters)
	runtime.ReadMemStats(&ms1)
	c.AllocsIdle = float64(ms1.Mallocs-ms0.Mallocs) / float64(iters)

	// One large pool changed: a job queued, then cancelled.
	big := poolName(0)
	iters = 20_000
	runtime.ReadMemStats(&ms0)
	t0 = time.Now()
	for i := range iters {
		kind := domain.JobQueued
		if i%2 == 1 {
			kind = domain.JobFinished
		}
		step()
		apply(big, kind, fmt.Sprintf("x-%d", i/2), "")
		eng.Reconcile(now)
		eng.Take()
	}
	c.TickOne = time.Since(t0) / time.Duration(iters)
	runtime.ReadMemStats(&ms1)
	c.AllocsOne = float64(ms1.Mallocs-ms0.Mallocs) / float64(iters)

	// Every pool changed.
	rounds := max(10, 20_000/c.Pools)
	t0 = time.Now()
	for i := range rounds {
		kind := domain.JobQueued
		if i%2 == 1 {
			kind = domain.JobFinished
		}
		step()
		for p := range c.Pools {
			apply(poolName(p), kind, fmt.Sprintf("y-%d", i/2), "")
		}
		eng.Reconcile(now)
		eng.Take()
	}
	c.TickAllPer = time.Since(t0) / time.Duration(rounds*c.Pools)
	return nil
}

func wait(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// runDaemon holds the state in a whole daemon: the app with fake
// recording providers, and NATS embedded (as by default) or external (in
// a child process). The events are published by another child process, so
// this process holds only the daemon.
func runDaemon(c *Cell, external bool) error {
	c.BaseRSS = benchkit.ReadMem().RSS
	store, err := os.MkdirTemp("", "hodei-bench-growth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	url := "embedded"
	if external {
		u, stop, err := serveNATS(store)
		if err != nil {
			return err
		}
		defer stop()
		url = u
	}
	perPool := c.Workers / c.Pools
	var names []string
	provs := map[string]providers.Provider{}
	var mu sync.Mutex
	ids := map[domain.PoolName][]domain.WorkerID{}
	var creates atomic.Int64
	for i := range c.Pools {
		name := poolName(i)
		names = append(names, string(name))
		f := fakeprovider.New(name)
		f.OnCreate = func(id domain.WorkerID, _ time.Time) {
			mu.Lock()
			ids[name] = append(ids[name], id)
			mu.Unlock()
			creates.Add(1)
		}
		provs[string(name)] = f
	}
	cfg, err := benchkit.Config(url, store, -1, names, func(p *config.Pool) {
		p.MaxWorkers = perPool
		p.MaxConcurrentProvisioning = perPool
		p.IdleTimeout = config.Fixed(time.Hour)
	})
	if err != nil {
		return err
	}
	// The soft memory limit as cmd/autoscaler chooses it at start.
	choice, err := memlimit.Apply(int64(cfg.MemoryLimit))
	if err != nil {
		log.Printf("memory limit: %v", err)
	}
	c.MemLimit, c.MemLimitFrom = debug.SetMemoryLimit(-1), string(choice.Source)
	d, err := benchkit.StartDaemon(cfg, provs, zerolog.New(io.Discard))
	if err != nil {
		return err
	}
	defer d.Stop()
	if _, err := d.WaitReady(time.Minute); err != nil {
		return err
	}
	start := time.Now()
	size := []string{"-pools", fmt.Sprint(c.Pools), "-workers", fmt.Sprint(c.Workers), "-pending", fmt.Sprint(c.Pending)}
	if err := child(append([]string{"-publish", d.App.BusURL(), "-phase", "queued"}, size...)...); err != nil {
		return err
	}
	if err := wait(5*time.Minute, func() bool { return creates.Load() >= int64(c.Workers) }); err != nil {
		return fmt.Errorf("creating %d workers: %w (%d)", c.Workers, err, creates.Load())
	}
	idFile := store + "/workers.json"
	mu.Lock()
	data, err := json.Marshal(ids)
	mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.WriteFile(idFile, data, 0o600); err != nil {
		return err
	}
	if err := child(append([]string{"-publish", d.App.BusURL(), "-phase", "started", "-ids", idFile}, size...)...); err != nil {
		return err
	}
	if err := wait(5*time.Minute, func() bool {
		pend, run, ws := d.Totals()
		return pend == c.Pending && run == c.Workers && ws[string(domain.StateBusy)] == c.Workers
	}); err != nil {
		return fmt.Errorf("settling: %w", err)
	}
	c.Build = time.Since(start)
	time.Sleep(2 * time.Second)
	nogc := benchkit.ReadMemNoGC()
	c.RSSNoGC, c.HWM = nogc.RSS, nogc.HWM
	mem := benchkit.ReadMem()
	c.RSS, c.HeapInuse = mem.RSS, mem.HeapInuse
	if heapProfile != "" {
		f, err := os.Create(heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.Lookup("heap").WriteTo(f, 0)
	}
	return nil
}

// child runs this program with args and waits for it.
func child(args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %w", args, err)
	}
	return nil
}

// serveNATS runs a NATS server in a child process and returns its URL.
func serveNATS(dir string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-serve-nats", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("nats child: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// mainServeNATS is the child: a NATS server until stdin closes.
func mainServeNATS(dir string) error {
	srv, err := benchkit.StartNATS(dir + "/nats")
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// mainPublish is the child that publishes a cell's events: every job
// queued, or every worker's job started.
func mainPublish(url, phase, idFile string, c Cell) error {
	nc, js, err := benchkit.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	var evs []benchkit.Event
	switch phase {
	case "queued":
		for j := range c.Workers + c.Pending {
			evs = append(evs, benchkit.Event{Pool: poolName(j % c.Pools), Kind: domain.JobQueued, Job: fmt.Sprintf("job-%07d", j)})
		}
	case "started":
		data, err := os.ReadFile(idFile)
		if err != nil {
			return err
		}
		ids := map[domain.PoolName][]domain.WorkerID{}
		if err := json.Unmarshal(data, &ids); err != nil {
			return err
		}
		for p := range c.Pools {
			name := poolName(p)
			for k, id := range ids[name] {
				evs = append(evs, benchkit.Event{Pool: name, Kind: domain.JobStarted, Job: fmt.Sprintf("job-%07d", k*c.Pools+p), Worker: id})
			}
		}
	default:
		return fmt.Errorf("unknown phase %q", phase)
	}
	return benchkit.Fill(context.Background(), js, evs, time.Now)
}
