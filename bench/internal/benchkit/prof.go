package benchkit

import (
	"os"
	"runtime/pprof"
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
