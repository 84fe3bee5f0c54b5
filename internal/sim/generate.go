package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// StandardSeed is the seed of the committed standard traces
// (testdata/traces) and of the policy benchmark.
const StandardSeed = 1

// Generator kinds.
const (
	Steady  = "steady"
	Burst   = "burst"
	Diurnal = "diurnal"
)

// GenOptions describe a generated trace. Zero fields take the standard
// values of the kind (StandardGen), so a kind and a seed reproduce a trace.
type GenOptions struct {
	Kind string
	Seed uint64
	Pool string
	// Span is how long arrivals last.
	Span time.Duration
	// Rate is the mean arrival rate in jobs per hour (the baseline for
	// burst, the daily mean for diurnal).
	Rate float64
	// BurstJobs arrive uniformly within BurstWidth, BurstAt after the start.
	BurstJobs  int
	BurstAt    time.Duration
	BurstWidth time.Duration
	// Job running times are log-normal with this median and 95th
	// percentile.
	DurationMedian time.Duration
	DurationP95    time.Duration
}

// StandardGen returns the standard options of a kind:
//   - steady: Poisson arrivals at 60 jobs/h for 24 h;
//   - burst: a quiet baseline of 6 jobs/h for 6 h from Monday 06:00 UTC,
//     and 300 jobs within one minute at 09:00 (a Monday-morning burst);
//   - diurnal: 48 h of Poisson arrivals whose rate follows a 24-hour sine
//     around 60 jobs/h, from 12 jobs/h at midnight to 108 jobs/h at noon.
//
// Running times are log-normal, median 4 minutes, 95th percentile 15.
func StandardGen(kind string, seed uint64) (GenOptions, error) {
	o := GenOptions{Kind: kind, Seed: seed, Pool: "default", DurationMedian: 4 * time.Minute, DurationP95: 15 * time.Minute}
	switch kind {
	case Steady:
		o.Span, o.Rate = 24*time.Hour, 60
	case Burst:
		o.Span, o.Rate, o.BurstJobs, o.BurstAt, o.BurstWidth = 6*time.Hour, 6, 300, 3*time.Hour, time.Minute
	case Diurnal:
		o.Span, o.Rate = 48*time.Hour, 60
	default:
		return o, fmt.Errorf("unknown trace kind %q: use steady, burst or diurnal", kind)
	}
	return o, nil
}

// Generate builds a trace; the same options always give the same trace.
func Generate(o GenOptions) (*Trace, error) {
	std, err := StandardGen(o.Kind, o.Seed)
	if err != nil {
		return nil, err
	}
	fill := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	fill(&o.Span, std.Span)
	fill(&o.BurstAt, std.BurstAt)
	fill(&o.BurstWidth, std.BurstWidth)
	fill(&o.DurationMedian, std.DurationMedian)
	fill(&o.DurationP95, std.DurationP95)
	if o.Rate == 0 {
		o.Rate = std.Rate
	}
	if o.BurstJobs == 0 {
		o.BurstJobs = std.BurstJobs
	}
	if o.Pool == "" {
		o.Pool = std.Pool
	}
	if o.Rate < 0 || o.Span <= 0 || o.DurationMedian <= 0 {
		return nil, fmt.Errorf("generate: rate, span and duration must be positive")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x686f646569)) // "hodei"
	dur := lognormal(o.DurationMedian, o.DurationP95)
	tr := &Trace{Start: DefaultStart}
	if o.Kind == Burst {
		tr.Start = DefaultStart.Add(6 * time.Hour) // Monday 06:00 UTC
	}
	add := func(at time.Duration) {
		tr.Jobs = append(tr.Jobs, Job{ID: fmt.Sprintf("%s-%06d", o.Kind, len(tr.Jobs)), Pool: o.Pool, Queued: at, Duration: dur(rng)})
	}
	perSec := o.Rate / 3600
	switch o.Kind {
	case Steady, Burst:
		poisson(rng, perSec, o.Span, func(at time.Duration) bool { return true }, add)
		if o.Kind == Burst {
			for range o.BurstJobs {
				add((o.BurstAt + time.Duration(rng.Float64()*float64(o.BurstWidth))).Round(time.Millisecond))
			}
		}
	case Diurnal:
		// Thinning: candidates at the peak rate, each kept with
		// probability rate(t)/peak. The trace starts at midnight.
		const amp = 0.8
		peak := perSec * (1 + amp)
		poisson(rng, peak, o.Span, func(at time.Duration) bool {
			phase := 2 * math.Pi * (at.Hours() - 6) / 24
			return rng.Float64() < (1+amp*math.Sin(phase))/(1+amp)
		}, add)
	}
	tr.sort()
	for i := range tr.Jobs { // ids in arrival order
		tr.Jobs[i].ID = fmt.Sprintf("%s-%06d", o.Kind, i)
	}
	return tr, nil
}

// poisson calls add for the arrivals of a Poisson process of rate perSec
// within span that keep accepts.
func poisson(rng *rand.Rand, perSec float64, span time.Duration, keep func(time.Duration) bool, add func(time.Duration)) {
	if perSec <= 0 {
		return
	}
	t := 0.0
	for {
		t += rng.ExpFloat64() / perSec
		at := seconds(t).Round(time.Millisecond)
		if at >= span {
			return
		}
		if keep(at) {
			add(at)
		}
	}
}

// z95 is the standard normal's 95th percentile.
const z95 = 1.6448536269514722

// lognormal returns a sampler with the given median and 95th percentile
// (fixed at the median when p95 is not above it), rounded to milliseconds.
func lognormal(median, p95 time.Duration) func(*rand.Rand) time.Duration {
	if p95 <= median {
		return func(*rand.Rand) time.Duration { return median }
	}
	mu := math.Log(median.Seconds())
	sigma := math.Log(p95.Seconds()/median.Seconds()) / z95
	return func(rng *rand.Rand) time.Duration {
		return seconds(math.Exp(mu + sigma*rng.NormFloat64())).Round(time.Millisecond)
	}
}
