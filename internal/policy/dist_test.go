package policy

import (
	"math"
	"testing"
	"time"
)

func TestBootTimesFitsALogNormal(t *testing.T) {
	// Samples at the 1/64 … 63/64 quantiles of a log-normal with median
	// 20 s and p95 30 s, in an order that is not sorted.
	sigma := math.Log(1.5) / normalQuantile(0.95)
	var b BootTimes
	for i := range 63 {
		k := (i*29)%63 + 1
		b = b.Add(seconds(20 * math.Exp(sigma*normalQuantile(float64(k)/64))))
	}
	if m := b.Median(); m < 19*time.Second || m > 21*time.Second {
		t.Errorf("median %v, want about 20s", m)
	}
	if p := b.Quantile(0.95); p < 27*time.Second || p > 33*time.Second {
		t.Errorf("p95 %v, want about 30s", p)
	}
	if (BootTimes{}).Median() != 0 {
		t.Errorf("no sample: nonzero median")
	}
	// One sample: the distribution is that value.
	one := BootTimes{}.Add(12 * time.Second)
	if one.Median() != 12*time.Second || one.Quantile(0.99) != 12*time.Second {
		t.Errorf("one sample: median %v p99 %v", one.Median(), one.Quantile(0.99))
	}
	// After the first bootWindow samples, new ones move it: a provider
	// that became slower is followed.
	for range 4 * bootWindow {
		b = b.Add(60 * time.Second)
	}
	if m := b.Median(); m < 55*time.Second {
		t.Errorf("median %v after many 60s boots", m)
	}
}

func TestBurstsDispersion(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // batches, one second apart at least
		want  float64
	}{
		{name: "one by one", sizes: []int{1, 1, 1, 1, 1, 1}, want: 1},
		{name: "pipelines of four", sizes: []int{4, 4, 4, 4}, want: 4},
		{name: "mixed: E[X²]/E[X]", sizes: []int{1, 3, 1, 3}, want: 10.0 / 4},
		{name: "nothing yet", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bursts
			now := t0
			for _, n := range tt.sizes {
				for i := range n {
					b = b.Add(now.Add(time.Duration(i) * 100 * time.Millisecond))
				}
				now = now.Add(5 * time.Second)
			}
			if got := b.Dispersion(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("dispersion %g, want %g", got, tt.want)
			}
		})
	}
	// A job a second or more after a batch's first starts a new batch.
	b := Bursts{}.Add(t0).Add(t0.Add(999 * time.Millisecond)).Add(t0.Add(time.Second))
	if b.N != 1 || b.OpenSize != 1 || b.Mean != 2 {
		t.Errorf("%+v: want one closed batch of 2 and one open", b)
	}
}

func TestAtLeast(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		mean, disp float64
		want       float64
	}{
		{"Poisson P(N ≥ 1)", 1, 0.5, 1, 1 - math.Exp(-0.5)},
		{"Poisson P(N ≥ 2)", 2, 0.5, 1, 1 - 1.5*math.Exp(-0.5)},
		{"Poisson P(N ≥ 3), mean 4", 3, 4, 1, 1 - 13*math.Exp(-4)},
		// Negative binomial, mean 2, variance 6: r = 1, p = 1/3 (a
		// geometric count): P(N ≥ n) = (2/3)^n.
		{"geometric P(N ≥ 1)", 1, 2, 3, 2.0 / 3},
		{"geometric P(N ≥ 4)", 4, 2, 3, 16.0 / 81},
		{"zero is certain", 0, 3, 1, 1},
		{"no arrivals", 1, 0, 1, 0},
		// Large means: the normal approximation, P(N ≥ mean) ≈ ½.
		{"large mean", 1000, 1000, 1, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := atLeast(tt.n, tt.mean, tt.disp); math.Abs(got-tt.want) > 0.013 || (tt.mean < 500 && math.Abs(got-tt.want) > 1e-9) {
				t.Errorf("atLeast(%d, %g, %g) = %.6f, want %.6f", tt.n, tt.mean, tt.disp, got, tt.want)
			}
		})
	}
}
