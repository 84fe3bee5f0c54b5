// Command decodefold is the load-independent measure of the daemon's
// per-event hot path (issue 16): on one goroutine, it decodes N contract
// job events as the consumer does (events.Decoder.Decode and the subject's
// type) and folds them as the loop's apply does (engine.Engine.ApplyJob
// and the event counter), with the stream bench's mix (10 pools of 20
// workers, each job started 100 jobs after it was queued and finished 100
// after that; the workers listed first, as after a restart). The events
// are encoded before, outside the measured function foldAll.
//
// Run it under callgrind, which counts instructions, repeatable on a
// shared machine where wall-clock time is not; only foldAll is collected
// (one goroutine, GOMAXPROCS=1 and GOGC=off: nothing else runs inside it):
//
//	go build -o /tmp/decodefold ./bench/decodefold
//	GOMAXPROCS=1 GOGC=off valgrind --tool=callgrind --toggle-collect='main.foldAll' --callgrind-out-file=/tmp/cg.out /tmp/decodefold -events 20000
//	callgrind_annotate --inclusive=yes /tmp/cg.out | head -40
//
// bench/run.sh does that and divides the instructions collected (and
// those of Decode and ApplyJob) by N: the instruction-count row of
// BENCHMARKS.md.
//
// With -hodei, the same mix is rendered as Hodei's server publishes it
// (benchkit.HodeiMessage: JobQueued with a whole job spec, JobAssigned,
// JobStatusChanged; row 1h's events) and decoded by the hodei-jobs
// input's decoder (hodeijobs.Decoder.Decode) with row 1h's routing rules;
// only foldHodei is collected:
//
//	GOMAXPROCS=1 GOGC=off valgrind --tool=callgrind --toggle-collect='main.foldHodei' --callgrind-out-file=/tmp/cg.out /tmp/decodefold -hodei -events 20000
//
// and -hodei -callgrind FILE writes row 0bh.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hodei/hodei-autoscaler/bench/internal/benchkit"
	"github.com/hodei/hodei-autoscaler/internal/domain"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/events"
	"github.com/hodei/hodei-autoscaler/internal/inputs/hodeijobs"
	"github.com/hodei/hodei-autoscaler/internal/metrics"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

var mix = benchkit.Mix{Pools: 10, WorkersPerPool: 20, Lag: 100}

func main() {
	n := flag.Int("events", 20000, "job events to decode and fold")
	out := flag.String("callgrind", "", "run under callgrind -reps times and write row 0b to this JSON file")
	reps := flag.Int("reps", 3, "callgrind runs")
	hodei := flag.Bool("hodei", false, "the mix as Hodei's events, through the hodei-jobs input's decoder (row 1h's events)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("decodefold: ")
	if *out != "" {
		if err := measure(*n, *reps, *out, *hodei); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*n, *hodei); err != nil {
		log.Fatal(err)
	}
}

type message struct {
	subject string
	payload []byte
}

func run(n int, hodei bool) error {
	t0 := time.Now()
	var msgs []message
	for _, ev := range mix.Events(n) {
		var subj string
		var payload []byte
		var err error
		if hodei {
			subj, payload, err = benchkit.HodeiMessage(ev, t0)
		} else {
			subj, payload, _, err = benchkit.Encode(ev, t0)
		}
		if err != nil {
			return err
		}
		msgs = append(msgs, message{subj, payload})
	}
	var cfgs []engine.PoolConfig
	for i := range mix.Pools {
		cfgs = append(cfgs, engine.PoolConfig{Name: mix.PoolName(i), Provider: "fake",
			Settings: policy.Settings{MaxWorkers: mix.WorkersPerPool, JobsPerWorker: 1, IdleTimeout: time.Hour,
				ProvisionTimeout: 5 * time.Minute, MaxConcurrentProvisioning: mix.WorkersPerPool},
			StopGrace: 10 * time.Second, RetryInitial: time.Second, RetryMax: time.Minute, RetryJitter: 0.2})
	}
	eng := engine.NewEngine(cfgs, 24*time.Hour)
	for i := range mix.Pools {
		var ws []domain.Worker
		for k := range mix.WorkersPerPool {
			ws = append(ws, domain.Worker{ID: mix.Worker(i, k), Pool: mix.PoolName(i), Phase: domain.PhaseReady, CreatedAt: t0})
		}
		eng.ObserveList(mix.PoolName(i), ws, t0, t0)
	}
	m := metrics.New(prometheus.NewRegistry())
	var applied int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if hodei {
		applied = foldHodei(hodeijobs.New(mix.HodeiInput().Router(), 64<<10), eng, m, msgs, t0)
	} else {
		applied = foldAll(events.Decoder{Subjects: benchkit.Subjects, MaxBytes: 64 << 10, Workers: events.NewInterner()}, eng, m, msgs, t0)
	}
	runtime.ReadMemStats(&after)
	if applied != n {
		return fmt.Errorf("%d of %d events applied", applied, n)
	}
	var pending, running int
	for _, p := range eng.Pools() {
		s := p.State()
		pending, running = pending+s.Pending, running+s.Running
	}
	fmt.Fprintf(os.Stdout, "%d events decoded and folded: %d pending, %d running; %.2f allocations and %.0f bytes allocated per event\n",
		n, pending, running, float64(after.Mallocs-before.Mallocs)/float64(n), float64(after.TotalAlloc-before.TotalAlloc)/float64(n))
	return nil
}

// eventCounter is the loop's events counter (eventcount.go): each
// series looked up once per type and result.
type eventCounter struct {
	m      *metrics.Metrics
	series map[eventKey]prometheus.Counter
}

type eventKey struct {
	typ string
	res engine.Result
}

func newEventCounter(m *metrics.Metrics) *eventCounter {
	return &eventCounter{m: m, series: map[eventKey]prometheus.Counter{}}
}

func (e *eventCounter) count(typ string, res engine.Result) {
	c, ok := e.series[eventKey{typ, res}]
	if !ok {
		c = e.m.Events.WithLabelValues(typ, res.String())
		e.series[eventKey{typ, res}] = c
	}
	c.Inc()
}

// foldAll is the measured part: per message what the consumer's decode
// and the loop's apply do (internal/events/consumer.go,
// internal/reconciler/reconciler.go and eventcount.go: the counter's
// series looked up once per type and result), without the channel
// between them.
//
//go:noinline
func foldAll(dec events.Decoder, eng *engine.Engine, m *metrics.Metrics, msgs []message, now time.Time) int {
	count := newEventCounter(m).count
	applied := 0
	for i, msg := range msgs {
		ev, err := dec.Decode(msg.subject, msg.payload)
		if err != nil {
			typ := "unknown"
			if _, kind, ok := dec.Subjects.ParseJob(msg.subject); ok {
				typ = kind.Type()
			}
			count(typ, engine.Invalid)
			continue
		}
		typ := ev.Kind.Type() // the subject's, as the consumer takes it
		ev.Seq, ev.Stored = uint64(i+1), now
		res, _ := eng.ApplyJob(ev, now)
		count(typ, res)
		if res == engine.Applied {
			applied++
		}
	}
	return applied
}

// foldHodei is foldAll for the hodei-jobs input: per message what its
// consumer's DecodeMsg (internal/inputs/set.go: hodeijobs.Decoder.Decode)
// and the loop's apply do, the counter's type the decoder's.
//
//go:noinline
func foldHodei(dec *hodeijobs.Decoder, eng *engine.Engine, m *metrics.Metrics, msgs []message, now time.Time) int {
	count := newEventCounter(m).count
	applied := 0
	for i, msg := range msgs {
		r := dec.Decode(msg.payload)
		switch {
		case r.Err != nil:
			count(r.Type, engine.Invalid)
			continue
		case r.Ignored || r.Heartbeat != nil:
			count(r.Type, engine.Ignored)
			continue
		}
		ev := r.Event
		ev.Seq, ev.Stored = uint64(i+1), now
		res, _ := eng.ApplyJob(ev, now)
		count(r.Type, res)
		if res == engine.Applied {
			applied++
		}
	}
	return applied
}
