// Command sleeper is the Docker provider tests' container program. It is
// built static and run FROM scratch.
//
//	sleeper            run until SIGTERM/SIGINT, then exit 0
//	sleeper health     health check: exit 1 if SLEEPER_UNHEALTHY=1, else 0
//
// Environment: SLEEPER_EXIT_CODE=n exits at once with code n;
// SLEEPER_IGNORE_TERM=1 ignores SIGTERM (the engine must kill it after the
// grace period).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		if os.Getenv("SLEEPER_UNHEALTHY") == "1" {
			fmt.Println("sleeper: unhealthy on purpose")
			os.Exit(1)
		}
		fmt.Println("sleeper: healthy")
		return
	}
	if v := os.Getenv("SLEEPER_EXIT_CODE"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sleeper: bad SLEEPER_EXIT_CODE %q\n", v)
			os.Exit(100)
		}
		fmt.Fprintf(os.Stderr, "sleeper: exiting with code %d\n", code)
		os.Exit(code)
	}
	sigs := make(chan os.Signal, 1)
	if os.Getenv("SLEEPER_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(sigs, syscall.SIGINT)
		fmt.Fprintln(os.Stderr, "sleeper: running, ignoring SIGTERM")
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		fmt.Fprintln(os.Stderr, "sleeper: running")
	}
	s := <-sigs
	fmt.Fprintf(os.Stderr, "sleeper: got %v, exiting\n", s)
}
