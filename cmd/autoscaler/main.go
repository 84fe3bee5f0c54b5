// Command autoscaler is the hodei-autoscaler daemon and its tools:
//
//	autoscaler run [--config FILE | FILE]        the daemon (the default command)
//	autoscaler validate [--config FILE | FILE]   check a config, print every problem
//	autoscaler queue --pool P --count N          publish job.queued events (for trying it out)
//	autoscaler status [--config FILE | --addr A] what a running daemon sees, per pool
//	autoscaler simulate ...                      backtest a policy on a trace
//	autoscaler version
//
// It only parses flags and wires parts together; the daemon lives in
// internal/app.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// command is one subcommand. Its run parses its own flags with
// parseFlags, so "CMD --help" and "help CMD" print its usage.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands, in the order usage shows them (a
// function, not a variable: help refers back to it).
func commands() []command {
	return []command{
		{"run", "run [--config FILE | FILE] [--log-format json|console]\n                            run the daemon (the default command)", runDaemon},
		{"validate", "validate [--config FILE | FILE]\n                            check a config; print every problem; exit 1 on any", validate},
		{"queue", "queue [--config FILE | FILE] [--pool P] [--count N] [--duration 10s]\n                            publish job.queued events, to try the daemon out", queue},
		{"status", "status [--config FILE | FILE | --addr HOST:PORT] [-o table|json] [--watch]\n                            each pool of a running daemon: desired, workers by state, jobs, last decision", status},
		{"simulate", "simulate [--config FILE] (--trace FILE | --generate KIND | --from-stream URL) [--compare] [--plot out.svg]\n                            backtest a policy on a trace in virtual time (docs/simulator.md)", simulate},
		{"version", "version                   print the version (also --version)", printVersion},
		{"help", "help [COMMAND]            print this list, or a command's flags", help},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runDaemon(nil, stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		return printVersion(args[1:], stdout, stderr)
	}
	name := "run"
	if !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	return c.run(args, stdout, stderr)
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: autoscaler [command] [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n", c.summary)
	}
	fmt.Fprint(w, `
"autoscaler help COMMAND" or "autoscaler COMMAND --help" shows a command's flags.
Every config key can be overridden by AUTOSCALER_<PATH> (e.g. AUTOSCALER_NATS_URL).
`)
}

// help prints the command list, or one command's usage.
func help(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("help", "help [COMMAND]", "Prints the commands, or the flags of one.")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	switch fs.NArg() {
	case 0:
		usage(stdout)
		return 0
	case 1:
		if c := lookup(fs.Arg(0)); c != nil {
			return c.run([]string{"--help"}, stdout, stderr)
		}
		fmt.Fprintf(stderr, "unknown command %q\n\n", fs.Arg(0))
		usage(stderr)
		return 2
	}
	return refuseArgs(fs, stderr, fs.Args()[1:])
}

func printVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version", "Prints the version.")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return refuseArgs(fs, stderr, fs.Args())
	}
	fmt.Fprintln(stdout, "hodei-autoscaler", version)
	return 0
}

// newFlags returns a command's flag set; its usage prints the synopsis,
// the description and the flags.
func newFlags(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: autoscaler %s\n\n%s\n", synopsis, description)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a command's flags. -h and --help print the usage on
// stdout (exit 0); a bad flag prints the problem and the usage on stderr
// (exit 2). done says whether the command must exit with code.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, true
	case err != nil:
		_, _ = io.Copy(stderr, &out)
		return 2, true
	}
	fs.SetOutput(stderr)
	return 0, false
}

// refuseArgs reports positional arguments a command does not take.
func refuseArgs(fs *flag.FlagSet, stderr io.Writer, extra []string) int {
	fmt.Fprintf(stderr, "autoscaler %s: unexpected argument %q (see autoscaler %s --help)\n", fs.Name(), extra[0], fs.Name())
	return 2
}

// configFlag adds --config, defaulting to $AUTOSCALER_CONFIG or config.yaml.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("AUTOSCALER_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	return fs.String("config", def, "path to the YAML config, also given as the one argument (env AUTOSCALER_CONFIG)")
}

// parseConfigCommand parses the flags of a command that takes a config
// and returns the config's path; done says whether the command must exit
// with code (help asked for, a bad flag or argument).
func parseConfigCommand(fs *flag.FlagSet, pathFlag *string, args []string, stdout, stderr io.Writer) (path string, code int, done bool) {
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return "", code, true
	}
	path, ok := configPath(fs, *pathFlag, stderr)
	if !ok {
		return "", 2, true
	}
	return path, 0, false
}

// configPath is the config file of a command that takes one: --config, or
// its one positional argument. Both at once, or more arguments, are refused
// (ok false, the problem written to stderr).
func configPath(fs *flag.FlagSet, flagValue string, stderr io.Writer) (path string, ok bool) {
	switch fs.NArg() {
	case 0:
		return flagValue, true
	case 1:
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "config" })
		if set {
			fmt.Fprintf(stderr, "autoscaler %s: the config is given twice (--config %s and %s): give one\n", fs.Name(), flagValue, fs.Arg(0))
			return "", false
		}
		return fs.Arg(0), true
	}
	refuseArgs(fs, stderr, fs.Args()[1:])
	return "", false
}

func indent(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  - " + l
	}
	return strings.Join(lines, "\n")
}
