package config_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"go.yaml.in/yaml/v3"
)

// FuzzParse feeds Parse a file and AUTOSCALER_* variables (one per line).
// The seed corpus is in testdata/fuzz/FuzzParse. Properties:
//   - Parse never panics and returns promptly (alias bombs included);
//   - a problem is one non-empty line without fmt's %! marks;
//   - on success the config passes Validate, again and again, unchanged;
//   - a config without secrets written back as YAML loads to the same
//     config (nothing accepted that cannot be written and read back).
func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile("../../config.example.yaml"); err == nil {
		f.Add(example, "")
		f.Add(example, "AUTOSCALER_POOLS_DEFAULT_MAX_WORKERS=9\nAUTOSCALER_NATS_URL=nats://h:4222")
	}
	f.Add([]byte(minimal), "")
	f.Add([]byte(twoPools), "AUTOSCALER_POOLS_LINUX_SMALL_ENV={A: b}")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		var environ []string
		if env != "" {
			environ = strings.Split(env, "\n")
		}
		cfg, err := config.Parse(data, environ)
		if err != nil {
			for _, p := range problems(err) {
				if p == "" || strings.Contains(p, "\n") || strings.Contains(p, "%!") {
					t.Fatalf("malformed problem %q in:\n%v", p, err)
				}
			}
			return
		}
		before := shallowCopy(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects:\n%v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("second Validate fails:\n%v", err)
		}
		if !reflect.DeepEqual(before, cfg) {
			t.Fatalf("Validate changed the config:\nbefore %+v\nafter  %+v", before, cfg)
		}
		if cfg.NATS.Auth.Password != "" || cfg.NATS.Auth.Token != "" {
			return // written back redacted, by design
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("yaml.Marshal of a valid config: %v", err)
		}
		again, err := config.Parse(out, nil)
		if err != nil {
			t.Fatalf("a valid config written back does not load:\n%v\n--- written:\n%s", err, out)
		}
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("a valid config written back loads differently:\n--- first:\n%s\n--- second:\n%s", out, out2)
		}
	})
}

func shallowCopy(c config.Config) config.Config {
	c.Pools = append([]config.Pool(nil), c.Pools...)
	return c
}

// Regression: the key check followed every merge of every alias, so a
// file of n pools each merging the previous one three times took 3^n steps
// (25 pools: hours). It must come back at once, with a problem.
func TestAliasBombsAreFast(t *testing.T) {
	var merges, lists strings.Builder
	merges.WriteString("pools:\n  - &p0 {name: a, docker: {image: i}}\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&merges, "  - &p%d {<<: *p%d, <<: *p%d, <<: *p%d, name: n%d}\n", i, i-1, i-1, i-1, i)
	}
	lists.WriteString("pools:\n  - name: a\n    docker:\n      image: i\n      cap_add: &l0 [A, A, A, A, A, A, A, A]\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&lists, "      mounts: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for name, yml := range map[string]string{"merges": merges.String(), "lists": lists.String()} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := config.Parse([]byte(yml), nil)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Error("want a problem")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Parse still running after 10s")
			}
		})
	}
}
