// Package httpapi serves the daemon's HTTP endpoints: /metrics, /healthz,
// /readyz and /v1/pools (see docs/http.md).
package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: nil means ready.
type Check struct {
	Name string
	Fn   func() error
}

// Handler returns the daemon's HTTP handler. pools returns what /v1/pools
// serves (it must carry no secrets).
func Handler(g prometheus.Gatherer, checks []Check, pools func() any) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failed := map[string]string{}
		for _, c := range checks {
			if err := c.Fn(); err != nil {
				failed[c.Name] = err.Error()
			}
		}
		if len(failed) > 0 {
			names := make([]string, 0, len(failed))
			for n := range failed {
				names = append(names, n)
			}
			sort.Strings(names)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": names, "reasons": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /v1/pools", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"pools": pools()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
