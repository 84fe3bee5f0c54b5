package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "AUTOSCALER_"

// Load reads path, applies defaults and environment overrides from environ
// (os.Environ() in the daemon) and validates the result. The returned error
// lists every problem found, one per line.
func Load(path string, environ []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, environ)
}

// Parse is Load on bytes already read.
//
// Every problem is reported at once: a value of the wrong type is reported
// and then treated as left out (its default), so the overrides and the
// validation still run; a validation problem of a key already reported is
// left out, as it only repeats it.
func Parse(data []byte, environ []string) (Config, error) {
	cfg, d, err := decode(data)
	if err != nil {
		return Config{}, err
	}
	problems := d.problems
	if err := applyEnv(&cfg, environ); err != nil {
		problems = append(problems, err)
	}
	for i := range cfg.Pools {
		cfg.Pools[i].applyTiers()
	}
	v := &validator{}
	cfg.validate(v)
	for _, p := range v.problems {
		if !d.covers(p) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return cfg, nil
}

// decode parses YAML on top of the defaults. Problems with single keys
// (unknown keys, wrong types, keys given twice), each naming its line and
// key path, are in the checker; the error is for a file that cannot be read
// as a config at all.
func decode(data []byte) (Config, *checker, error) {
	cfg := Defaults()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, nil, errEmpty
		}
		return Config{}, nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	if len(root.Content) == 0 || isNull(root.Content[0]) {
		return Config{}, nil, errEmpty
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return Config{}, nil, fmt.Errorf("line %d: config must be a mapping of keys (name, nats, pools, ...), got a %s", doc.Line, kindName(doc))
	}
	joinURLList(doc)
	c := &checker{seen: map[visit]bool{}, reported: map[string]bool{}}
	// A second document (after ---) would be ignored silently.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return Config{}, nil, fmt.Errorf("config is not valid YAML: %w", err)
	case len(extra.Content) > 0 && !isNull(extra.Content[0]):
		c.problems = append(c.problems, fmt.Errorf("line %d: a second YAML document (after ---) would be ignored: a config is one document, so merge them or remove the ---", extra.Content[0].Line))
	}
	c.check(doc, reflect.TypeOf(cfg), "")
	c.clearBad()
	// The checker has seen every key and leaf and cleared the bad ones;
	// what is left for yaml.v3 to report is rare (excessive aliasing).
	if err := root.Decode(&cfg); err != nil {
		return Config{}, nil, errors.Join(append(c.problems, yamlError(err))...)
	}
	return cfg, c, nil
}

var errEmpty = errors.New("config is empty: it needs at least one pool under pools")

// yamlError flattens yaml.v3's multi-line TypeError into one error per line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, errors.New(strings.TrimPrefix(e, "yaml: ")))
		}
		return errors.Join(errs...)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	poolType        = reflect.TypeFor[Pool]()
	tierType        = reflect.TypeFor[Tier]()
)

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// checker walks the YAML tree beside the Go type before anything is decoded
// and reports, each with its line and key path: keys the type does not have
// (yaml.v3's strict mode does not reach inside types with custom
// unmarshalers such as Pool), keys given twice, and values of the wrong
// shape or type (yaml.v3 names neither the key nor, for custom types, the
// line, and stops at the first custom-type error).
type checker struct {
	problems []error
	// seen makes the walk linear: an alias (or a merge) of a node that was
	// already checked as the same type is not walked again, however often
	// it is referenced.
	seen map[visit]bool
	// bad are values of the wrong shape or type, cleared to null (the
	// default) before decoding; reported are their key paths.
	bad      []*yaml.Node
	reported map[string]bool
	// drops are mapping entries (keys given twice, non-scalar keys) removed
	// before decoding, as yaml.v3 would fail on them.
	drops map[*yaml.Node][]int
}

type visit struct {
	n *yaml.Node
	t reflect.Type
}

func (c *checker) addf(n *yaml.Node, path, format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf("line %d: %s: %s", n.Line, displayPath(path), fmt.Sprintf(format, args...)))
}

// badValue reports a value of the wrong shape or type and marks it to be
// cleared, so the rest of the file is still decoded and validated.
func (c *checker) badValue(n *yaml.Node, path, format string, args ...any) {
	c.addf(n, path, format, args...)
	c.bad = append(c.bad, n)
	c.reported[path] = true
}

// clearBad turns the bad values into nulls and removes the dropped mapping
// entries, so yaml.v3 decodes the rest.
func (c *checker) clearBad() {
	for _, n := range c.bad {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	for m, keys := range c.drops {
		content := make([]*yaml.Node, 0, len(m.Content))
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !slices.Contains(keys, i) {
				content = append(content, m.Content[i], m.Content[i+1])
			}
		}
		m.Content = content
	}
}

// covers reports whether a validation problem is about a key whose value
// was already reported (and cleared to its default).
func (c *checker) covers(p error) bool {
	key, _, ok := strings.Cut(p.Error(), ": ")
	if !ok {
		return false
	}
	for {
		if c.reported[key] {
			return true
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return false
		}
		key = key[:i]
	}
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if c.seen[visit{n, t}] {
		return
	}
	c.seen[visit{n, t}] = true
	if isNull(n) {
		return // an empty value keeps the default
	}
	switch {
	case t.Kind() == reflect.Struct && (t == poolType || t == tierType || !reflect.PointerTo(t).Implements(unmarshalerType)):
		if n.Kind != yaml.MappingNode {
			c.badValue(n, path, "expected a mapping of keys, got a %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		c.mapping(n, path, func(k, v *yaml.Node) {
			f, ok := fields[k.Value]
			if !ok {
				c.addf(k, joinPath(path, k.Value), "unknown key%s", suggest(k.Value, fields))
				return
			}
			c.check(v, f.Type, joinPath(path, k.Value))
		}, func(v *yaml.Node) { c.check(v, t, path) })
	case t.Kind() == reflect.Slice && !reflect.PointerTo(t).Implements(unmarshalerType):
		if n.Kind != yaml.SequenceNode {
			c.badValue(n, path, "expected a list such as [a, b], got a %s", kindName(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), elemPath(path, i, e, t.Elem()))
		}
	case t.Kind() == reflect.Map && !reflect.PointerTo(t).Implements(unmarshalerType):
		if n.Kind != yaml.MappingNode {
			c.badValue(n, path, "expected a mapping of keys, got a %s", kindName(n))
			return
		}
		c.mapping(n, path, func(k, v *yaml.Node) {
			c.check(v, t.Elem(), joinPath(path, k.Value))
		}, func(v *yaml.Node) { c.check(v, t, path) })
	default:
		c.leaf(n, t, path)
	}
}

// mapping calls field for each key of a mapping node and merge for each
// merged value (<<: *alias, <<: [*a, *b]); it reports keys given twice.
func (c *checker) mapping(n *yaml.Node, path string, field func(k, v *yaml.Node), merge func(v *yaml.Node)) {
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{v}
			if m := resolve(v); m.Kind == yaml.SequenceNode {
				merged = m.Content
			}
			ok := true
			for _, e := range merged {
				if resolve(e).Kind != yaml.MappingNode {
					ok = false
				}
			}
			if !ok {
				c.addf(v, joinPath(path, "<<"), "a merge takes a mapping or a list of mappings, such as <<: *defaults")
				c.drop(n, i)
				continue
			}
			for _, e := range merged {
				merge(e)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.addf(k, path, "a key must be a plain name, got a %s", kindName(k))
			c.drop(n, i)
			continue
		}
		if line, dup := first[k.Value]; dup {
			c.addf(k, joinPath(path, k.Value), "given twice (first on line %d): keep one", line)
			c.drop(n, i)
			continue
		}
		first[k.Value] = k.Line
		field(k, v)
	}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func (c *checker) drop(m *yaml.Node, i int) {
	if c.drops == nil {
		c.drops = map[*yaml.Node][]int{}
	}
	c.drops[m] = append(c.drops[m], i)
}

// elemPath names a list element; one with a name (a pool, a schedule) is
// named as validation names it, "pools[0] (linux)".
func elemPath(path string, i int, e *yaml.Node, t reflect.Type) string {
	p := fmt.Sprintf("%s[%d]", path, i)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	e = resolve(e)
	if t.Kind() != reflect.Struct || e.Kind != yaml.MappingNode {
		return p
	}
	if _, named := yamlFields(t)["name"]; !named {
		return p
	}
	for j := 0; j+1 < len(e.Content); j += 2 {
		if k, v := e.Content[j], e.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" && !isNull(v) {
			return fmt.Sprintf("%s (%s)", p, v.Value)
		}
	}
	return p
}

// leaf decodes a value on its own to report a wrong type with its key.
func (c *checker) leaf(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		if fractional(n, t) {
			c.badValue(n, path, "expected %s, got %q", describe(t), n.Value)
		}
		return
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A custom type's own message (durations, sizes, idle_workers).
		c.badValue(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	if t.Kind() == reflect.Interface { // free-form YAML (pod_template): yaml.v3's own words
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = lineRE.ReplaceAllString(e, "")
		}
		c.badValue(n, path, "%s", strings.Join(msgs, "; "))
		return
	}
	got := "a " + kindName(n)
	if n.Kind == yaml.ScalarNode {
		got = strconv.Quote(n.Value)
	}
	c.badValue(n, path, "expected %s, got %s", describe(t), got)
}

// fractional reports whether n is a number with a fraction going into a
// whole-number type, which yaml.v3 would truncate silently (2.5 -> 2).
func fractional(n *yaml.Node, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return false
	}
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!float" {
		return false
	}
	var f float64
	return n.Decode(&f) != nil || f != math.Trunc(f)
}

// describe says in words what a value of type t looks like.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a text value"
	case reflect.Slice:
		return "a list such as [a, b]"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys"
	}
	return "a value of type " + t.String()
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

// suggest names the closest known key, for typos.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return " (known keys: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var (
	envNameRE = regexp.MustCompile(`[^A-Z0-9]+`)
	lineRE    = regexp.MustCompile(`^line \d+: `)
)

// EnvName is the environment variable that overrides a key path such as
// "nats.url" (AUTOSCALER_NATS_URL). Pools are addressed by name:
// pools[name=linux-small].max_workers is AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS.
func EnvName(parts ...string) string {
	// A new slice: the caller's parts (a variadic slice may be theirs) stay as they are.
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = strings.Trim(envNameRE.ReplaceAllString(strings.ToUpper(p), "_"), "_")
	}
	return EnvPrefix + strings.Join(names, "_")
}

// applyEnv overrides leaves from AUTOSCALER_* variables. The value is read
// as YAML, so lists and maps can be given in flow style (["a","b"]).
// Unknown AUTOSCALER_* variables are errors, so a typo does not pass
// silently, and so is a variable that names two keys (pools "default" and
// "default_max" both spell AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS): it
// is applied to neither.
func applyEnv(cfg *Config, environ []string) error {
	env := autoscalerEnv(environ)
	if len(env) == 0 {
		return nil
	}
	leaves := envLeaves(cfg)
	var problems []error
	for key, raw := range env {
		switch ls := leaves[key]; {
		case len(ls) == 0 && !ignoredEnv[key]:
			problems = append(problems, fmt.Errorf("%s: no config key has this name; see config.example.yaml for the keys (pools are addressed by name, e.g. %s)", key, EnvName("pools", "default", "max_workers")))
		case len(ls) > 1:
			paths := make([]string, len(ls))
			for i, l := range ls {
				paths[i] = l.path
			}
			problems = append(problems, fmt.Errorf("%s: names %s at once, so it is applied to neither: set the key in the config file instead, or rename a pool so that no pool name and key spell another's", key, strings.Join(paths, " and ")))
		case len(ls) == 1:
			if err := setFromEnv(ls[0].v, raw); err != nil {
				problems = append(problems, fmt.Errorf("%s (from %s): %w", ls[0].path, key, err))
			}
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return errors.Join(problems...)
}

// autoscalerEnv picks the AUTOSCALER_* variables out of environ.
func autoscalerEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	return env
}

// envLeaf is a config key that an environment variable overrides.
type envLeaf struct {
	path string        // as validation names it: pools[default].max_workers
	v    reflect.Value // the field, settable
}

// envLeaves maps every variable name to the keys it spells: one, unless
// pool names make two keys spell the same name.
func envLeaves(cfg *Config) map[string][]envLeaf {
	leaves := map[string][]envLeaf{}
	var walk func(v reflect.Value, names []string, path string)
	walk = func(v reflect.Value, names []string, path string) {
		t := v.Type()
		if t.Kind() != reflect.Struct || (t != poolType && reflect.PointerTo(t).Implements(unmarshalerType)) {
			name := EnvName(names...)
			leaves[name] = append(leaves[name], envLeaf{path, v})
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fv := v.Field(i)
			if f.Type != reflect.TypeFor[[]Pool]() {
				walk(fv, append(slices.Clone(names), name), joinPath(path, name))
				continue
			}
			for j := range fv.Len() {
				p := fv.Index(j)
				pname := p.FieldByName("Name").String()
				walk(p, append(slices.Clone(names), name, pname), fmt.Sprintf("pools[%s]", pname))
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil, "")
	return leaves
}

// setFromEnv sets v from a variable's value: strings verbatim (passwords
// and URLs need no YAML quoting), everything else read as YAML.
func setFromEnv(v reflect.Value, raw string) error {
	t := v.Type()
	if t.Kind() == reflect.String {
		v.SetString(raw)
		return nil
	}
	target := reflect.New(t)
	if t.Kind() == reflect.Pointer {
		target = reflect.New(t.Elem())
	}
	var node yaml.Node
	if yaml.Unmarshal([]byte(raw), &node) == nil && len(node.Content) > 0 && fractional(node.Content[0], t) {
		return fmt.Errorf("expected %s, got %q", describe(t), raw)
	}
	if err := yaml.Unmarshal([]byte(raw), target.Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && t.Kind() != reflect.Interface {
			return fmt.Errorf("expected %s, got %q", describe(t), raw)
		}
		return yamlError(err)
	}
	if t.Kind() == reflect.Pointer {
		v.Set(target)
	} else {
		v.Set(target.Elem())
	}
	return nil
}

// ignoredEnv are AUTOSCALER_* variables that are not config keys.
var ignoredEnv = map[string]bool{"AUTOSCALER_CONFIG": true}
