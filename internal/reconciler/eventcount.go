package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hodei/hodei-autoscaler/internal/engine"
)

// eventKey is one series of hodei_autoscaler_events_total.
type eventKey struct {
	typ    string
	result engine.Result
}

// eventCounters caches the series of the events counter the loop has
// used: a lookup by labels (hashing them, locking the vector) costs about
// a tenth of an event's decode and fold (BENCHMARKS.md, row 0b), a map
// hit a few dozen instructions. Owned by the loop's goroutine.
type eventCounters struct {
	vec    *prometheus.CounterVec
	series map[eventKey]prometheus.Counter
}

func newEventCounters(vec *prometheus.CounterVec) eventCounters {
	return eventCounters{vec: vec, series: map[eventKey]prometheus.Counter{}}
}

// inc counts one event of type typ with result res.
func (c eventCounters) inc(typ string, res engine.Result) {
	k := eventKey{typ, res}
	s, ok := c.series[k]
	if !ok {
		s = c.vec.WithLabelValues(typ, res.String())
		c.series[k] = s
	}
	s.Inc()
}
