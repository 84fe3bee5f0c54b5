package policy

import (
	"math"
	"time"
)

// BootTimes is the measured distribution of provisioning times (create to
// ready), fitted as a log-normal: the mean and variance of ln(seconds),
// weighing the first bootWindow samples equally and then each new one
// 1/bootWindow. A log-normal fits boot times well (a floor of fixed work,
// a long right tail), and two numbers give its tail, which sets the wait
// of a job that finds no free worker.
type BootTimes struct {
	N       int     // samples seen
	LogMean float64 // mean of ln(seconds)
	LogVar  float64 // variance of ln(seconds)
}

const bootWindow = 32

// Add records one provisioning time.
func (b BootTimes) Add(d time.Duration) BootTimes {
	x := math.Log(max(d.Seconds(), 1e-3))
	w := 1 / float64(min(b.N+1, bootWindow))
	delta := x - b.LogMean
	return BootTimes{N: b.N + 1, LogMean: b.LogMean + w*delta, LogVar: (1 - w) * (b.LogVar + w*delta*delta)}
}

// Quantile is the p-quantile of the fitted distribution (0 with no
// sample).
func (b BootTimes) Quantile(p float64) time.Duration {
	if b.N == 0 {
		return 0
	}
	return seconds(math.Exp(b.LogMean + math.Sqrt(b.LogVar)*normalQuantile(p))).Round(time.Millisecond)
}

// Median is the fitted median provisioning time.
func (b BootTimes) Median() time.Duration { return b.Quantile(0.5) }

// bootPoints are the quantiles that stand for the whole distribution in
// the wait model: the midpoints of bootPointCount equal-probability
// slices, so the slowest sixteenth of boots is represented by its own
// point.
const bootPointCount = 16

func (b BootTimes) points() [bootPointCount]float64 {
	var out [bootPointCount]float64
	sd := math.Sqrt(b.LogVar)
	for i := range out {
		out[i] = math.Exp(b.LogMean + sd*normalQuantile((float64(i)+0.5)/bootPointCount))
	}
	return out
}

// Bursts measures how arrivals bunch together: jobs queued within
// burstGap of a batch's first job are one batch (the jobs of one
// pipeline, a fan-out), and the averages of batch sizes and their squares
// give the arrival counts' dispersion. Each closed batch weighs 1/
// burstWindow once burstWindow batches have been seen.
type Bursts struct {
	Open     time.Time // when the open batch's first job was queued
	OpenSize int
	Mean     float64 // average batch size
	MeanSq   float64 // average squared batch size
	N        int     // closed batches
}

const (
	burstGap    = time.Second
	burstWindow = 32
)

// Add records a job queued at at (its stream time).
func (b Bursts) Add(at time.Time) Bursts {
	if b.OpenSize > 0 && at.Sub(b.Open) < burstGap && !at.Before(b.Open) {
		b.OpenSize++
		return b
	}
	if b.OpenSize > 0 {
		b = b.close()
	}
	b.Open, b.OpenSize = at, 1
	return b
}

func (b Bursts) close() Bursts {
	x := float64(b.OpenSize)
	w := 1 / float64(min(b.N+1, burstWindow))
	b.Mean += w * (x - b.Mean)
	b.MeanSq += w * (x*x - b.MeanSq)
	b.N++
	b.OpenSize = 0
	return b
}

// Dispersion is the variance-to-mean ratio of arrival counts, E[X²]/E[X]
// for batch sizes X (1 for jobs arriving one by one, as a Poisson stream
// does), counting the open batch.
func (b Bursts) Dispersion() float64 {
	if b.OpenSize > 0 {
		b = b.close()
	}
	if b.N == 0 || b.Mean <= 0 {
		return 1
	}
	return max(b.MeanSq/b.Mean, 1)
}

// atLeast is P(N ≥ n) for an arrival count N with the given mean and
// dispersion (variance / mean): Poisson when the dispersion is 1,
// negative binomial above it.
func atLeast(n int, mean, disp float64) float64 {
	if n <= 0 {
		return 1
	}
	if mean <= 0 {
		return 0
	}
	c := newCounts(mean, disp)
	cdf := 0.0
	for k := range n {
		cdf += c.next(k)
	}
	return max(1-cdf, 0)
}

// counts walks the probability mass function of an arrival count term by
// term: next(k) returns P(N = k) for k = 0, 1, 2, ... in order.
type counts struct {
	pmf        float64
	mean, r, q float64 // negative binomial: r, and q = 1 − 1/disp
	poisson    bool
	normal     bool // large means: a normal approximation
	sd         float64
}

func newCounts(mean, disp float64) counts {
	c := counts{mean: mean}
	switch {
	case mean > 500:
		c.normal, c.sd = true, math.Sqrt(mean*max(disp, 1))
	case disp <= 1.0001:
		c.poisson, c.pmf = true, math.Exp(-mean)
	default:
		c.r, c.q = mean/(disp-1), 1-1/disp
		c.pmf = math.Exp(c.r * math.Log(1/disp))
	}
	return c
}

func (c *counts) next(k int) float64 {
	if c.normal {
		x := float64(k)
		return normalCDF((x+0.5-c.mean)/c.sd) - normalCDF((x-0.5-c.mean)/c.sd)
	}
	p := c.pmf
	if c.poisson {
		c.pmf *= c.mean / float64(k+1)
	} else {
		c.pmf *= (float64(k) + c.r) / float64(k+1) * c.q
	}
	return p
}

func normalQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
