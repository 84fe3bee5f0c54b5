package deploy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hodei/hodei-autoscaler/internal/config"
)

var update = flag.Bool("update", false, "rewrite the config part of the chart's values.schema.json from internal/config")

// The config part of values.schema.json is generated from the daemon's
// config types, so the schema knows exactly the keys the daemon reads and
// their types (a typo or a wrong type fails at helm install), while the
// rules (ranges, enums, cross-field checks) stay with their one owner,
// internal/config's validation. `go test ./deploy -run TestChartSchemaMatchesConfig -update`
// rewrites it after a config change.
func TestChartSchemaMatchesConfig(t *testing.T) {
	path := filepath.Join(chartDir(t), "values.schema.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	props := schema["properties"].(map[string]any)
	want, err := schemaOf(reflect.TypeFor[config.Config](), "config")
	if err != nil {
		t.Fatal(err)
	}
	want["description"] = "the daemon's configuration (config.example.yaml); keys and types generated from internal/config, rules checked by the daemon"
	if *update {
		props["config"] = want
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(schema); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, _ := json.MarshalIndent(props["config"], "", "  ")
	exp, _ := json.MarshalIndent(want, "", "  ")
	if !bytes.Equal(got, exp) {
		t.Errorf("values.schema.json's config part is not what internal/config's types give; "+
			"run go test ./deploy -run TestChartSchemaMatchesConfig -update\n got: %s\nwant: %s", got, exp)
	}
}

// schemaOf is the JSON schema of the YAML that decodes into t: objects
// with exactly the yaml-tagged fields, their scalar types, and the custom
// scalars of internal/config as they unmarshal. A type that has its own
// UnmarshalYAML and is not known here fails, so a new one is mapped on
// purpose rather than guessed.
func schemaOf(t reflect.Type, where string) (map[string]any, error) {
	switch t {
	case reflect.TypeFor[config.Duration]():
		return map[string]any{"type": []any{"string", "integer"}, "description": "a duration such as 30s, 5m or 1h30m, or 0"}, nil
	case reflect.TypeFor[config.ByteSize]():
		return map[string]any{"type": []any{"string", "integer"}, "description": "bytes, or a size such as 512MiB or 1GiB"}, nil
	case reflect.TypeFor[config.AutoDuration]():
		return map[string]any{"type": []any{"string", "integer"}, "description": "a duration such as 30s, 5m or 1h30m, or auto"}, nil
	case reflect.TypeFor[config.IdleWorkers]():
		return map[string]any{"type": []any{"string", "integer"}, "pattern": "^auto$", "description": "a count or auto"}, nil
	case reflect.TypeFor[config.ScaleStep]():
		return map[string]any{"type": []any{"string", "integer"}, "description": "a number of workers (4) or a percentage (50%)"}, nil
	case reflect.TypeFor[config.Pool](), reflect.TypeFor[config.Tier](): // their UnmarshalYAML only applies defaults first
		return objectSchema(t, where)
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ UnmarshalYAML(n *yaml.Node) error }]()) {
		return nil, fmt.Errorf("%s: type %s unmarshals itself; map it in schemaOf", where, t)
	}
	switch t.Kind() {
	case reflect.Pointer:
		s, err := schemaOf(t.Elem(), where)
		if err != nil {
			return nil, err
		}
		switch ty := s["type"].(type) {
		case string:
			s["type"] = []any{ty, "null"}
		case []any:
			s["type"] = append(ty, "null")
		}
		return s, nil
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	case reflect.Slice:
		items, err := schemaOf(t.Elem(), where+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": []any{"array", "null"}, "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map key %s", where, t.Key())
		}
		vals, err := schemaOf(t.Elem(), where+".*")
		if err != nil {
			return nil, err
		}
		s := map[string]any{"type": []any{"object", "null"}}
		if len(vals) > 0 {
			s["additionalProperties"] = vals
		}
		return s, nil
	case reflect.Struct:
		return objectSchema(t, where)
	}
	return nil, fmt.Errorf("%s: no schema for %s", where, t)
}

func objectSchema(t reflect.Type, where string) (map[string]any, error) {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("%s.%s has no yaml tag", where, f.Name)
		}
		s, err := schemaOf(f.Type, where+"."+name)
		if err != nil {
			return nil, err
		}
		if where+"."+name == "config.nats.url" {
			// A string field that the loader also takes as a YAML list of
			// URLs (config's joinURLList): the servers of a cluster.
			s = map[string]any{"type": []any{"string", "array"}, "items": map[string]any{"type": "string"},
				"description": "embedded, or the NATS URLs: comma separated or a list"}
		}
		props[name] = s
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}, nil
}
