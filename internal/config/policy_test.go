package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// v2Pool is one docker pool with the given policy keys (indented under it).
func v2Pool(keys string) string {
	var b strings.Builder
	b.WriteString("pools:\n  - name: a\n    docker: {image: img}\n")
	for _, l := range strings.Split(strings.TrimSpace(keys), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func v2Parse(t *testing.T, yml string, environ ...string) (config.Pool, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), environ)
	if err != nil {
		return config.Pool{}, err
	}
	return cfg.Pools[0], nil
}

func TestPolicyKeys(t *testing.T) {
	p, err := v2Parse(t, v2Pool(`
max_workers: 20
idle_workers: auto
max_idle_workers: 6
arrival_rate_window: 5m
max_jobs_per_worker: 1
scale_up: {max: "50%", period: 30s, cooldown: 10s}
scale_down: {max: 2, cooldown: 2m, stabilization_window: 5m}
schedules:
  - name: office
    days: [mon-fri]
    start: "08:00"
    end: "19:00"
    timezone: Europe/Madrid
    min_workers: 2
    idle_workers: auto
  - name: weekend-nights
    days: [fri, sat]
    start: "22:00"
    end: "06:00"
    idle_workers: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.IdleWorkers.Auto || p.MaxIdleWorkers != 6 || p.ArrivalRateWindow.D() != 5*time.Minute || p.MaxJobsPerWorker != 1 {
		t.Errorf("pool %+v", p)
	}
	up, err := p.ScaleUp.Max.Limit(p.ScaleUp.Period)
	if err != nil || up != (policy.RateLimit{Percent: 50, Period: 30 * time.Second}) || p.ScaleUp.Cooldown.D() != 10*time.Second {
		t.Errorf("scale_up %+v -> %+v %v", p.ScaleUp, up, err)
	}
	down, err := p.ScaleDown.Max.Limit(p.ScaleDown.Period)
	if err != nil || down != (policy.RateLimit{Workers: 2, Period: time.Minute}) || p.ScaleDown.StabilizationWindow.D() != 5*time.Minute {
		t.Errorf("scale_down %+v -> %+v %v (period defaults to 1m)", p.ScaleDown, down, err)
	}
	ss, err := p.PolicySchedules()
	if err != nil || len(ss) != 2 {
		t.Fatalf("schedules %+v %v", ss, err)
	}
	office := ss[0]
	if office.Name != "office" || office.Location.String() != "Europe/Madrid" || office.Start != 8*time.Hour || office.End != 19*time.Hour ||
		*office.MinWorkers != 2 || !office.IdleAuto || office.Days != [7]bool{false, true, true, true, true, true, false} {
		t.Errorf("office %+v", office)
	}
	nights := ss[1]
	if nights.Days != [7]bool{time.Friday: true, time.Saturday: true} || nights.MinWorkers != nil || nights.IdleWorkers == nil || *nights.IdleWorkers != 0 || nights.IdleAuto {
		t.Errorf("weekend-nights %+v", nights)
	}
	if nights.Location != time.UTC {
		t.Errorf("no timezone: %v, want UTC", nights.Location)
	}
}

func TestPolicyKeysDefaults(t *testing.T) {
	p, err := v2Parse(t, v2Pool(""))
	if err != nil {
		t.Fatal(err)
	}
	d := config.PoolDefaults()
	if p.ScaleUp != d.ScaleUp || p.ScaleDown != d.ScaleDown || p.ScaleUp.Period.D() != time.Minute || p.ScaleUp.Max != "" || p.MaxJobsPerWorker != 0 || len(p.Schedules) != 0 {
		t.Errorf("defaults %+v", p)
	}
	if l, _ := p.ScaleUp.Max.Limit(p.ScaleUp.Period); l.Enabled() {
		t.Errorf("no max: the limit is enabled: %+v", l)
	}
}

func TestPolicyKeysFromTheEnvironment(t *testing.T) {
	p, err := v2Parse(t, v2Pool(""),
		"AUTOSCALER_POOLS_A_SCALE_UP_MAX=25%",
		"AUTOSCALER_POOLS_A_SCALE_DOWN_STABILIZATION_WINDOW=3m",
		"AUTOSCALER_POOLS_A_MAX_JOBS_PER_WORKER=10",
		`AUTOSCALER_POOLS_A_SCHEDULES=[{name: x, start: "09:00", end: "17:00", min_workers: 1}]`)
	if err != nil {
		t.Fatal(err)
	}
	if p.ScaleUp.Max != "25%" || p.ScaleDown.StabilizationWindow.D() != 3*time.Minute || p.MaxJobsPerWorker != 10 || len(p.Schedules) != 1 || *p.Schedules[0].MinWorkers != 1 {
		t.Errorf("pool %+v", p)
	}
	_, err = v2Parse(t, v2Pool(""), "AUTOSCALER_POOLS_A_SCALE_UP_MAX=lots")
	if err == nil || !strings.Contains(err.Error(), "scale_up.max") {
		t.Errorf("a bad step from the environment: %v", err)
	}
}

func TestPolicyKeyProblems(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want []string // substrings of the error
	}{
		{"step neither a count nor a percentage", `scale_up: {max: lots}`, []string{"scale_up.max", "such as 4"}},
		{"negative step", `scale_down: {max: -1}`, []string{"scale_down.max"}},
		{"scale-down percentage above 100", `scale_down: {max: "150%"}`, []string{"scale_down.max", "150% is more than 100%"}},
		{"a step as a list", `scale_up: {max: [1]}`, []string{"scale_up.max", "got a list"}},
		{"a limit without a period", `scale_up: {max: 3, period: 0}`, []string{"scale_up.period", "when scale_up.max is set"}},
		{"negative cooldown", `scale_down: {cooldown: -1s}`, []string{"scale_down.cooldown"}},
		{"negative window", `scale_down: {stabilization_window: -5m}`, []string{"scale_down.stabilization_window"}},
		{"unknown key under scale_up", `scale_up: {stabilization_window: 5m}`, []string{"scale_up.stabilization_window", "unknown key"}},
		{"negative max_jobs_per_worker", `max_jobs_per_worker: -1`, []string{"max_jobs_per_worker"}},
		{"max_idle_workers above max_workers", "max_workers: 3\nmax_idle_workers: 4", []string{"max_idle_workers", "above max_workers 3"}},
		{"bad day", `schedules: [{name: s, days: [funday], start: "08:00", end: "09:00", min_workers: 1}]`, []string{"schedules[0] (s).days", "funday"}},
		{"bad time", `schedules: [{days: [mon], start: "8am", end: "09:00", min_workers: 1}]`, []string{"schedules[0].start", "HH:MM"}},
		{"time past midnight", `schedules: [{start: "08:00", end: "24:30", min_workers: 1}]`, []string{"schedules[0].end"}},
		{"unknown zone", `schedules: [{start: "08:00", end: "09:00", timezone: Mars/Olympus, min_workers: 1}]`, []string{"schedules[0].timezone", "IANA"}},
		{"a schedule that changes nothing", `schedules: [{name: noop, start: "08:00", end: "09:00"}]`, []string{"schedules[0] (noop)", "changes nothing"}},
		{"schedule min above max", "max_workers: 3\nschedules: [{start: \"08:00\", end: \"09:00\", min_workers: 9}]", []string{"schedules[0].min_workers", "max_workers (3)"}},
		{"schedule idle_workers bad", `schedules: [{start: "08:00", end: "09:00", idle_workers: some}]`, []string{"idle_workers", "auto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v2Parse(t, v2Pool(tt.keys))
			if err == nil {
				t.Fatalf("no error for\n%s", v2Pool(tt.keys))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestScheduleDayRanges(t *testing.T) {
	for _, tt := range []struct {
		days []string
		want [7]bool
	}{
		{nil, [7]bool{}}, // every day
		{[]string{"sat-mon"}, [7]bool{time.Sunday: true, time.Monday: true, time.Saturday: true}},
		{[]string{"Monday", "wed"}, [7]bool{time.Monday: true, time.Wednesday: true}},
		{[]string{"sun-sat"}, [7]bool{true, true, true, true, true, true, true}},
	} {
		s, err := config.Schedule{Days: tt.days, Start: "00:00", End: "24:00"}.Policy()
		if err != nil || s.Days != tt.want || s.End != 24*time.Hour {
			t.Errorf("%v: %v %v", tt.days, s.Days, err)
		}
	}
}
