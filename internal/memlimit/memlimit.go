// Package memlimit chooses the Go runtime's soft memory limit (the knob
// GOMEMLIMIT sets) for the daemon. With the embedded NATS server the bus's
// block caches and de-duplication index live in the daemon's process, and
// without a limit the Go heap grows to twice its live size before a
// collection: the limit is what keeps the whole process within a budget.
//
// The choice, first that applies:
//
//  1. memory_limit set in the config (> 0): that;
//  2. GOMEMLIMIT set in the environment (including GOMEMLIMIT=off): the
//     runtime has already applied it, nothing is changed;
//  3. the process's cgroup has a memory limit (v2 memory.max, v1
//     memory.limit_in_bytes): CgroupPercent of it;
//  4. otherwise Default.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Default is the soft limit when neither the config, GOMEMLIMIT nor a
// cgroup says otherwise: it keeps a daemon with the embedded server
// holding 100,000 pending jobs and 10,000 workers, or a flood of 200,000
// queued events, under 200 MB resident (BENCHMARKS.md, row 5b). A soft
// limit is not a cap: a daemon whose live state needs more grows past it,
// collecting more often (the runtime bounds that to about half a core);
// set memory_limit higher for larger installations.
const Default = 150 << 20

// CgroupPercent is the share of a cgroup's memory limit given to the Go
// runtime; the rest is headroom for memory the runtime does not count
// (the binary's text, thread stacks outside Go, page cache charged to the
// cgroup).
const CgroupPercent = 90

// minLimit is the smallest limit chosen from a cgroup: below it the
// daemon could not run its own baseline (about 32 MB) with headroom.
const minLimit = 32 << 20

// Source says where a Choice came from.
type Source string

// Sources of a Choice.
const (
	FromConfig Source = "memory_limit"
	FromEnv    Source = "GOMEMLIMIT"
	FromCgroup Source = "cgroup"
	FromConst  Source = "default"
)

// Choice is the limit to set (0 with FromEnv: keep the runtime's) and why.
type Choice struct {
	Limit  int64
	Source Source
	Cgroup int64 // the cgroup's limit that was seen, 0 if none
}

// Choose applies the rules of the package comment. configured is
// memory_limit (0: not set), env the GOMEMLIMIT variable ("" if unset),
// cgroup the cgroup's memory limit in bytes (0: none).
func Choose(configured int64, env string, cgroup int64) Choice {
	switch {
	case configured > 0:
		return Choice{Limit: configured, Source: FromConfig, Cgroup: cgroup}
	case strings.TrimSpace(env) != "":
		return Choice{Source: FromEnv, Cgroup: cgroup}
	case cgroup > 0:
		return Choice{Limit: max(cgroup/100*CgroupPercent, minLimit), Source: FromCgroup, Cgroup: cgroup}
	default:
		return Choice{Limit: Default, Source: FromConst}
	}
}

// unlimited is the value above which a cgroup v1 limit means none (the
// kernel reports the largest page-aligned int64).
const unlimited = 1 << 62

// ParseCgroup reads a cgroup memory limit file's content: v2's
// memory.max ("max" or bytes) or v1's memory.limit_in_bytes (bytes, a
// huge number meaning none). It returns 0 for no limit.
func ParseCgroup(content string) (int64, error) {
	s := strings.TrimSpace(content)
	if s == "" || s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup memory limit %q: %w", s, err)
	}
	if n <= 0 || n >= unlimited {
		return 0, nil
	}
	return n, nil
}

// CgroupFiles are where the process's cgroup memory limit is read, v2
// first (inside a container the cgroup namespace puts the container's own
// cgroup at /sys/fs/cgroup).
func CgroupFiles() []string {
	return []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
}

// ReadCgroup returns the first limit found in files (0: none).
func ReadCgroup(files []string) (int64, error) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", f, err)
		}
		n, err := ParseCgroup(string(b))
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", f, err)
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, nil
}

// Apply chooses the limit for configured (memory_limit) from this
// process's environment and cgroup, sets it, and returns the choice. A
// cgroup that cannot be read counts as none (the error is returned with
// the choice, for the log).
func Apply(configured int64) (Choice, error) {
	cg, err := ReadCgroup(CgroupFiles())
	c := Choose(configured, os.Getenv("GOMEMLIMIT"), cg)
	if c.Limit > 0 {
		debug.SetMemoryLimit(c.Limit)
	}
	return c, err
}
