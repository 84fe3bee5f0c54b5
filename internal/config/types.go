package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "30s", "5m", "1h30m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration strings; a bare 0 is allowed too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as 30s, got a %s", kindName(n))
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q: write a number with a unit, such as 30s, 5m or 1h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes written as a number or with a unit suffix
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "1GiB", "512MB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return 0, fmt.Errorf("invalid size %q: write a whole number of bytes or use a unit such as 512MiB or 1GiB", orig)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML accepts sizes with units.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as 1GiB, got a %s", kindName(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Secret is a string that never prints: fmt, zerolog and JSON all see
// "[redacted]".
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the secret from %#v too.
func (s Secret) GoString() string { return s.String() }

// Format hides the secret from every fmt verb: without it, verbs that do
// not call String (%d, %t, %c, ...) print the value itself.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(s.String()))
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalJSON hides the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalYAML hides the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// AutoDuration is a duration, or "auto" to let the policy choose it from
// what it measures (idle_timeout, target_wait_p95).
type AutoDuration struct {
	Auto  bool
	Value Duration
}

// Auto is the value "auto".
var Auto = AutoDuration{Auto: true}

// Fixed is a duration that is not auto.
func Fixed(d time.Duration) AutoDuration { return AutoDuration{Value: Duration(d)} }

func (a AutoDuration) String() string {
	if a.Auto {
		return "auto"
	}
	return a.Value.String()
}

// UnmarshalYAML accepts "auto" or a duration.
func (a *AutoDuration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		*a = Auto
		return nil
	}
	var d Duration
	if err := d.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("%w, or auto", err)
	}
	*a = AutoDuration{Value: d}
	return nil
}

// MarshalYAML writes "auto" or the duration.
func (a AutoDuration) MarshalYAML() (any, error) { return a.String(), nil }

// IdleWorkers is the warm buffer size: a count, or "auto" to size it for
// the pool's wait targets.
type IdleWorkers struct {
	Auto  bool
	Count int
}

func (w IdleWorkers) String() string {
	if w.Auto {
		return "auto"
	}
	return strconv.Itoa(w.Count)
}

// UnmarshalYAML accepts a whole number or "auto".
func (w *IdleWorkers) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		*w = IdleWorkers{Auto: true}
		return nil
	}
	var c int
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a whole number or \"auto\", got a %s", kindName(n))
	}
	// Only an integer: yaml.v3 would truncate 2.5 to 2.
	if n.ShortTag() != "!!int" || n.Decode(&c) != nil {
		return fmt.Errorf("expected a whole number or \"auto\", got %q", n.Value)
	}
	*w = IdleWorkers{Count: c}
	return nil
}

// MarshalYAML writes the count or "auto".
func (w IdleWorkers) MarshalYAML() (any, error) {
	if w.Auto {
		return "auto", nil
	}
	return w.Count, nil
}

// UnmarshalYAML starts every pool from PoolDefaults so that a key left out
// of one pool keeps its default.
func (p *Pool) UnmarshalYAML(n *yaml.Node) error {
	type plain Pool
	v := plain(PoolDefaults())
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = Pool(v)
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}
