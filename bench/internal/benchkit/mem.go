package benchkit

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Mem is the process's memory at one instant.
type Mem struct {
	RSS       uint64 // VmRSS: resident now
	HWM       uint64 // VmHWM: peak resident
	HeapInuse uint64 // Go heap in use (live objects and fragmentation)
	HeapAlloc uint64 // Go heap live bytes
	Sys       uint64 // bytes obtained from the OS by the Go runtime
}

// ReadMem collects garbage, returns freed memory to the OS (so RSS is what
// is really held) and reads /proc/self/status and the runtime's stats.
func ReadMem() Mem {
	runtime.GC()
	debug.FreeOSMemory()
	return ReadMemNoGC()
}

// ReadMemNoGC reads the same without collecting first: what ps shows.
func ReadMemNoGC() Mem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Mem{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, Sys: ms.Sys}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			m.RSS = kb(line)
		case strings.HasPrefix(line, "VmHWM:"):
			m.HWM = kb(line)
		}
	}
	return m
}

func kb(line string) uint64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n << 10
}

// MB formats bytes as mebibytes.
func MB(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MB" }
