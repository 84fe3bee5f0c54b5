package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA zones; this works on images without /usr/share/zoneinfo

	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/policy"
)

// ScaleUp bounds how fast a pool grows (docs/policy.md).
type ScaleUp struct {
	// Max is at most N workers ("4") or P percent ("50%") added per Period;
	// empty or 0 for no limit.
	Max      ScaleStep `yaml:"max"`
	Period   Duration  `yaml:"period"`
	Cooldown Duration  `yaml:"cooldown"`
}

// ScaleDown bounds how fast a pool shrinks (docs/policy.md).
type ScaleDown struct {
	Max      ScaleStep `yaml:"max"`
	Period   Duration  `yaml:"period"`
	Cooldown Duration  `yaml:"cooldown"`
	// StabilizationWindow: shrink only to the highest desired count
	// recommended within this window (the Kubernetes HPA's).
	StabilizationWindow Duration `yaml:"stabilization_window"`
}

// Schedule overrides min_workers and idle_workers during a recurring
// window of wall-clock time (docs/policy.md). The last active one wins.
type Schedule struct {
	Name string `yaml:"name"`
	// Days the window starts on: mon, tue, ..., sun, or ranges such as
	// mon-fri; empty for every day.
	Days []string `yaml:"days"`
	// Start and End are HH:MM on the wall clock of Timezone; an End not
	// after Start ends the next day.
	Start    string `yaml:"start"`
	End      string `yaml:"end"`
	Timezone string `yaml:"timezone"` // IANA name such as Europe/Madrid; UTC if empty
	// MinWorkers and IdleWorkers replace the pool's while active.
	MinWorkers  *int         `yaml:"min_workers"`
	IdleWorkers *IdleWorkers `yaml:"idle_workers"`
}

// ScaleStep is a number of workers ("4") or a percentage ("50%").
type ScaleStep string

// Parse returns the workers or the percentage; both 0 for no limit.
func (s ScaleStep) Parse() (workers, percent int, err error) {
	v := strings.TrimSpace(string(s))
	if v == "" {
		return 0, 0, nil
	}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, fmt.Errorf("invalid percentage %q: write a whole number of percent from 1 to 1000, such as 50%%", v)
		}
		return 0, n, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("invalid step %q: write a number of workers such as 4, or a percentage such as 50%%", v)
	}
	return n, 0, nil
}

// UnmarshalYAML accepts a whole number or a percentage.
func (s *ScaleStep) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a number of workers such as 4 or a percentage such as 50%%, got a %s", kindName(n))
	}
	v := ScaleStep(n.Value)
	if _, _, err := v.Parse(); err != nil {
		return err
	}
	*s = v
	return nil
}

// Limit is the rate limit for the policy.
func (s ScaleStep) Limit(period Duration) (policy.RateLimit, error) {
	w, p, err := s.Parse()
	return policy.RateLimit{Workers: w, Percent: p, Period: period.D()}, err
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func weekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > 3 {
		for name, d := range weekdays {
			if strings.EqualFold(s, d.String()) {
				return weekdays[name], true
			}
		}
		return 0, false
	}
	d, ok := weekdays[s]
	return d, ok
}

// wallClock parses HH:MM (00:00 to 24:00) as an offset from midnight.
func wallClock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("invalid time %q: write HH:MM from 00:00 to 24:00, such as 08:30", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// keyError is a problem with one key, named relative to the value
// checked (a schedule's "days"), so the caller can prefix its own path.
type keyError struct{ key, msg string }

func (e keyError) Error() string { return e.key + ": " + e.msg }

// Policy converts the schedule for the policy; the error lists every
// problem, keyed from the schedule ("days: ...").
func (s Schedule) Policy() (policy.Schedule, error) {
	out, problems := s.convert()
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return out, errors.Join(errs...)
}

func (s Schedule) convert() (policy.Schedule, []keyError) {
	out := policy.Schedule{Name: s.Name, MinWorkers: s.MinWorkers}
	var problems []keyError
	for _, d := range s.Days {
		from, to, isRange := strings.Cut(d, "-")
		a, ok1 := weekday(from)
		b, ok2 := a, true
		if isRange {
			b, ok2 = weekday(to)
		}
		if !ok1 || !ok2 {
			problems = append(problems, keyError{"days", fmt.Sprintf("%q is not a day: use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri", d)})
			continue
		}
		for x := a; ; x = (x + 1) % 7 {
			out.Days[x] = true
			if x == b {
				break
			}
		}
	}
	var err error
	if out.Start, err = wallClock(s.Start); err != nil {
		problems = append(problems, keyError{"start", err.Error()})
	}
	if out.End, err = wallClock(s.End); err != nil {
		problems = append(problems, keyError{"end", err.Error()})
	}
	out.Location = time.UTC
	if s.Timezone != "" {
		if out.Location, err = time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
			out.Location = time.UTC
			problems = append(problems, keyError{"timezone", fmt.Sprintf("%q is not an IANA time zone name such as Europe/Madrid or America/New_York", s.Timezone)})
		}
	}
	if w := s.IdleWorkers; w != nil {
		if w.Auto {
			out.IdleAuto = true
		} else {
			c := w.Count
			out.IdleWorkers = &c
		}
	}
	return out, problems
}

// PolicySchedules converts the pool's schedules, with every problem keyed
// from the pool ("schedules[0] (office).days: ...").
func (p Pool) PolicySchedules() ([]policy.Schedule, error) {
	out := make([]policy.Schedule, 0, len(p.Schedules))
	var errs []error
	for i, s := range p.Schedules {
		ps, problems := s.convert()
		for _, e := range problems {
			errs = append(errs, fmt.Errorf("%s.%s: %s", scheduleKey("schedules", i, s), e.key, e.msg))
		}
		out = append(out, ps)
	}
	return out, errors.Join(errs...)
}

// scheduleKey names schedule i under key, with its name when it has one.
func scheduleKey(key string, i int, s Schedule) string {
	if s.Name != "" {
		return fmt.Sprintf("%s[%d] (%s)", key, i, s.Name)
	}
	return fmt.Sprintf("%s[%d]", key, i)
}

// validateWaits checks the wait targets and the idle hold.
func (p *Pool) validateWaits(v *validator, key string) {
	if !p.IdleTimeout.Auto && p.IdleTimeout.Value < 0 {
		v.add(key+".idle_timeout", "must be 0 (stop at once), a positive duration or auto (got %s)", p.IdleTimeout)
	}
	if p.IdleTimeoutMin < 0 {
		v.add(key+".idle_timeout_min", "must be 0 or a positive duration (got %s)", p.IdleTimeoutMin)
	}
	if p.IdleTimeoutMax <= 0 {
		v.add(key+".idle_timeout_max", "must be a positive duration such as 10m (got %s)", p.IdleTimeoutMax)
	} else if p.IdleTimeoutMin > p.IdleTimeoutMax {
		v.add(key+".idle_timeout_min", "%s is above idle_timeout_max %s: lower idle_timeout_min or raise idle_timeout_max", p.IdleTimeoutMin, p.IdleTimeoutMax)
	}
	if !p.TargetWaitP95.Auto && p.TargetWaitP95.Value <= 0 {
		v.add(key+".target_wait_p95", "must be a positive duration such as 10s, or auto (one measured boot time); got %s", p.TargetWaitP95)
	}
	if p.TargetWaitP99 < 0 {
		v.add(key+".target_wait_p99", "must be 0 (none) or a positive duration such as 30s (got %s)", p.TargetWaitP99)
	}
	if p95 := p.TargetWaitP95; !p95.Auto && p95.Value > 0 && p.TargetWaitP99 > 0 && p.TargetWaitP99 < p95.Value {
		v.add(key+".target_wait_p99", "%s is below target_wait_p95 %s: the 99th percentile of waits cannot be shorter than the 95th; raise target_wait_p99", p.TargetWaitP99, p95.Value)
	}
	explicit := (!p.TargetWaitP95.Auto && p.TargetWaitP95.Value > 0) || p.TargetWaitP99 > 0
	if explicit && !p.IdleWorkers.Auto {
		v.add(key+".idle_workers", "is %d, a fixed buffer, so the wait targets (target_wait_p95, target_wait_p99) are not used: set idle_workers: auto for the targets, or remove them", p.IdleWorkers.Count)
	}
}

// validatePolicy checks the policy v2 keys of a pool.
func (p *Pool) validatePolicy(v *validator, key string) {
	if p.MaxJobsPerWorker < 0 {
		v.add(key+".max_jobs_per_worker", "must be 0 (no limit) or more (got %d)", p.MaxJobsPerWorker)
	}
	if p.ArrivalRateWindow < 0 {
		v.add(key+".arrival_rate_window", "must be 0 (the default, 10m) or a positive duration (got %s)", p.ArrivalRateWindow)
	}
	if p.MaxIdleWorkers > p.MaxWorkers && p.MaxWorkers > 0 {
		v.add(key+".max_idle_workers", "%d is above max_workers %d", p.MaxIdleWorkers, p.MaxWorkers)
	}
	step := func(k string, s ScaleStep, period, cooldown Duration, maxPercent int) {
		w, pct, err := s.Parse()
		if err != nil {
			v.add(k+".max", "%v", err)
		} else if pct > maxPercent {
			v.add(k+".max", "%d%% is more than %d%%", pct, maxPercent)
		}
		if (w > 0 || pct > 0) && period <= 0 {
			v.add(k+".period", "must be a positive duration such as 1m when %s.max is set (got %s)", k[strings.LastIndex(k, ".")+1:], period)
		}
		if cooldown < 0 {
			v.add(k+".cooldown", "must be 0 (none) or a positive duration (got %s)", cooldown)
		}
	}
	step(key+".scale_up", p.ScaleUp.Max, p.ScaleUp.Period, p.ScaleUp.Cooldown, 1000)
	step(key+".scale_down", p.ScaleDown.Max, p.ScaleDown.Period, p.ScaleDown.Cooldown, 100)
	if p.ScaleDown.StabilizationWindow < 0 {
		v.add(key+".scale_down.stabilization_window", "must be 0 (none) or a positive duration such as 5m (got %s)", p.ScaleDown.StabilizationWindow)
	}
	for i, s := range p.Schedules {
		k := scheduleKey(key+".schedules", i, s)
		_, problems := s.convert()
		for _, e := range problems {
			v.add(k+"."+e.key, "%s", e.msg)
		}
		if s.MinWorkers != nil && (*s.MinWorkers < 0 || *s.MinWorkers > p.MaxWorkers) {
			v.add(k+".min_workers", "must be between 0 and max_workers (%d) (got %d)", p.MaxWorkers, *s.MinWorkers)
		}
		if w := s.IdleWorkers; w != nil && !w.Auto && (w.Count < 0 || w.Count > p.MaxWorkers) {
			v.add(k+".idle_workers", "must be between 0 and max_workers (%d), or auto (got %d)", p.MaxWorkers, w.Count)
		}
		if s.MinWorkers == nil && s.IdleWorkers == nil {
			v.add(k, "sets neither min_workers nor idle_workers, so it changes nothing")
		}
	}
}
