package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hodei_autoscaler_probe_total", Help: "probe"})
	reg.MustRegister(c)
	c.Inc()
	var busErr, provErr error
	h := Handler(reg, []Check{
		{Name: "bus", Fn: func() error { return busErr }},
		{Name: "providers", Fn: func() error { return provErr }},
	}, func() any { return []map[string]int{{"pending": 3}} })

	get := func(path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		name     string
		path     string
		setup    func()
		wantCode int
		want     []string
	}{
		{name: "metrics", path: "/metrics", wantCode: 200, want: []string{"hodei_autoscaler_probe_total 1"}},
		{name: "healthz", path: "/healthz", wantCode: 200, want: []string{`"ok"`}},
		{name: "ready", path: "/readyz", wantCode: 200, want: []string{`"ready"`}},
		{name: "not ready names every failing check", path: "/readyz", wantCode: 503,
			setup: func() { busErr, provErr = errors.New("not connected to nats"), errors.New("pool a (docker): refused") },
			want:  []string{`"bus"`, `"providers"`, "not connected to nats", "pool a (docker): refused"}},
		{name: "pools", path: "/v1/pools", wantCode: 200, want: []string{`"pools"`, `"pending": 3`}},
		{name: "unknown path", path: "/nope", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			code, body := get(tt.path)
			if code != tt.wantCode {
				t.Fatalf("GET %s = %d, want %d: %s", tt.path, code, tt.wantCode, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s body lacks %q: %s", tt.path, w, body)
				}
			}
			if strings.HasPrefix(tt.path, "/readyz") || tt.path == "/v1/pools" {
				var v map[string]any
				if err := json.Unmarshal([]byte(body), &v); err != nil {
					t.Errorf("body is not JSON: %v", err)
				}
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", rec.Code)
	}
}
