package lease

import (
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

func TestDefaultTiming(t *testing.T) {
	d := DefaultTiming()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Margin(), 400*time.Millisecond; got != want {
		t.Errorf("margin = %v, want %v (250ms slack + 2 x 0.5%% x 15s)", got, want)
	}
	// The bucket's Raft group needs up to 9 s (nats-server's longest
	// election timeout) plus a few hundred ms to elect a leader after the
	// kill -9 of the one it had: a healthy holder must ride that out.
	if d.Tolerance() < 10*time.Second {
		t.Errorf("tolerance %v does not cover a 9 s leader election", d.Tolerance())
	}
	if got := d.MayActUntil(t0); !got.Equal(t0.Add(15*time.Second - 400*time.Millisecond)) {
		t.Errorf("may act until %v after the renewal", got.Sub(t0))
	}
}

func TestTimingValidate(t *testing.T) {
	ok := DefaultTiming()
	for _, tc := range []struct {
		name string
		edit func(*Timing)
		want string // "" = valid
	}{
		{"defaults", func(*Timing) {}, ""},
		{"zero ttl", func(t *Timing) { t.TTL = 0 }, "lease ttl 0s must be positive"},
		{"zero renew", func(t *Timing) { t.RenewEvery = 0 }, "renew interval 0s must be positive"},
		{"zero op timeout", func(t *Timing) { t.OpTimeout = 0 }, "bucket call timeout 0s must be positive"},
		{"negative drift", func(t *Timing) { t.Drift = -0.1 }, "clock drift -0.1 must be between 0 and 0.1"},
		{"huge drift", func(t *Timing) { t.Drift = 0.5 }, "clock drift 0.5 must be between 0 and 0.1"},
		{"negative slack", func(t *Timing) { t.Slack = -time.Second }, "safety slack -1s must not be negative"},
		{"margin over half the ttl", func(t *Timing) {
			t.TTL = time.Second
			t.RenewEvery = 100 * time.Millisecond
			t.OpTimeout = 100 * time.Millisecond
			t.Slack = 600 * time.Millisecond
		},
			"must be under half the lease ttl 1s"},
		{"renewals too rare", func(t *Timing) { t.RenewEvery = 13 * time.Second }, "renew interval 13s + bucket call timeout 2s must be under lease ttl 15s - safety margin 400ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := ok
			tc.edit(&tm)
			err := tm.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// skewedClock is a clock running at rate times true time, from base.
func skewedClock(rate float64) func(trueElapsed time.Duration) time.Time {
	return func(d time.Duration) time.Time { return t0.Add(time.Duration(float64(d) * rate)) }
}

// lastTrue is the last true instant (ns resolution, within limit) at
// which ok holds, given that it holds at 0 and, once false, stays false.
func lastTrue(limit time.Duration, ok func(time.Duration) bool) time.Duration {
	lo, hi := time.Duration(0), limit
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// fenceVersusTakeover measures, in true time from the renewal, when the
// holder's fence last says yes and when the taker (which saw the renewal
// delay later) first may take over, with the two clocks at the given rates.
func fenceVersusTakeover(tm Timing, holderRate, takerRate float64, delay time.Duration) (lastAct, firstTake time.Duration) {
	holder, taker := skewedClock(holderRate), skewedClock(takerRate)
	var f Fence
	f.setTerm("s", tm.MayActUntil(holder(0)))
	f.setHeld("s", map[domain.PoolName]struct{}{"p": {}})
	lastAct = lastTrue(10*tm.TTL, func(d time.Duration) bool { return f.MayAct("p", holder(d)) })
	seen := taker(delay)
	firstTake = 1 + lastTrue(10*tm.TTL, func(d time.Duration) bool { return d < delay || !tm.Stale(seen, taker(d), 0) })
	return lastAct, firstTake
}

// The fencing argument, on the real Fence and Timing.Stale: with the
// holder's and the taker's clocks anywhere within Drift of true time, the
// holder's last instant of acting comes at least Slack before the first
// instant another replica may take its pools over.
func TestFenceClosesBeforeTakeoverWithinDrift(t *testing.T) {
	for _, tm := range []Timing{DefaultTiming(), {TTL: 2 * time.Second, RenewEvery: 400 * time.Millisecond, Drift: 0.01, Slack: 0, OpTimeout: 300 * time.Millisecond}} {
		rates := []float64{1 - tm.Drift, 1, 1 + tm.Drift}
		for _, hr := range rates {
			for _, tr := range rates {
				for _, delay := range []time.Duration{0, 3 * time.Millisecond, time.Second} {
					lastAct, firstTake := fenceVersusTakeover(tm, hr, tr, delay)
					if gap := firstTake - lastAct; gap < tm.Slack {
						t.Errorf("ttl %v, holder clock x%v, taker clock x%v, seen %v late: holder acts until %v, taker may start at %v (gap %v < slack %v)",
							tm.TTL, hr, tr, delay, lastAct, firstTake, gap, tm.Slack)
					}
				}
			}
		}
	}
}

// The margin is what makes it hold: clocks drifting twice as much as
// assumed, with no slack, break the order, so the test above can fail.
func TestFenceNeedsItsMargin(t *testing.T) {
	tm := Timing{TTL: 15 * time.Second, RenewEvery: 2 * time.Second, Drift: 0.005, Slack: 0, OpTimeout: 2 * time.Second}
	lastAct, firstTake := fenceVersusTakeover(tm, 1-2*tm.Drift, 1+2*tm.Drift, 0)
	if firstTake > lastAct {
		t.Fatalf("with clocks drifting 2x the bound the holder still stops first (%v < %v): the margin is not what the argument says", lastAct, firstTake)
	}
}

func TestFence(t *testing.T) {
	var f Fence
	if f.MayAct("p", t0) {
		t.Fatal("a new fence lets act")
	}
	f.setTerm("s1", t0.Add(time.Second))
	if f.MayAct("p", t0) {
		t.Fatal("a term without held pools lets act")
	}
	f.setHeld("s1", map[domain.PoolName]struct{}{"p": {}})
	if !f.MayAct("p", t0) || f.MayAct("q", t0) {
		t.Fatal("held pool p: want yes for p, no for q")
	}
	if until, ok := f.Until("p", t0.Add(time.Second)); ok || !until.Equal(t0.Add(time.Second)) {
		t.Fatalf("at the deadline: until %v ok %v, want closed at the deadline", until, ok)
	}
	if got := f.Held(t0); len(got) != 1 || got[0] != "p" {
		t.Errorf("held = %v", got)
	}
	f.setHeld("s0", map[domain.PoolName]struct{}{"p": {}})
	if f.MayAct("p", t0) {
		t.Fatal("pools held under another session let act")
	}
	f.setAll("s1")
	if !f.MayAct("anything", t0) || f.Held(t0) != nil {
		t.Fatal("setAll: want every pool, and no list")
	}
	f.close()
	if f.MayAct("p", t0) {
		t.Fatal("a closed fence lets act")
	}
}
