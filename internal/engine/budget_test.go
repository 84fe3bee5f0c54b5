package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// world drives an Engine of several pools against perfect providers:
// creates become ready workers at once, stops and deletes succeed. It
// tracks each pool's workers by tier as the providers would list them.
type world struct {
	t     *testing.T
	e     *Engine
	now   time.Time
	seq   int
	jobs  int
	tiers map[domain.PoolName]map[domain.WorkerID]int // workers the providers run, by tier
	busy  map[domain.WorkerID]string                  // worker -> job
	fx    Effects
}

func poolCfg(name string, mod func(*PoolConfig)) PoolConfig {
	c := PoolConfig{
		Name: domain.PoolName(name), Provider: "docker", Weight: 1,
		Settings: policy.Settings{MaxWorkers: 20, JobsPerWorker: 1,
			IdleTimeout: time.Minute, ProvisionTimeout: 2 * time.Minute, MaxConcurrentProvisioning: 20},
		StopGrace: time.Second, RetryInitial: time.Second, RetryMax: time.Minute,
	}
	if mod != nil {
		mod(&c)
	}
	return c
}

func newWorld(t *testing.T, budgets []policy.Budget, pools ...PoolConfig) *world {
	w := &world{t: t, e: NewEngine(pools, 24*time.Hour), now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		tiers: map[domain.PoolName]map[domain.WorkerID]int{}, busy: map[domain.WorkerID]string{}}
	w.e.SetBudgets(budgets)
	for _, p := range pools {
		w.tiers[p.Name] = map[domain.WorkerID]int{}
		for i := range max(len(p.Tiers), 1) {
			w.e.ObserveTierList(p.Name, i, nil, w.now, w.now)
		}
	}
	w.e.CaughtUp(w.now)
	w.step()
	return w
}

// step reconciles and carries out every op until nothing changes; it
// checks after each pass that no busy worker was stopped.
func (w *world) step() {
	w.t.Helper()
	for range 20 {
		w.e.Reconcile(w.now)
		fx := w.e.Take()
		w.fx.Decisions = append(w.fx.Decisions, fx.Decisions...)
		w.fx.Ops = append(w.fx.Ops, fx.Ops...)
		if len(fx.Ops) == 0 {
			return
		}
		for _, o := range fx.Ops {
			switch o.Kind {
			case OpCreate:
				w.tiers[o.Pool][o.Worker] = o.Tier
				w.e.OpDone(o.Pool, OpCreate, o.Worker, domain.Worker{ID: o.Worker, Pool: o.Pool, Phase: domain.PhaseReady}, nil, w.now)
			case OpStop, OpDelete:
				if j, ok := w.busy[o.Worker]; ok {
					w.t.Fatalf("op %s on worker %s running job %s", o.Kind, o.Worker, j)
				}
				delete(w.tiers[o.Pool], o.Worker)
				w.e.OpDone(o.Pool, o.Kind, o.Worker, domain.Worker{}, nil, w.now)
			}
		}
	}
}

func (w *world) event(kind domain.JobKind, pool domain.PoolName, job string, wid domain.WorkerID) {
	w.seq++
	w.e.ApplyJob(domain.JobEvent{Kind: kind, ID: fmt.Sprint(w.seq), Pool: pool, JobID: domain.JobID(job),
		WorkerID: wid, Time: w.now, Stored: w.now, Outcome: domain.OutcomeSucceeded}, w.now)
}

// queue queues n jobs on pool.
func (w *world) queue(pool domain.PoolName, n int) {
	for range n {
		w.jobs++
		w.event(domain.JobQueued, pool, fmt.Sprintf("%s-%d", pool, w.jobs), "")
	}
	w.step()
}

// startAll starts queued jobs of pool on its idle workers.
func (w *world) startAll(pool domain.PoolName) {
	p := w.e.Pool(pool)
	var idle []domain.WorkerID
	p.Workers(func(id domain.WorkerID, s domain.WorkerState, _ int) {
		if s == domain.StateIdle {
			idle = append(idle, id)
		}
	})
	pending := p.Ledger().PendingIDs()
	for i, id := range idle {
		if i >= len(pending) {
			break
		}
		w.busy[id] = string(pending[i])
		w.event(domain.JobStarted, pool, string(pending[i]), id)
	}
	w.step()
}

// finishOn finishes the jobs of n busy workers of pool on tier (-1: any).
func (w *world) finishOn(pool domain.PoolName, tier, n int) {
	w.finishQuiet(pool, tier, n)
	w.step()
}

// finishQuiet is finishOn without the reconcile.
func (w *world) finishQuiet(pool domain.PoolName, tier, n int) {
	for id, t := range w.tiers[pool] {
		if n == 0 {
			break
		}
		if j, ok := w.busy[id]; ok && (tier < 0 || t == tier) {
			delete(w.busy, id)
			w.event(domain.JobFinished, pool, j, id)
			n--
		}
	}
}

func (w *world) perTier(pool domain.PoolName) []int {
	n := make([]int, max(len(w.e.Pool(pool).Config().Tiers), 1))
	for _, t := range w.tiers[pool] {
		n[t]++
	}
	return n
}

func (w *world) total(pools ...domain.PoolName) int {
	n := 0
	for _, p := range pools {
		n += len(w.tiers[p])
	}
	return n
}

func twoTiers(c *PoolConfig) {
	c.Tiers = []TierConfig{{Name: "docker", Provider: "docker", MaxWorkers: 3}, {Name: "kubernetes", Provider: "kubernetes", MaxWorkers: 9}}
	c.Settings.MaxWorkers = 12
	c.Settings.IdleTimeout = 0
}

func twoTiersWarm(c *PoolConfig) {
	twoTiers(c)
	c.Settings.IdleWorkers = 2
}

func TestTiersSpillOverAndShrinkLastFirst(t *testing.T) {
	w := newWorld(t, nil, poolCfg("ci", twoTiersWarm))
	w.queue("ci", 10) // and 2 warm
	if got := w.perTier("ci"); got[0] != 3 || got[1] != 9 {
		t.Fatalf("12 jobs: workers by tier %v, want [3 9]", got)
	}
	w.startAll("ci")
	// Jobs finish on both tiers at once; the warm buffer keeps 2 idle:
	// the kubernetes tier's idle workers go first, and a busy worker is
	// never stopped (world checks).
	w.finishQuiet("ci", 0, 2)
	w.finishQuiet("ci", 1, 2)
	w.step()
	ts := w.e.Pool("ci").Tiers()
	idlePods := ts[1].Workers[stateIndex(domain.StateIdle)]
	running := w.e.Pool("ci").State().Running
	if got := w.perTier("ci"); got[0]+got[1] != running+2 || (got[0] < 3 && idlePods > 0) {
		t.Fatalf("jobs done on both tiers, 2 kept warm: workers by tier %v with %d idle pods, %d running: want running+2, and no container stopped while a pod idles", got, idlePods, running)
	}
	// Finish everything: all go.
	w.finishOn("ci", -1, 100)
	if got := w.perTier("ci"); got[0] != 2 || got[1] != 0 {
		t.Fatalf("all jobs done: workers by tier %v, want the 2 warm on docker", got)
	}
	// Labels: every create carried its tier.
	seen := map[int]int{}
	for _, o := range w.fx.Ops {
		if o.Kind == OpCreate {
			seen[o.Tier]++
		}
	}
	if seen[0] != 3 || seen[1] != 9 {
		t.Errorf("creates by tier %v, want 3 on tier 0 and 9 on tier 1", seen)
	}
}

func TestTierDownIsSkipped(t *testing.T) {
	w := newWorld(t, nil, poolCfg("ci", twoTiers))
	w.e.SetTierUp("ci", 0, false, "docker engine unreachable")
	w.queue("ci", 4)
	if got := w.perTier("ci"); got[0] != 0 || got[1] != 4 {
		t.Fatalf("docker down, 4 jobs: workers by tier %v, want [0 4]", got)
	}
	w.startAll("ci")
	w.e.SetTierUp("ci", 0, true, "")
	w.queue("ci", 2)
	if got := w.perTier("ci"); got[0] != 2 || got[1] != 4 {
		t.Fatalf("docker back, 2 more jobs: workers by tier %v, want [2 4]", got)
	}
	w.e.SetTierUp("ci", 0, false, "down")
	w.e.SetTierUp("ci", 1, false, "down")
	w.queue("ci", 1)
	if b := w.e.Pool("ci").Blocked(); !strings.Contains(b, "unavailable") {
		t.Errorf("every tier down: blocked %q", b)
	}
	ts := w.e.Pool("ci").Tiers()
	if len(ts) != 2 || ts[0].Up || ts[1].Workers[stateIndex(domain.StateIdle)] != 0 || ts[0].Name != "docker" {
		t.Errorf("tier status %+v", ts)
	}
}

func TestBudgetPriorities(t *testing.T) {
	b := []policy.Budget{{Name: "shared", Workers: 6}}
	hi := poolCfg("high", func(c *PoolConfig) { c.Budget, c.Priority, c.Settings.IdleTimeout = "shared", 10, 0 })
	lo := poolCfg("low", func(c *PoolConfig) { c.Budget, c.Priority, c.Settings.IdleTimeout = "shared", 1, 0 })
	w := newWorld(t, b, hi, lo)
	w.queue("low", 3)
	w.startAll("low")
	if n := w.total("low"); n != 3 {
		t.Fatalf("low alone with 3 jobs: %d workers", n)
	}
	w.queue("high", 6)
	w.queue("low", 10)
	// low keeps its 3 busy workers; high gets the other 3.
	if h, l := w.total("high"), w.total("low"); h != 3 || l != 3 {
		t.Fatalf("both flooded with low's 3 busy: high %d low %d, want 3 and 3", h, l)
	}
	w.startAll("high")
	w.finishOn("low", -1, 3) // low's workers idle: given back to high at once
	if h, l := w.total("high"), w.total("low"); h != 6 || l != 0 {
		t.Fatalf("low's jobs done: high %d low %d, want 6 and 0", h, l)
	}
	d, _ := w.e.Pool("low").LastDecision()
	if d.Bound != BoundBudget || !strings.Contains(d.Reason, "budget shared (6 workers)") || !strings.Contains(d.Reason, "share 0 of") {
		t.Errorf("low's decision: bound %q reason %q", d.Bound, d.Reason)
	}
	w.startAll("high")
	w.finishOn("high", -1, 100) // high drains: low takes the room
	w.startAll("low")
	if h, l := w.total("high"), w.total("low"); h != 0 || l != 6 {
		t.Fatalf("high drained: high %d low %d, want 0 and 6", h, l)
	}
}

func TestBudgetWeights(t *testing.T) {
	b := []policy.Budget{{Name: "shared", Workers: 6}}
	a := poolCfg("a", func(c *PoolConfig) { c.Budget, c.Weight = "shared", 2 })
	bb := poolCfg("b", func(c *PoolConfig) { c.Budget, c.Weight = "shared", 1 })
	w := newWorld(t, b, a, bb)
	for _, p := range []domain.PoolName{"a", "b"} {
		for range 10 {
			w.jobs++
			w.event(domain.JobQueued, p, fmt.Sprint("j", w.jobs), "")
		}
	}
	w.step()
	if x, y := w.total("a"), w.total("b"); x != 4 || y != 2 {
		t.Fatalf("weights 2:1 of 6: %d and %d, want 4 and 2", x, y)
	}
}

func TestBudgetNeverExceeded(t *testing.T) {
	b := []policy.Budget{{Name: "shared", Workers: 5, CPUMillis: 4000}}
	mk := func(name string, prio int, cpu int64) PoolConfig {
		return poolCfg(name, func(c *PoolConfig) {
			c.Budget, c.Priority, c.Cost = "shared", prio, domain.Resources{CPUMillis: cpu}
			c.Settings.IdleTimeout = 0
		})
	}
	w := newWorld(t, b, mk("x", 5, 1000), mk("y", 5, 500), mk("z", 1, 500))
	pools := []domain.PoolName{"x", "y", "z"}
	check := func(when string) {
		t.Helper()
		n, cpu := 0, int64(0)
		for _, p := range pools {
			n += w.total(p)
			cpu += int64(w.total(p)) * w.e.Pool(p).Config().Cost.CPUMillis
		}
		if n > 5 || cpu > 4000 {
			t.Fatalf("%s: %d workers, %dm cpu: above the budget (5, 4000m)", when, n, cpu)
		}
	}
	for round := range 30 {
		p := pools[round%3]
		w.queue(p, 1+round%4)
		check(fmt.Sprint("round ", round, " queued"))
		w.startAll(pools[(round+1)%3])
		check(fmt.Sprint("round ", round, " started"))
		w.finishOn(pools[(round+2)%3], -1, 2)
		check(fmt.Sprint("round ", round, " finished"))
	}
}

func TestPlainPoolUnchangedByBudgets(t *testing.T) {
	w := newWorld(t, []policy.Budget{{Name: "shared", Workers: 1}}, poolCfg("alone", nil))
	w.queue("alone", 4)
	if n := w.total("alone"); n != 4 {
		t.Fatalf("pool with no budget: %d workers, want 4", n)
	}
}

// PendingIDs lists the pending jobs, sorted (test helper).
func (l *Ledger) PendingIDs() []domain.JobID {
	var out []domain.JobID
	for id, j := range l.jobs {
		if j.state == jobPending {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
