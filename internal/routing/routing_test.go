package routing_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hodei/hodei-autoscaler/internal/routing"
)

func TestRoute(t *testing.T) {
	yes := true
	rules := []routing.Rule{
		{Pool: "gpu", Match: routing.Match{GPU: &yes}},
		{Pool: "k8s", Match: routing.Match{Provider: "kubernetes"}},
		{Pool: "arm", Match: routing.Match{Labels: map[string]string{"arch": "arm64"}}},
		{Pool: "big", Match: routing.Match{MinMemoryMB: 8192}},
		{Pool: "rust", Match: routing.Match{Image: "*/rust:*"}},
		{Pool: "any-team", Match: routing.Match{Labels: map[string]string{"team": "*"}, MaxCPUMillis: 1000}},
		{Pool: "renamed", Match: routing.Match{Pool: "old"}},
	}
	for _, c := range []struct {
		name    string
		r       routing.Router
		a       routing.Attrs
		want    string
		noRoute bool
	}{
		{"gpu first even with a provider", routing.Router{Rules: rules}, routing.Attrs{GPU: true, Provider: "kubernetes"}, "gpu", false},
		{"provider", routing.Router{Rules: rules}, routing.Attrs{Provider: "kubernetes"}, "k8s", false},
		{"label", routing.Router{Rules: rules}, routing.Attrs{Labels: map[string]string{"arch": "arm64"}}, "arm", false},
		{"label other value", routing.Router{Rules: rules}, routing.Attrs{Labels: map[string]string{"arch": "amd64"}}, "", true},
		{"memory bound inclusive", routing.Router{Rules: rules}, routing.Attrs{MemoryMB: 8192}, "big", false},
		{"image pattern", routing.Router{Rules: rules}, routing.Attrs{Image: "docker.io/rust:1.80"}, "rust", false},
		{"label any value with cpu bound", routing.Router{Rules: rules}, routing.Attrs{Labels: map[string]string{"team": "x"}, CPUMillis: 1000}, "any-team", false},
		{"cpu above bound", routing.Router{Rules: rules}, routing.Attrs{Labels: map[string]string{"team": "x"}, CPUMillis: 1001}, "", true},
		{"cloudevents pool", routing.Router{Rules: rules}, routing.Attrs{Pool: "old"}, "renamed", false},
		{"default pool", routing.Router{Rules: rules, Default: "dflt"}, routing.Attrs{}, "dflt", false},
		{"no rules: own pool", routing.Router{}, routing.Attrs{Pool: "p1"}, "p1", false},
		{"no rules, no pool", routing.Router{}, routing.Attrs{}, "", true},
		{"rules, unmatched own pool is not used", routing.Router{Rules: rules}, routing.Attrs{Pool: "p1"}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.r.Route(c.a)
			if c.noRoute {
				if !errors.Is(err, routing.ErrNoRoute) || got != "" {
					t.Fatalf("Route = %q, %v; want ErrNoRoute", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Route = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	pools := []string{"a", "b"}
	for _, c := range []struct {
		name string
		r    routing.Router
		want []string
	}{
		{"good", routing.Router{Rules: []routing.Rule{{Pool: "a", Match: routing.Match{Provider: "x"}}, {Pool: "b"}}, Default: "a"}, nil},
		{"unknown pools", routing.Router{Rules: []routing.Rule{{Pool: "c", Match: routing.Match{Provider: "x"}}}, Default: "d"}, []string{`in.default_pool: pool "d"`, `in.routes[0].pool: pool "c"`}},
		{"no pool", routing.Router{Rules: []routing.Rule{{Match: routing.Match{Provider: "x"}}}}, []string{"in.routes[0].pool: required"}},
		{"bad pattern", routing.Router{Rules: []routing.Rule{{Pool: "a", Match: routing.Match{Image: "["}}}}, []string{"in.routes[0].match.image"}},
		{"empty bounds", routing.Router{Rules: []routing.Rule{{Pool: "a", Match: routing.Match{MinMemoryMB: 10, MaxMemoryMB: 5}}}}, []string{"no job can match"}},
		{"catch-all first", routing.Router{Rules: []routing.Rule{{Pool: "a"}, {Pool: "b", Match: routing.Match{Provider: "x"}}}}, []string{"rules after it never apply"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := c.r.Validate("in", pools)
			if len(errs) != len(c.want) {
				t.Fatalf("errors %v, want %d", errs, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %q lacks %q", errs[i], w)
				}
			}
		})
	}
}
