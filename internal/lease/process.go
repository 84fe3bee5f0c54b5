package lease

import (
	"errors"
	"os"
	"syscall"
)

// Process identifies a running daemon to other daemons and to operators.
type Process struct {
	Host  string
	PID   int
	PIDNS string // the pid namespace (/proc/self/ns/pid), "" when unknown
}

// ThisProcess is the calling process.
func ThisProcess() Process {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		ns = ""
	}
	return Process{Host: host, PID: os.Getpid(), PIDNS: ns}
}

// succeeds reports whether the session s was written by an earlier run of
// this very daemon that has certainly ended: same host and pid namespace,
// and either its pid is ours (two live processes of one namespace cannot
// share a pid) or no process has it. Only then may a restart skip the wait
// for the old session to go stale. running is how a pid is checked.
func (p Process) succeeds(s Session, running func(pid int) bool) bool {
	if p.PIDNS == "" || s.PIDNS != p.PIDNS || s.Host != p.Host || s.PID <= 0 {
		return false
	}
	return s.PID == p.PID || !running(s.PID)
}

// pidRunning reports whether a process with that pid exists (signal 0; a
// process we may not signal exists too).
func pidRunning(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
