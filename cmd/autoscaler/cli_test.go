package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"k8s.io/klog/v2"
)

// Help as go, kubectl and nats users expect it: asked for, it goes to
// stdout with exit 0; the command list, or one command's usage.
func TestHelpIsAskedForAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "commands:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "  "+c.name+" ") {
				t.Errorf("%v: the list lacks %s:\n%s", args, c.name, out)
			}
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h"}} {
			code, out, errOut := runCLI(t, args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: autoscaler "+c.name) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	}
	code, out, _ := runCLI(t, "validate", "--help")
	if !strings.Contains(out, "-config") {
		t.Errorf("validate --help does not list --config:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "help", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, %q", code, errOut)
	}
	// A bad flag is still an error, with the usage on stderr.
	code, out, errOut := runCLI(t, "validate", "--bogus")
	if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined: -bogus") || !strings.Contains(errOut, "usage: autoscaler validate") {
		t.Errorf("validate --bogus: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestVersionFlag(t *testing.T) {
	_, want, _ := runCLI(t, "version")
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		if code, out, errOut := runCLI(t, args...); code != 0 || out != want || errOut != "" {
			t.Errorf("%v: exit %d, %q (want %q), stderr %q", args, code, out, want, errOut)
		}
	}
}

// A positional argument is the config file where a command takes one, and
// refused with a clear error everywhere else: never silently ignored while
// the default config.yaml is read.
func TestPositionalArguments(t *testing.T) {
	example := filepath.Join("..", "..", "config.example.yaml")
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"validate", example}, 0, example + " is valid"},
		{[]string{"validate", missing}, 1, missing + " is invalid"},
		{[]string{"run", missing}, 1, "invalid config " + missing},
		{[]string{"queue", missing}, 1, "invalid config " + missing},
		{[]string{"validate", "--config", example, missing}, 2, "the config is given twice"},
		{[]string{"validate", example, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", example, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"version", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"simulate", "--generate", "burst", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"help", "run", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"status", missing}, 1, "reading http.listen from " + missing},
		{[]string{"status", "--addr", "127.0.0.1:1", "--config", example}, 2, "give --config or --addr, not both"},
		{[]string{"status", "--addr", "127.0.0.1:1", "-o", "yaml"}, 2, `-o "yaml": use table or json`},
		{[]string{"status", "--addr", "127.0.0.1:1"}, 1, "cannot reach the daemon at 127.0.0.1:1"},
		{[]string{"status", example, "extra"}, 2, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tt.args, code, tt.wantCode, tt.want, out, errOut)
		}
	}
}

// --log-format takes what log.format takes; anything else is an error, not
// a silent fallback to JSON.
func TestLogFormatFlagIsChecked(t *testing.T) {
	code, _, errOut := runCLI(t, "run", "--log-format", "yaml", "--config", filepath.Join("..", "..", "config.example.yaml"))
	if code != 2 || !strings.Contains(errOut, `--log-format: must be json or console (got "yaml")`) {
		t.Errorf("run --log-format yaml: exit %d, %q", code, errOut)
	}
}

// An override variable that names two keys stops validate and the daemon
// alike, before anything connects.
func TestAmbiguousOverrideRefusedByValidateAndRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	writeTestFile(t, path, "pools:\n  - {name: default, docker: {image: w}}\n  - {name: default_max, docker: {image: w}}\n")
	t.Setenv("AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS", "7")
	for _, cmd := range []string{"validate", "run"} {
		code, _, errOut := runCLI(t, cmd, path)
		if code != 1 || !strings.Contains(errOut, "AUTOSCALER_POOLS_DEFAULT_MAX_IDLE_WORKERS: names pools[default].max_idle_workers and pools[default_max].idle_workers") {
			t.Errorf("%s: exit %d, %q", cmd, code, errOut)
		}
	}
}

// klog (client-go's logger) writes through the daemon's logger, as JSON
// lines with the daemon's fields, not in its own format on stderr.
func TestKlogGoesThroughTheDaemonLogger(t *testing.T) {
	var buf bytes.Buffer
	routeKlog(zerolog.New(&buf))
	defer klog.ClearLogger()
	klog.ErrorS(nil, "watch of pods ended", "namespace", "ci")
	klog.InfoS("reflector started")
	klog.Flush()
	out := buf.String()
	for _, want := range []string{
		`"level":"error"`, `"component":"client-go"`, `"message":"watch of pods ended"`, `"namespace":"ci"`,
		`"level":"info"`, `"message":"reflector started"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("daemon log lacks %s:\n%s", want, out)
		}
	}
}
