//go:build !linux

package k8scluster

import (
	"os"
	"os/exec"
	"syscall"
)

func setProcAttrs(cmd *exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if sig == syscall.SIGKILL {
		_ = cmd.Process.Kill()
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
}

// processAlive is conservative where it cannot check: stale folders are
// then never swept.
func processAlive(pid int) bool { return true }
