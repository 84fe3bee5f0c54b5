package config

import (
	"fmt"
	"strings"

	"github.com/hodei/hodei-autoscaler/internal/routing"
)

// Input formats.
const (
	// FormatCloudEvents is the daemon's own contract (docs/events.md), in
	// structured or binary CloudEvents mode, read from HODEI_JOBS.
	FormatCloudEvents = "cloudevents"
	// FormatHodeiJobs is the Hodei scheduler's own event stream
	// (HODEI_EVENTS), sourced into a stream of the daemon's own.
	FormatHodeiJobs = "hodei-jobs"
)

// DefaultHodeiStream is the stream the Hodei server publishes its events to.
const DefaultHodeiStream = "HODEI_EVENTS"

// Input is one source of job events. Without an inputs list the daemon
// reads its own contract alone, as before inputs existed.
type Input struct {
	// Name names the input in logs and, for hodei-jobs, the daemon's own
	// stream (HODEI_AUTOSCALER_<NAME>). Default: the format.
	Name   string `yaml:"name"`
	Format string `yaml:"format"`
	// Subjects filter what is read. cloudevents: under <prefix>.jobs.
	// (default <prefix>.jobs.>); hodei-jobs: under hodei.events. (default
	// hodei.events.jobs.> and hodei.events.workers.workerheartbeat, the
	// workers' own word on the job they run).
	Subjects []string `yaml:"subjects"`
	// Stream is the Hodei server's stream (hodei-jobs only; default
	// HODEI_EVENTS).
	Stream string `yaml:"stream"`
	// Routes and DefaultPool map jobs to pools (internal/routing). A
	// hodei-jobs input needs at least one of them: Hodei's events name no
	// pool.
	Routes      []routing.Rule `yaml:"routes"`
	DefaultPool string         `yaml:"default_pool"`
}

// Router is the input's routing rules.
func (in Input) Router() routing.Router {
	return routing.Router{Rules: in.Routes, Default: in.DefaultPool}
}

// InputList is the inputs in force: the configured ones with defaults
// filled in, or the own contract alone.
func (c *Config) InputList() []Input {
	if len(c.Inputs) == 0 {
		return []Input{{Name: FormatCloudEvents, Format: FormatCloudEvents, Subjects: []string{c.NATS.SubjectPrefix + ".jobs.>"}}}
	}
	out := make([]Input, len(c.Inputs))
	for i, in := range c.Inputs {
		if in.Name == "" {
			in.Name = in.Format
		}
		switch in.Format {
		case FormatCloudEvents:
			if len(in.Subjects) == 0 {
				in.Subjects = []string{c.NATS.SubjectPrefix + ".jobs.>"}
			}
		case FormatHodeiJobs:
			if len(in.Subjects) == 0 {
				in.Subjects = []string{"hodei.events.jobs.>", "hodei.events.workers.workerheartbeat"}
			}
			if in.Stream == "" {
				in.Stream = DefaultHodeiStream
			}
		}
		out[i] = in
	}
	return out
}

func (c *Config) validateInputs(v *validator) {
	pools := make([]string, 0, len(c.Pools))
	for _, p := range c.Pools {
		pools = append(pools, p.Name)
	}
	names := map[string]bool{}
	for i, in := range c.InputList() {
		key := fmt.Sprintf("inputs[%d]", i)
		if !labelValueRE.MatchString(in.Name) {
			v.add(key+".name", "must be 1-63 letters, digits, '-', '_' or '.' (got %q)", in.Name)
		}
		if names[strings.ToUpper(in.Name)] {
			v.add(key+".name", "%q is used by another input: give each input its own name", in.Name)
		}
		names[strings.ToUpper(in.Name)] = true
		var under string
		switch in.Format {
		case FormatCloudEvents:
			under = c.NATS.SubjectPrefix + ".jobs."
			if in.Stream != "" {
				v.add(key+".stream", "only a hodei-jobs input reads another stream; a cloudevents input reads %s", "HODEI_JOBS")
			}
		case FormatHodeiJobs:
			under = "hodei.events."
			if len(in.Routes) == 0 && in.DefaultPool == "" {
				v.add(key, "a hodei-jobs input needs routes or a default_pool: Hodei's events name no pool")
			}
		default:
			v.add(key+".format", "must be %s or %s (got %q)", FormatCloudEvents, FormatHodeiJobs, in.Format)
			continue
		}
		for j, s := range in.Subjects {
			if !strings.HasPrefix(s, under) || strings.Contains(s, " ") || strings.HasSuffix(s, ".") {
				v.add(fmt.Sprintf("%s.subjects[%d]", key, j), "%q must be a NATS subject under %s", s, under)
			}
		}
		for _, err := range in.Router().Validate(key, pools) {
			v.problems = append(v.problems, err)
		}
	}
}
