package hodeijobs

import (
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// The jobs remembered stay bounded, whatever the stream: the same job
// seen and finished over and over, and more live jobs than maxTracked.
func TestTrackBounded(t *testing.T) {
	d := New(routing.Router{Default: "p"}, 0)
	for range 10 * 1024 {
		d.track("same", tracked{pool: "p"})
		delete(d.jobs, "same") // finished
	}
	if len(d.order) > 2048 {
		t.Errorf("order holds %d entries for one job", len(d.order))
	}
	for i := range maxTracked + 10 {
		d.track(string(rune(i))+"-job", tracked{pool: "p"})
	}
	if len(d.jobs) > maxTracked || len(d.order) > 2*maxTracked+1024 {
		t.Errorf("%d jobs, %d order entries, bound %d", len(d.jobs), len(d.order), maxTracked)
	}
}
