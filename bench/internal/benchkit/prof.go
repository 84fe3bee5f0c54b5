package benchkit

import (
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"
)

// StartCPU starts a CPU profile into path and returns its stop function.
func StartCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// WriteAllocs writes the allocation profile (cumulative since the start
// of the program) to path; diff two with go tool pprof -diff_base.
func WriteAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// ProcessCPU is the CPU time (user and system) this process has used so
// far. On a shared machine the CPU a run uses moves far less with the
// load than its wall-clock time does.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PerEvent formats a CPU time spread over n events, in µs per event.
func PerEvent(d time.Duration, n int) string {
	return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1e3/float64(n))
}
