package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
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
func Parse(data []byte, environ []string) (Config, error) {
	cfg, err := decode(data)
	if err != nil {
		return Config{}, err
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decode parses YAML on top of the defaults and rejects unknown keys,
// naming the line and the key path.
func decode(data []byte) (Config, error) {
	cfg := Defaults()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("config is empty: it needs at least one pool under pools")
		}
		return Config{}, fmt.Errorf("config is not valid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return Config{}, errors.New("config is empty: it needs at least one pool under pools")
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("line %d: config must be a mapping of keys (name, nats, pools, ...), got a %s", doc.Line, kindName(doc))
	}
	var problems []error
	checkKnown(doc, reflect.TypeOf(cfg), "", &problems)
	if err := root.Decode(&cfg); err != nil {
		problems = append(problems, yamlError(err))
	}
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return cfg, nil
}

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

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKnown walks the YAML tree beside the Go type and reports keys that
// the type does not have. yaml.v3's own strict mode does not reach inside
// types with custom unmarshalers (Pool), so this does it for all of them.
func checkKnown(n *yaml.Node, t reflect.Type, path string, problems *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			// Scalars with custom decoders (IdleWorkers) report their own errors.
			if !reflect.PointerTo(t).Implements(unmarshalerType) {
				*problems = append(*problems, fmt.Errorf("line %d: %s: expected a mapping of keys, got a %s", n.Line, displayPath(path), kindName(n)))
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // merge key
				checkKnown(v, t, path, problems)
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, fmt.Errorf("line %d: %s: unknown key%s", k.Line, joinPath(path, k.Value), suggest(k.Value, fields)))
				continue
			}
			checkKnown(v, f.Type, joinPath(path, k.Value), problems)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return // decode reports the type mismatch
		}
		for i, c := range n.Content {
			checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode || t.Elem().Kind() == reflect.Interface {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKnown(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), problems)
		}
	}
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

var envNameRE = regexp.MustCompile(`[^A-Z0-9]+`)

// EnvName is the environment variable that overrides a key path such as
// "nats.url" (AUTOSCALER_NATS_URL). Pools are addressed by name:
// pools[name=linux-small].max_workers is AUTOSCALER_POOLS_LINUX_SMALL_MAX_WORKERS.
func EnvName(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.Trim(envNameRE.ReplaceAllString(strings.ToUpper(p), "_"), "_")
	}
	return EnvPrefix + strings.Join(parts, "_")
}

// applyEnv overrides leaves from AUTOSCALER_* variables. The value is read
// as YAML, so lists and maps can be given in flow style (["a","b"]).
// Unknown AUTOSCALER_* variables are errors, so a typo does not pass
// silently.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	used := map[string]bool{}
	var problems []error
	var walk func(v reflect.Value, names []string, path string)
	walk = func(v reflect.Value, names []string, path string) {
		t := v.Type()
		if t.Kind() == reflect.Struct && t != reflect.TypeFor[IdleWorkers]() {
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					continue
				}
				fv := v.Field(i)
				if f.Type == reflect.TypeFor[[]Pool]() {
					for j := range fv.Len() {
						p := fv.Index(j)
						pname := p.FieldByName("Name").String()
						walk(p, append(append([]string(nil), names...), name, pname), fmt.Sprintf("pools[%s]", pname))
					}
					continue
				}
				walk(fv, append(append([]string(nil), names...), name), joinPath(path, name))
			}
			return
		}
		key := EnvName(names...)
		raw, ok := env[key]
		if !ok {
			return
		}
		used[key] = true
		if t.Kind() == reflect.String {
			// Taken verbatim: passwords and URLs need no YAML quoting.
			v.SetString(raw)
			return
		}
		target := reflect.New(t)
		if t.Kind() == reflect.Pointer {
			target = reflect.New(t.Elem())
		}
		if err := yaml.Unmarshal([]byte(raw), target.Interface()); err != nil {
			problems = append(problems, fmt.Errorf("%s (from %s): %w", path, key, yamlError(err)))
			return
		}
		if t.Kind() == reflect.Pointer {
			v.Set(target)
		} else {
			v.Set(target.Elem())
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil, "")
	for k := range env {
		if !used[k] && !ignoredEnv[k] {
			problems = append(problems, fmt.Errorf("%s: no config key has this name; see config.example.yaml for the keys (pools are addressed by name, e.g. %s)", k, EnvName("pools", "default", "max_workers")))
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return errors.Join(problems...)
}

// ignoredEnv are AUTOSCALER_* variables that are not config keys.
var ignoredEnv = map[string]bool{"AUTOSCALER_CONFIG": true}
