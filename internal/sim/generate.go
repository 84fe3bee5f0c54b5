package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// StandardSeed is the seed of the committed standard traces
// (testdata/traces) and of the policy benchmark.
const StandardSeed = 1

// Generator kinds.
const (
	Steady    = "steady"
	Burst     = "burst"
	Diurnal   = "diurnal"
	Spikes    = "spikes"
	HeavyTail = "heavytail"
	CIWeek    = "ciweek"
)

// Kinds are the generator kinds, in the order reports list them.
var Kinds = []string{Steady, Burst, Diurnal, Spikes, HeavyTail, CIWeek}

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
	// Spikes (kind spikes) of SpikeJobsMin to SpikeJobsMax jobs each
	// arrive uniformly within SpikeWidth at times nobody announced
	// (uniform over the span).
	Spikes                     int
	SpikeJobsMin, SpikeJobsMax int
	SpikeWidth                 time.Duration
	// BatchMean (kind ciweek) is the mean number of jobs a pipeline queues
	// at one instant: 1 + a geometric count.
	BatchMean float64
	// Job running times are log-normal with this median and 95th
	// percentile, or, when DurationTail > 0, Pareto with this median and
	// tail index (heavy-tailed: a few jobs run for hours), capped at
	// DurationMax.
	DurationMedian time.Duration
	DurationP95    time.Duration
	DurationTail   float64
	DurationMax    time.Duration
}

// StandardGen returns the standard options of a kind:
//
//   - steady: Poisson arrivals at 60 jobs/h for 24 h;
//
//   - burst: a quiet baseline of 6 jobs/h for 6 h from Monday 06:00 UTC,
//     and 300 jobs within one minute at 09:00 (a Monday-morning burst);
//
//   - diurnal: 48 h of Poisson arrivals whose rate follows a 24-hour sine
//     around 60 jobs/h, from 12 jobs/h at midnight to 108 jobs/h at noon.
//
//   - spikes: 24 h of Poisson arrivals at 40 jobs/h and, at six moments
//     nobody announced, 10 to 40 jobs within one minute (CI fan-outs,
//     a merge train);
//
//   - heavytail: 24 h of Poisson arrivals at 60 jobs/h whose running
//     times are Pareto with a median of 1 minute and tail index 1.1
//     (capped at 4 h): most jobs are short, a few run for hours;
//
//   - ciweek: a CI week from Monday 00:00 UTC: pipelines queue 1 + a
//     geometric number of jobs at once (4 on average); on weekdays 150
//     jobs/h from 09:00 to 18:00 with a dip to 80 at lunch, 60 from 08:00
//     and 30 until 22:00, 4 at night, and a nightly run of 20 jobs at
//     02:00; 6 jobs/h by day and 2 by night at the weekend. Running
//     times log-normal, median 3 minutes, 95th percentile 12.
//
// Running times are otherwise log-normal, median 4 minutes, 95th
// percentile 15.
func StandardGen(kind string, seed uint64) (GenOptions, error) {
	o := GenOptions{Kind: kind, Seed: seed, Pool: "default", DurationMedian: 4 * time.Minute, DurationP95: 15 * time.Minute}
	switch kind {
	case Steady:
		o.Span, o.Rate = 24*time.Hour, 60
	case Burst:
		o.Span, o.Rate, o.BurstJobs, o.BurstAt, o.BurstWidth = 6*time.Hour, 6, 300, 3*time.Hour, time.Minute
	case Diurnal:
		o.Span, o.Rate = 48*time.Hour, 60
	case Spikes:
		o.Span, o.Rate, o.Spikes, o.SpikeJobsMin, o.SpikeJobsMax, o.SpikeWidth = 24*time.Hour, 40, 6, 10, 40, time.Minute
	case HeavyTail:
		o.Span, o.Rate, o.DurationMedian, o.DurationP95, o.DurationTail, o.DurationMax = 24*time.Hour, 60, time.Minute, 0, 1.1, 4*time.Hour
	case CIWeek:
		o.Span, o.Rate, o.BatchMean, o.DurationMedian, o.DurationP95 = 7*24*time.Hour, 150, 4, 3*time.Minute, 12*time.Minute
	default:
		return o, fmt.Errorf("unknown trace kind %q: use one of %s", kind, strings.Join(Kinds, ", "))
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
	fill(&o.DurationMax, std.DurationMax)
	fill(&o.SpikeWidth, std.SpikeWidth)
	fillF := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	fillF(&o.Rate, std.Rate)
	fillF(&o.DurationTail, std.DurationTail)
	fillF(&o.BatchMean, std.BatchMean)
	fillI := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	fillI(&o.BurstJobs, std.BurstJobs)
	fillI(&o.Spikes, std.Spikes)
	fillI(&o.SpikeJobsMin, std.SpikeJobsMin)
	fillI(&o.SpikeJobsMax, std.SpikeJobsMax)
	if o.Pool == "" {
		o.Pool = std.Pool
	}
	if o.Rate < 0 || o.Span <= 0 || o.DurationMedian <= 0 {
		return nil, fmt.Errorf("generate: rate, span and duration must be positive")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x686f646569)) // "hodei"
	dur := lognormal(o.DurationMedian, o.DurationP95)
	if o.DurationTail > 0 {
		dur = pareto(o.DurationMedian, o.DurationTail, o.DurationMax)
	}
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
	case Spikes:
		poisson(rng, perSec, o.Span, func(time.Duration) bool { return true }, add)
		for range o.Spikes {
			at := time.Duration(rng.Float64() * float64(o.Span-o.SpikeWidth))
			n := o.SpikeJobsMin + rng.IntN(max(o.SpikeJobsMax-o.SpikeJobsMin, 0)+1)
			for range n {
				add((at + time.Duration(rng.Float64()*float64(o.SpikeWidth))).Round(time.Millisecond))
			}
		}
	case HeavyTail:
		poisson(rng, perSec, o.Span, func(time.Duration) bool { return true }, add)
	case CIWeek:
		// Pipelines arrive by thinning at the week's peak rate; each
		// queues its jobs at one instant.
		peak := perSec / o.BatchMean
		poisson(rng, peak, o.Span, func(at time.Duration) bool {
			return rng.Float64() < ciWeekRate(at)
		}, func(at time.Duration) {
			for range 1 + geometric(rng, o.BatchMean-1) {
				add(at)
			}
		})
		for day := time.Duration(0); day < o.Span; day += 24 * time.Hour {
			if wd := DefaultStart.Add(day).Weekday(); wd != time.Saturday && wd != time.Sunday {
				for range 20 {
					add(day + 2*time.Hour)
				}
			}
		}
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

// ciWeekRate is the ciweek trace's arrival rate at an offset from Monday
// 00:00, as a share of its weekday peak.
func ciWeekRate(at time.Duration) float64 {
	day := int(at / (24 * time.Hour))
	h := (at % (24 * time.Hour)).Hours()
	if day%7 >= 5 { // the weekend
		if h >= 8 && h < 20 {
			return 6.0 / 150
		}
		return 2.0 / 150
	}
	switch {
	case h >= 12 && h < 13:
		return 80.0 / 150
	case h >= 9 && h < 18:
		return 1
	case h >= 8 && h < 9:
		return 60.0 / 150
	case h >= 18 && h < 22:
		return 30.0 / 150
	}
	return 4.0 / 150
}

// geometric draws the number of failures before a success with the given
// mean (0 when mean ≤ 0).
func geometric(rng *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	p := 1 / (1 + mean)
	return int(math.Floor(math.Log(1-rng.Float64()) / math.Log(1-p)))
}

// pareto returns a sampler of Pareto durations with the given median and
// tail index α (P(X > x) = (x_m/x)^α), capped at most (when set), rounded
// to milliseconds.
func pareto(median time.Duration, alpha float64, most time.Duration) func(*rand.Rand) time.Duration {
	xm := median.Seconds() / math.Pow(2, 1/alpha)
	return func(rng *rand.Rand) time.Duration {
		d := seconds(xm / math.Pow(1-rng.Float64(), 1/alpha)).Round(time.Millisecond)
		if most > 0 {
			d = min(d, most)
		}
		return d
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
